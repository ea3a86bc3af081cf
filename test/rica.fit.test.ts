// Rica.fit: L-BFGS reaches known minima and stationary points of the float64 reference
// objective; Adam applies its update to the native gradient; records, determinism,
// cancellation, disposal and the event loop.
import { describe, expect, it } from 'vitest';

import { lbfgs } from '../lib/lbfgs.js';
import type { Matrix } from '../lib/matrix.js';
import { Rica } from '../lib/rica.js';
import { randomMatrix } from './fixtures.js';
import * as ref from './rica_reference.js';

/** Rows with unequal variances along random directions (a full-rank, anisotropic cloud). */
function anisotropic(rows: number, d: number, seed: number): Matrix {
  const z = randomMatrix(rows, d, seed);
  const mix = randomMatrix(d, d, seed + 1, 1 / Math.sqrt(d));
  const data = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) for (let i = 0; i < d; i++) data[r * d + j] += z.data[r * d + i] * (1 + i) * mix.data[i * d + j];
  return { rows, cols: d, data };
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

describe('Rica.fit with L-BFGS', () => {
  it.each([false, true])('reaches the known minimum 0 of the reconstruction cost alone (lambda 0, normalizeRows %s)', async (normalizeRows) => {
    // With as many features as dimensions, any W with W^T W = I (V^T V = I) reconstructs exactly.
    const d = 6;
    const x = anisotropic(300, d, 1);
    const rica = new Rica({ dIn: d, dHidden: d, lambda: 0, normalizeRows, seed: 2 });
    const records = await rica.fit(x, { steps: 300 });
    expect(records[0].loss).toBeGreaterThan(0.1);
    expect(records.at(-1)!.loss).toBeLessThan(1e-7 * records[0].loss);
    const v = rica.dictionary().data;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let vtv = 0;
        for (let k = 0; k < d; k++) vtv += v[k * d + i] * v[k * d + j];
        expect(Math.abs(vtv - (i === j ? 1 : 0))).toBeLessThan(1e-3);
      }
    }
    rica.dispose();
  });

  it('stops at a stationary point of the float64 reference objective, as low as the reference optimizer reaches', async () => {
    const [d, k] = [8, 12];
    const x = anisotropic(256, d, 3);
    const rica = new Rica({ dIn: d, dHidden: k, lambda: 0.1, seed: 4 });
    const problem = { k, d, lambda: 0.1, epsilon: 1e-2, normalizeRows: true };
    const w0 = Float64Array.from(rica.weights().data);
    const initialGradient = maxAbs(ref.gradient(problem, w0, x.data, x.rows));
    const records = await rica.fit(x, { steps: 500 });
    const w = Float64Array.from(rica.weights().data);
    // The gradient of the reference objective at the native optimizer's result: near zero.
    const finalGradient = maxAbs(ref.gradient(problem, w, x.data, x.rows));
    expect(finalGradient).toBeLessThan(1e-3 * initialGradient);
    // The same optimizer driven by the float64 reference from the same start gets no lower.
    const reference = await lbfgs(
      (p) => ({ f: ref.cost(problem, p, x.data, x.rows).loss, g: ref.gradient(problem, p, x.data, x.rows) }),
      w0,
      { maxIterations: 500 },
    );
    const nativeFinal = ref.cost(problem, w, x.data, x.rows).loss;
    expect(nativeFinal).toBeLessThan(reference.f + 1e-4 * Math.abs(reference.f));
    expect(records.at(-1)!.loss).toBeCloseTo(nativeFinal, 5);
    rica.dispose();
  });

  it('records one non-increasing objective per iteration and leaves the model at the last one', async () => {
    const x = anisotropic(500, 10, 5);
    const rica = new Rica({ dIn: 10, dHidden: 15, lambda: 0.2, seed: 6 });
    const before = await rica.objective(x);
    const records = await rica.fit(x, { steps: 20 });
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(records[0].loss).toBeLessThan(before.loss);
    for (let i = 1; i < records.length; i++) {
      expect(records[i].loss).toBeLessThanOrEqual(records[i - 1].loss);
      expect(records[i].evaluations!).toBeGreaterThan(records[i - 1].evaluations!);
      expect(Math.abs(records[i].loss - (0.2 * records[i].sparsity + records[i].reconstruction))).toBeLessThan(1e-7 * records[i].loss);
    }
    expect(rica.stepsTaken).toBe(20);
    const after = await rica.objective(x);
    expect(after.loss).toBe(records.at(-1)!.loss);
    expect(after.l0).toBe(records.at(-1)!.l0);
    // dictionary() is W with unit rows.
    const w = rica.weights().data;
    const v = rica.dictionary().data;
    for (let j = 0; j < 15; j++) {
      let norm = 0;
      for (let i = 0; i < 10; i++) norm += w[j * 10 + i] ** 2;
      for (let i = 0; i < 10; i++) expect(v[j * 10 + i]).toBeCloseTo(w[j * 10 + i] / Math.sqrt(norm), 6);
    }
    // encode is x V^T.
    const codes = await rica.encode({ rows: 2, cols: 10, data: x.data.subarray(0, 20) });
    for (let r = 0; r < 2; r++) {
      for (let j = 0; j < 15; j++) {
        let y = 0;
        for (let i = 0; i < 10; i++) y += v[j * 10 + i] * x.data[r * 10 + i];
        expect(codes.data[r * 15 + j]).toBeCloseTo(y, 5);
      }
    }
    rica.dispose();
  });

  it('gives the same result for the same seed, whatever the thread count', async () => {
    const x = anisotropic(2000, 12, 7);
    const run = async (threads: number) => {
      const rica = new Rica({ dIn: 12, dHidden: 20, lambda: 0.1, seed: 8, threads });
      const records = await rica.fit(x, { steps: 15 });
      const weights = rica.weights();
      rica.dispose();
      return { records, weights };
    };
    const [one, two, again] = [await run(1), await run(2), await run(2)];
    expect(two).toEqual(one);
    expect(again).toEqual(one);
  });

  it('reports progress, and an abort keeps the last accepted point in a usable model', async () => {
    const x = anisotropic(3000, 16, 9);
    const rica = new Rica({ dIn: 16, dHidden: 24, lambda: 0.1, seed: 10 });
    const initial = rica.weights();
    const controller = new AbortController();
    const seen: number[] = [];
    let weightsAtAbort: Matrix | undefined;
    const fitting = rica.fit(x, {
      steps: 100_000,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p.step);
        expect(p.totalSteps).toBe(100_000);
        expect(p.samplesSeen % 3000).toBe(0);
        if (p.step >= 5 && weightsAtAbort === undefined) {
          weightsAtAbort = rica.weights();
          controller.abort();
        }
      },
    });
    await expect(fitting).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen.length).toBeGreaterThan(0);
    expect(rica.stepsTaken).toBe(seen.at(-1));
    expect(weightsAtAbort).not.toEqual(initial);
    expect(rica.weights()).toEqual(weightsAtAbort);
    const more = await rica.fit(x, { steps: 2 });
    expect(more.length).toBe(2);
    rica.dispose();
  });

  it('keeps the event loop free while evaluations run natively', async () => {
    const x = randomMatrix(20_000, 64, 11);
    const rica = new Rica({ dIn: 64, dHidden: 64, lambda: 0.1, seed: 12 });
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
    await rica.fit(x, { steps: 25 });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(10);
    expect(longestGap).toBeLessThan(elapsed / 2);
    rica.dispose();
  });

  it('disposing during a fit rejects it with the disposed error', async () => {
    const rica = new Rica({ dIn: 16, dHidden: 16, lambda: 0.1 });
    const fitting = rica.fit(randomMatrix(5000, 16, 13), { steps: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    rica.dispose();
    await expect(fitting).rejects.toMatchObject({ code: 'ERR_DISPOSED', message: 'Rica is disposed' });
  });
});

describe('Rica.fit with Adam', () => {
  it('one step moves W by -lr m^ / (sqrt(v^) + eps) with the gradient of that batch', async () => {
    const x = anisotropic(64, 7, 14);
    const rica = new Rica({ dIn: 7, dHidden: 9, lambda: 0.3, optimizer: 'adam', lr: 0.01, seed: 15 });
    const w0 = rica.weights().data;
    const { gradient, loss } = await rica.objective(x);
    const [record] = await rica.fit(x, { steps: 1, batchSize: 64 });
    // The batch is x reshuffled: the same mean objective.
    expect(record.loss).toBeCloseTo(loss, 5);
    const w1 = rica.weights().data;
    // After one step m^ = g and v^ = g^2.
    for (let i = 0; i < w0.length; i++) {
      const g = gradient.data[i];
      expect(w1[i]).toBeCloseTo(w0[i] - (0.01 * g) / (Math.abs(g) + 1e-8), 5);
    }
    expect(rica.stepsTaken).toBe(1);
    rica.dispose();
  });

  it('lowers the objective on a stream of batches', async () => {
    const x = anisotropic(4096, 10, 16);
    const rica = new Rica({ dIn: 10, dHidden: 20, lambda: 0.1, optimizer: 'adam', lr: 0.01, seed: 17 });
    const before = await rica.objective(x);
    function* batches() {
      for (let start = 0; ; start = (start + 256) % 4096) yield { rows: 256, cols: 10, data: x.data.slice(start * 10, (start + 256) * 10) };
    }
    const records = await rica.fit(batches(), { steps: 300 });
    expect(records.length).toBe(300);
    const after = await rica.objective(x);
    expect(after.loss).toBeLessThan(0.8 * before.loss);
    expect(rica.stepsTaken).toBe(300);
    rica.dispose();
  });
});
