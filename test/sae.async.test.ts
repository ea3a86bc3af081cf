// Scheduling: off the main thread, queued in call order, cancellable, safe to dispose.
import { describe, expect, it } from 'vitest';

import { SparseAutoencoder } from '../lib/index.js';
import type { Progress } from '../lib/index.js';
import { randomMatrix } from './fixtures.js';

function model(seed = 1): SparseAutoencoder {
  return new SparseAutoencoder({ dIn: 64, dHidden: 1024, l1Coeff: 0.05, lr: 1e-3, seed });
}

describe('fit and the event loop', () => {
  it('timers keep firing while fit runs', async () => {
    const sae = model();
    const data = randomMatrix(4096, 64, 1);
    let ticks = 0;
    let last = performance.now();
    let longestGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 2);
    const started = performance.now();
    await sae.fit(data, { steps: 150, batchSize: 512 });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(100);
    expect(ticks).toBeGreaterThan(10);
    // A blocked loop would show one gap as long as the whole fit.
    expect(longestGap).toBeLessThan(elapsed / 2);
    sae.dispose();
  });

  it('an abort signal stops fit after the step in flight and leaves a usable model', async () => {
    const sae = model();
    const controller = new AbortController();
    const progress: Progress[] = [];
    const fitting = sae.fit(randomMatrix(2048, 64, 2), {
      steps: 100_000,
      batchSize: 256,
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p);
        if (p.step >= 20) controller.abort();
      },
    });
    await expect(fitting).rejects.toMatchObject({ name: 'AbortError' });
    expect(sae.stepsTaken).toBeGreaterThanOrEqual(20);
    expect(sae.stepsTaken).toBeLessThan(100_000);
    const before = sae.stepsTaken;
    await sae.trainStep(randomMatrix(8, 64, 3));
    expect(sae.stepsTaken).toBe(before + 1);
    sae.dispose();
  });

  it('an already-aborted signal rejects before any step', async () => {
    const sae = model();
    await expect(sae.fit(randomMatrix(16, 64, 2), { steps: 5, signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(sae.stepsTaken).toBe(0);
    sae.dispose();
  });

  it('reports progress at a modest rate, always including the last step', async () => {
    const sae = model();
    const progress: Progress[] = [];
    const records = await sae.fit(randomMatrix(1000, 64, 4), { epochs: 3, batchSize: 100, onProgress: (p) => progress.push(p) });
    expect(records).toHaveLength(30);
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.length).toBeLessThan(30);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ step: 30, totalSteps: 30, samplesSeen: 3000 });
    expect(last.samplesPerSecond).toBeGreaterThan(0);
    expect(last.loss).toBe(records[29].loss);
    sae.dispose();
  });

  it('an iterable that ends early ends training early', async () => {
    const sae = model();
    const batches = [randomMatrix(10, 64, 1), randomMatrix(12, 64, 2), randomMatrix(7, 64, 3)];
    const records = await sae.fit(batches, { steps: 10 });
    expect(records).toHaveLength(3);
    expect(sae.stepsTaken).toBe(3);
    sae.dispose();
  });
});

describe('ordering and copying', () => {
  it('overlapping calls run one after another in call order', async () => {
    const a = model(7);
    const b = model(7);
    const batches = [1, 2, 3, 4].map((s) => randomMatrix(32, 64, s));
    const order: string[] = [];
    const calls = [
      a.trainStep(batches[0]).then(() => order.push('step 1')),
      a.fit([batches[1], batches[2]], { steps: 2 }).then(() => order.push('fit')),
      a.encode(batches[3]).then(() => order.push('encode')),
      a.trainStep(batches[3]).then(() => order.push('step 4')),
    ];
    await Promise.all(calls);
    expect(order).toEqual(['step 1', 'fit', 'encode', 'step 4']);
    for (const batch of batches) await b.trainStep(batch);
    expect(a.decoderWeights()).toEqual(b.decoderWeights());
    expect(a.encoderBias()).toEqual(b.encoderBias());
    a.dispose();
    b.dispose();
  });

  it('copies input when called, so the caller may reuse its buffer at once', async () => {
    const a = model(3);
    const b = model(3);
    const batch = randomMatrix(32, 64, 5);
    const original = batch.data.slice();
    const pending = a.trainStep(batch);
    batch.data.fill(1000);
    await pending;
    await b.trainStep({ rows: 32, cols: 64, data: original });
    expect(a.decoderWeights()).toEqual(b.decoderWeights());
    a.dispose();
    b.dispose();
  });

  it('weight accessors throw BUSY while a step runs, and work again afterwards', async () => {
    const sae = model();
    const step = sae.trainStep(randomMatrix(512, 64, 6));
    for (const read of [() => sae.dictionary(), () => sae.encoderWeights(), () => sae.encoderBias(), () => sae.decoderBias()]) {
      expect(read).toThrow(expect.objectContaining({ code: 'BUSY', message: 'SparseAutoencoder is busy: a step is running; wait for it to finish' }));
    }
    await step;
    expect(sae.dictionary().rows).toBe(1024);
    sae.dispose();
  });

  it('stepsTaken counts finished steps only, also read while a step runs', async () => {
    const sae = new SparseAutoencoder({ dIn: 256, dHidden: 4096, l1Coeff: 0.05, lr: 1e-3, seed: 1 });
    const batch = randomMatrix(1024, 256, 7);
    await sae.trainStep(batch);
    let settled = false;
    const step = sae.trainStep(batch).then(() => {
      settled = true;
    });
    const seen = new Set<number>();
    let reads = 0;
    while (!settled) {
      seen.add(sae.stepsTaken);
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await step;
    expect(reads).toBeGreaterThan(1);
    expect([...seen]).toEqual([1]);
    expect(sae.stepsTaken).toBe(2);
    sae.dispose();
  });

  it("the native memory held reads as before a step while it runs (the step's thread is resizing it)", async () => {
    const sae = new SparseAutoencoder({ dIn: 256, dHidden: 4096, l1Coeff: 0.05, lr: 1e-3, seed: 1 });
    const native = (sae as unknown as { usable(): { bytesHeld: number } }).usable();
    const before = native.bytesHeld;
    let settled = false;
    // The first step allocates its scratch.
    const step = sae.trainStep(randomMatrix(1024, 256, 7)).then(() => {
      settled = true;
    });
    const seen = new Set<number>();
    while (!settled) {
      seen.add(native.bytesHeld);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await step;
    expect([...seen]).toEqual([before]);
    expect(native.bytesHeld).toBeGreaterThan(before);
    sae.dispose();
  });
});

describe('dispose', () => {
  it('every later call throws "SparseAutoencoder is disposed"', async () => {
    const sae = model();
    sae.dispose();
    sae.dispose();
    const x = randomMatrix(4, 64, 1);
    const disposed = { message: 'SparseAutoencoder is disposed', code: 'ERR_DISPOSED' };
    await expect(sae.trainStep(x)).rejects.toMatchObject(disposed);
    await expect(sae.fit(x, { steps: 1 })).rejects.toMatchObject(disposed);
    await expect(sae.encode(x)).rejects.toMatchObject(disposed);
    await expect(sae.decode({ rows: 1, cols: 1024, data: new Float32Array(1024) })).rejects.toMatchObject(disposed);
    await expect(sae.reconstruct(x)).rejects.toMatchObject(disposed);
    for (const read of [() => sae.dictionary(), () => sae.encoderWeights(), () => sae.encoderBias(), () => sae.decoderWeights(), () => sae.decoderBias()]) {
      expect(read).toThrow(expect.objectContaining(disposed));
    }
    expect(sae.disposed).toBe(true);
  });

  it('during queued work: the running step finishes, calls not started reject', async () => {
    const sae = model();
    const x = randomMatrix(256, 64, 1);
    const settled = Promise.allSettled([sae.trainStep(x), sae.trainStep(x), sae.fit(x, { steps: 3 })]);
    sae.dispose();
    const [running, queued, queuedFit] = await settled;
    expect(running).toMatchObject({ status: 'fulfilled', value: { loss: expect.any(Number) } });
    expect(queued).toMatchObject({ status: 'rejected', reason: { message: 'SparseAutoencoder is disposed' } });
    expect(queuedFit).toMatchObject({ status: 'rejected', reason: { message: 'SparseAutoencoder is disposed' } });
  });

  it('during fit: fit rejects after the step in flight', async () => {
    const sae = model();
    let steps = 0;
    const fitting = sae.fit(randomMatrix(512, 64, 2), {
      steps: 1000,
      batchSize: 64,
      onProgress: () => {
        steps++;
        sae.dispose();
      },
    });
    await expect(fitting).rejects.toThrow('SparseAutoencoder is disposed');
    expect(steps).toBe(1);
  });
});
