// Runs one model's asynchronous operations one after another, in call order. A call made
// while the queue is idle starts at once (so the native step is already running when the
// call returns); later calls wait their turn.

interface Pending {
  start: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class WorkQueue {
  #running = false;
  #pending: Pending[] = [];

  /** True when nothing runs or waits: a call made now starts before run() returns. */
  get idle(): boolean {
    return !this.#running;
  }

  run<T>(start: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ start, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#running) this.#next();
    });
  }

  /** Rejects every call that has not started. */
  rejectPending(error: () => Error): void {
    const pending = this.#pending;
    this.#pending = [];
    for (const entry of pending) entry.reject(error());
  }

  #next(): void {
    const entry = this.#pending.shift();
    if (entry === undefined) {
      this.#running = false;
      return;
    }
    this.#running = true;
    let started: Promise<unknown>;
    try {
      started = entry.start();
    } catch (error) {
      started = Promise.reject(error);
    }
    // The next call starts (or the queue goes idle) before this one's caller hears back, so
    // that a caller awaiting each call in turn finds the queue idle (SparseAutoencoder.trainStep
    // stages its batch on the GPU in the call only then).
    started.then(
      (value) => {
        this.#next();
        entry.resolve(value);
      },
      (error: unknown) => {
        this.#next();
        entry.reject(error);
      },
    );
  }
}
