// RICA's native cost and gradient against central finite differences of the float64 reference
// cost, and against the reference's own analytic gradient; determinism across thread counts.
import { describe, expect, it } from 'vitest';

import { cpuKernelSets, relativeError } from './fixtures.js';
import { ricaProblem } from './rica_fixtures.js';
import * as ref from './rica_reference.js';

const shapes = [
  { dIn: 5, dHidden: 7, rows: 3 },
  { dIn: 13, dHidden: 19, rows: 11 },
  { dIn: 16, dHidden: 40, rows: 30 },
];

const cases = cpuKernelSets.flatMap((cpuKernels) => [true, false].map((normalizeRows) => ({ cpuKernels, normalizeRows })));

describe.each(cases)('RICA cost and gradient ($cpuKernels kernels, normalizeRows: $normalizeRows)', ({ cpuKernels, normalizeRows }) => {
  it.each(shapes)('the gradient matches central finite differences at dIn $dIn, dHidden $dHidden, rows $rows', async (shape) => {
    const { rica, x, w, problem } = ricaProblem(shape, { seed: shape.dIn, normalizeRows, cpuKernels });
    const native = await rica.objective(x);
    const h = 1e-6;
    const fd = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const saved = w[i];
      w[i] = saved + h;
      const plus = ref.cost(problem, w, x.data, x.rows).loss;
      w[i] = saved - h;
      const minus = ref.cost(problem, w, x.data, x.rows).loss;
      w[i] = saved;
      fd[i] = (plus - minus) / (2 * h);
    }
    const error = relativeError(native.gradient.data, fd);
    expect(error, `relative error ${error}`).toBeLessThan(1e-4);
    rica.dispose();
  });

  it('reports the reference cost, its two terms and the active count', async () => {
    const { rica, x, w, problem } = ricaProblem({ dIn: 21, dHidden: 30, rows: 17 }, { seed: 5, normalizeRows, cpuKernels, lambda: 0.7 });
    const native = await rica.objective(x);
    const expected = ref.cost(problem, w, x.data, x.rows);
    expect(native.loss).toBeCloseTo(expected.loss, 4);
    expect(native.sparsity).toBeCloseTo(expected.sparsity, 4);
    expect(native.reconstruction).toBeCloseTo(expected.reconstruction, 4);
    expect(native.l0).toBe(expected.l0);
    expect(expected.l0).toBeGreaterThan(0);
    expect(expected.l0).toBeLessThan(30);
    rica.dispose();
  });

  // Products over depth dIn > 256 and over N > 256 rows span several of the GEMM's depth blocks.
  it.each([
    { dIn: 300, dHidden: 13, rows: 9 },
    { dIn: 20, dHidden: 9, rows: 700 },
  ])('matches the reference gradient across depth blocks (dIn $dIn, rows $rows)', async (shape) => {
    const { rica, x, w, problem } = ricaProblem(shape, { seed: 3, normalizeRows, cpuKernels });
    const native = await rica.objective(x);
    expect(relativeError(native.gradient.data, ref.gradient(problem, w, x.data, x.rows))).toBeLessThan(1e-4);
    expect(native.loss).toBeCloseTo(ref.cost(problem, w, x.data, x.rows).loss, 3);
    rica.dispose();
  });
});

describe('RICA cost and gradient', () => {
  it('the reference gradient itself matches finite differences (with and without normalisation)', () => {
    for (const normalizeRows of [true, false]) {
      const problem = { k: 4, d: 3, lambda: 0.5, epsilon: 1e-2, normalizeRows };
      const w = Float64Array.from({ length: 12 }, (_, i) => Math.sin(3 * i + 1));
      const x = Float64Array.from({ length: 15 }, (_, i) => Math.cos(7 * i));
      const g = ref.gradient(problem, w, x, 5);
      for (let i = 0; i < w.length; i++) {
        const saved = w[i];
        w[i] = saved + 1e-6;
        const plus = ref.cost(problem, w, x, 5).loss;
        w[i] = saved - 1e-6;
        const minus = ref.cost(problem, w, x, 5).loss;
        w[i] = saved;
        expect(g[i]).toBeCloseTo((plus - minus) / 2e-6, 6);
      }
    }
  });

  it('is bit-identical for 1 and 3 threads', async () => {
    const shape = { dIn: 37, dHidden: 50, rows: 1000 };
    const one = ricaProblem(shape, { seed: 9, threads: 1 });
    const three = ricaProblem(shape, { seed: 9, threads: 3 });
    const [a, b] = [await one.rica.objective(one.x), await three.rica.objective(three.x)];
    expect(b.loss).toBe(a.loss);
    expect(b.gradient.data).toEqual(a.gradient.data);
    one.rica.dispose();
    three.rica.dispose();
  });

  it('with normalised rows, the cost ignores row norms and the gradient is orthogonal to each row', async () => {
    const { rica, x, w } = ricaProblem({ dIn: 12, dHidden: 20, rows: 50 }, { seed: 4 });
    const before = await rica.objective(x);
    const scaled = new Float32Array(w.length);
    for (let j = 0; j < 20; j++) for (let i = 0; i < 12; i++) scaled[j * 12 + i] = w[j * 12 + i] * (1 + j);
    rica._setWeights(scaled);
    const after = await rica.objective(x);
    expect(after.loss).toBeCloseTo(before.loss, 5);
    for (let j = 0; j < 20; j++) {
      let along = 0;
      let norm = 0;
      for (let i = 0; i < 12; i++) {
        along += before.gradient.data[j * 12 + i] * w[j * 12 + i];
        norm += Math.abs(before.gradient.data[j * 12 + i] * w[j * 12 + i]);
      }
      expect(Math.abs(along)).toBeLessThan(1e-5 * norm + 1e-9);
      // The gradient at a scaled row is the gradient at the row divided by the scale.
      for (let i = 0; i < 12; i++) expect(after.gradient.data[j * 12 + i]).toBeCloseTo(before.gradient.data[j * 12 + i] / (1 + j), 5);
    }
    rica.dispose();
  });
});
