// What every model backed by a native object shares: one queue of asynchronous calls (in
// call order, one at a time), input validated and copied when a call is made, and disposal.
import { WorkQueue } from './work_queue.js';

export interface NativeHandle {
  dispose(): void;
}

export abstract class NativeModel<N extends NativeHandle> {
  #native: N | undefined;
  readonly #queue = new WorkQueue();
  readonly #className: string;

  protected constructor(className: string, native: N) {
    this.#className = className;
    this.#native = native;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /**
   * Frees the native memory. Calls that have not started reject; one already running
   * finishes first. Later calls throw "<Class> is disposed". Safe to call twice.
   */
  dispose(): void {
    const native = this.#native;
    if (native === undefined) return;
    this.#native = undefined;
    this.#queue.rejectPending(() => this.disposedError());
    native.dispose();
  }

  protected disposedError(): Error {
    return Object.assign(new Error(`${this.#className} is disposed`), { code: 'ERR_DISPOSED' });
  }

  /** True when a call made now starts at once, before enqueue returns. */
  protected get idle(): boolean {
    return this.#queue.idle;
  }

  /** The native object, or the disposed error. */
  protected usable(): N {
    if (this.#native === undefined) throw this.disposedError();
    return this.#native;
  }

  /**
   * Runs `prepare` now (validation and copies of the caller's input; it throws to reject),
   * then the work it returns in the queue, with the native object as it is then.
   */
  protected enqueue<T>(prepare: () => (native: N) => Promise<T>): Promise<T> {
    let work: (native: N) => Promise<T>;
    try {
      this.usable();
      work = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#queue.run(() => work(this.usable()));
  }
}
