// FistaDictionary: one step against the float64 reference of online dictionary learning,
// recovery of known features, unit atoms, redrawing unused atoms, warm starts from the rows'
// previous codes, determinism, and the model lifecycle (BUSY, dispose).
import { describe, expect, it } from 'vitest';

import { FistaCoder, FistaDictionary, metrics, ToyDataset, type Matrix } from '../lib/index.js';
import { randomMatrix, relativeError } from './fixtures.js';
import { lasso, row } from './fista_fixtures.js';
import * as ref from './fista_reference.js';

function rowNorms(m: Matrix): number[] {
  return Array.from({ length: m.rows }, (_, r) => Math.hypot(...row(m, r)));
}

describe('a dictionary learning step', () => {
  it('matches the float64 reference: FISTA codes, decayed statistics, block coordinate descent, unit atoms', async () => {
    const [m, d, n, lambda] = [8, 6, 40, 0.05];
    const model = new FistaDictionary({ dIn: d, dHidden: m, lambda, nonNegative: false, seed: 5, tol: 1e-7, maxIter: 20_000 });
    const batches = [randomMatrix(n, d, 1), randomMatrix(n, d, 2), randomMatrix(n, d, 3)];
    const expected = ref.onlineLearning(model.dictionary().data, m, d, lambda, batches);
    const records = await model.fit(batches, { steps: 3 });
    expect(records.map((r) => r.resampled)).toEqual([0, 0, 0]);
    expect(Math.max(...records.map((r) => r.maxIterations))).toBeLessThan(20_000);
    for (let s = 0; s < 3; s++) expect(Math.abs(records[s].loss - expected.losses[s]) / expected.losses[s]).toBeLessThan(1e-6);
    expect(relativeError(model.dictionary().data, expected.dictionary)).toBeLessThan(1e-4);
    expect(model.stepsTaken).toBe(3);
    model.dispose();
  });

  it('records the batch statistics before the update, consistently', async () => {
    const model = new FistaDictionary({ dIn: 16, dHidden: 32, lambda: 0.1, seed: 1 });
    const records = await model.fit(randomMatrix(500, 16, 4), { epochs: 2, batchSize: 100 });
    expect(records).toHaveLength(10);
    for (const r of records) {
      expect(Object.keys(r).sort()).toEqual(['iterations', 'l0', 'l1', 'loss', 'maxIterations', 'mse', 'resampled', 'step']);
      expect(r.loss).toBeCloseTo(0.5 * r.mse * 16 + 0.1 * r.l1, 10);
      expect(r.maxIterations).toBeGreaterThanOrEqual(r.iterations);
    }
    for (const norm of rowNorms(model.dictionary())) expect(norm).toBeCloseTo(1, 6);
    model.dispose();
  });

  it('redraws unused atoms from the batch', async () => {
    // lambda above every |x D^T|: no code is active, so every atom is unused and redrawn.
    const model = new FistaDictionary({ dIn: 12, dHidden: 20, lambda: 100, seed: 2 });
    const batch = randomMatrix(30, 12, 5);
    const [record] = await model.fit([batch], { steps: 1 });
    expect(record).toMatchObject({ l0: 0, resampled: 20 });
    const atoms = model.dictionary();
    for (let k = 0; k < 20; k++) {
      // Each new atom is a batch row plus 1% noise, normalised.
      let best = 0;
      for (let r = 0; r < 30; r++) {
        const a = row(atoms, k);
        const x = row(batch, r);
        const cos = a.reduce((s, v, i) => s + v * x[i], 0) / Math.hypot(...x);
        best = Math.max(best, cos);
      }
      expect(best).toBeGreaterThan(0.99);
      expect(best).toBeLessThan(1);
    }
    for (const norm of rowNorms(atoms)) expect(norm).toBeCloseTo(1, 6);
    model.dispose();
  });
});

describe('feature recovery on the toy setting (d 32, 64 true features, 3 active per sample)', () => {
  it('mean max cosine similarity reaches 0.95 from fresh batches', async () => {
    const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 3 });
    const model = new FistaDictionary({ dIn: 32, dHidden: 128, lambda: 0.1, seed: 3, tol: 1e-4 });
    const before = metrics.mmcs(model.dictionary(), toy.features);
    const records = await model.fit(toy.batches(256), { steps: 100 });
    const after = metrics.mmcs(model.dictionary(), toy.features);
    expect(before).toBeLessThan(0.6);
    expect(after).toBeGreaterThanOrEqual(0.95);
    expect(records[99].loss).toBeLessThan(0.6 * records[0].loss);
    model.dispose();
  });

  it('recovers them from a fixed Matrix, each row starting from its codes of the previous epoch', async () => {
    const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 4 });
    const { x } = toy.sample(2048);
    const warm = new FistaDictionary({ dIn: 32, dHidden: 128, lambda: 0.1, seed: 4 });
    const records = await warm.fit(x, { epochs: 10, batchSize: 256 });
    expect(metrics.mmcs(warm.dictionary(), toy.features)).toBeGreaterThanOrEqual(0.95);
    // The same rows as an iterable carry no row ids, so every solve starts from zero.
    const cold = new FistaDictionary({ dIn: 32, dHidden: 128, lambda: 0.1, seed: 4 });
    const batches = Array.from({ length: 80 }, (_, s) => {
      const start = (s % 8) * 256;
      return { rows: 256, cols: 32, data: x.data.slice(start * 32, (start + 256) * 32) };
    });
    const coldRecords = await cold.fit(batches, { steps: 80 });
    const lastEpoch = (rs: { iterations: number }[]) => rs.slice(72).reduce((s, r) => s + r.iterations, 0) / 8;
    expect(lastEpoch(records)).toBeLessThan(0.8 * lastEpoch(coldRecords));
    warm.dispose();
    cold.dispose();
  });
});

describe('codes and determinism', () => {
  it('encode gives the codes FistaCoder gives for the learned dictionary', async () => {
    const model = new FistaDictionary({ dIn: 16, dHidden: 40, lambda: 0.2, seed: 6 });
    await model.fit(randomMatrix(300, 16, 7), { epochs: 1, batchSize: 100 });
    const x = randomMatrix(25, 16, 8);
    const codes = await model.encode(x);
    const coder = new FistaCoder({ dictionary: model.dictionary(), lambda: 0.2, nonNegative: true });
    // Not bit for bit: the model's power iteration starts from its last eigenvector, so its L
    // differs from a fresh coder's in the last digits, and each solve stops somewhere within tol.
    const expected = (await coder.encode(x)).codes;
    expect(relativeError(codes.data, expected.data)).toBeLessThan(1e-3);
    const problem = lasso(model.dictionary(), 0.2, true);
    for (let r = 0; r < 25; r++) {
      const [ours, theirs] = [ref.objective(problem, row(x, r), row(codes, r)), ref.objective(problem, row(x, r), row(expected, r))];
      expect(Math.abs(ours - theirs) / theirs).toBeLessThan(1e-9);
    }
    expect(codes.data.every((v) => v >= 0)).toBe(true);
    for (let r = 0; r < 25; r++) {
      const { violation, scale } = ref.kkt(problem, row(x, r), row(codes, r));
      expect(violation / scale).toBeLessThan(2e-6);
    }
    coder.dispose();
    model.dispose();
  });

  it('the same seed and data give the same dictionary, whatever the thread count', async () => {
    const data = randomMatrix(600, 20, 9);
    const results: Matrix[] = [];
    for (const threads of [1, 2, 3]) {
      const model = new FistaDictionary({ dIn: 20, dHidden: 48, lambda: 0.15, seed: 10, threads });
      await model.fit(data, { epochs: 3, batchSize: 128 });
      results.push(model.dictionary());
      model.dispose();
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    const other = new FistaDictionary({ dIn: 20, dHidden: 48, lambda: 0.15, seed: 11 });
    expect(other.dictionary()).not.toEqual(new FistaDictionary({ dIn: 20, dHidden: 48, lambda: 0.15, seed: 10 }).dictionary());
    other.dispose();
  });
});

describe('lifecycle', () => {
  it('dictionary() throws BUSY while a step runs, and works again afterwards', async () => {
    const model = new FistaDictionary({ dIn: 32, dHidden: 256, lambda: 0.05, seed: 1 });
    const fitting = model.fit(randomMatrix(256, 32, 1), { steps: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(() => model.dictionary()).toThrow(
      expect.objectContaining({ code: 'BUSY', message: 'FistaDictionary is busy: a step is running; wait for it to finish' }),
    );
    await fitting;
    expect(model.dictionary().rows).toBe(256);
    model.dispose();
  });

  it('every call after dispose throws "<Class> is disposed"; a running encode finishes, queued ones reject', async () => {
    const model = new FistaDictionary({ dIn: 8, dHidden: 16, lambda: 0.1 });
    model.dispose();
    model.dispose();
    const x = randomMatrix(4, 8, 1);
    const disposed = { message: 'FistaDictionary is disposed', code: 'ERR_DISPOSED' };
    await expect(model.fit(x, { steps: 1 })).rejects.toMatchObject(disposed);
    await expect(model.encode(x)).rejects.toMatchObject(disposed);
    await expect(model.lipschitz()).rejects.toMatchObject(disposed);
    expect(() => model.dictionary()).toThrow(expect.objectContaining(disposed));
    expect(model.stepsTaken).toBe(0);

    const coder = new FistaCoder({ dictionary: randomMatrix(300, 40, 2), lambda: 0.1 });
    const big = randomMatrix(200, 40, 3);
    const settled = Promise.allSettled([coder.encode(big), coder.encode(big)]);
    coder.dispose();
    const [running, queued] = await settled;
    expect(running).toMatchObject({ status: 'fulfilled', value: { iterations: expect.any(Number) } });
    expect(queued).toMatchObject({ status: 'rejected', reason: { message: 'FistaCoder is disposed', code: 'ERR_DISPOSED' } });
    expect(() => coder.dictionary()).toThrow('FistaCoder is disposed');
  });
});
