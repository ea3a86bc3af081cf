// FistaCoder: the codes are lasso solutions (KKT conditions, agreement with coordinate descent
// and with enumeration), the objective never increases, L is the largest eigenvalue of D D^T,
// warm starts, the duality-gap stop, and determinism.
import { describe, expect, it } from 'vitest';

import { FistaCoder, type Matrix } from '../lib/index.js';
import { cpuKernelSets, randomMatrix, relativeError } from './fixtures.js';
import { countNonZero, lasso, randomDictionary, row } from './fista_fixtures.js';
import * as ref from './fista_reference.js';

// Float32 inputs: G = D D^T and c = x D^T are formed in float, so the KKT violation seen in
// float64 differs from the solver's own by about 1e-7 of the scale.
const floatSlack = 5e-7;

function codesRow(result: { codes: Matrix }, r: number): Float32Array {
  return row(result.codes, r);
}

describe.each([false, true])('lasso codes, nonNegative %s', (nonNegative) => {
  const m = 64;
  const d = 24;
  const dictionary = randomDictionary(m, d, 1);
  const x = randomMatrix(16, d, 2);
  const lambda = 0.5;
  const problem = lasso(dictionary, lambda, nonNegative);

  it('satisfy the KKT conditions of the lasso to the tolerance asked for', async () => {
    const coder = new FistaCoder({ dictionary, lambda, nonNegative, maxIter: 20_000 });
    const result = await coder.encode(x);
    expect(result.converged).toBe(true);
    let active = 0;
    for (let r = 0; r < x.rows; r++) {
      const z = codesRow(result, r);
      const xr = row(x, r);
      const { violation, scale } = ref.kkt(problem, xr, z);
      expect(violation / scale).toBeLessThanOrEqual(coder.tol + floatSlack);
      // Each condition separately, as the lasso states them.
      const g = ref.gradient(problem, xr, z);
      const bound = (coder.tol + floatSlack) * scale;
      for (let j = 0; j < m; j++) {
        if (z[j] !== 0) {
          expect(Math.abs(g[j] + lambda * Math.sign(z[j]))).toBeLessThanOrEqual(bound);
          if (nonNegative) expect(z[j]).toBeGreaterThan(0);
        } else if (nonNegative) {
          expect(-g[j]).toBeLessThanOrEqual(lambda + bound);
        } else {
          expect(Math.abs(g[j])).toBeLessThanOrEqual(lambda + bound);
        }
      }
      active += countNonZero(z);
      // The solver's own measure agrees with the float64 one.
      expect(Math.abs(result.rowKkt[r] - violation / scale)).toBeLessThan(floatSlack);
    }
    // A non-trivial problem: some codes active, most not.
    expect(active / x.rows).toBeGreaterThan(2);
    expect(active / x.rows).toBeLessThan(m / 2);
    coder.dispose();
  });

  it('agree with coordinate descent in float64', async () => {
    const coder = new FistaCoder({ dictionary, lambda, nonNegative, maxIter: 20_000, tol: 1e-7 });
    const result = await coder.encode(x);
    for (let r = 0; r < x.rows; r++) {
      const expected = ref.coordinateDescent(problem, row(x, r));
      const best = ref.objective(problem, row(x, r), expected);
      expect(relativeError(codesRow(result, r), expected)).toBeLessThan(1e-4);
      expect(Math.abs(result.rowObjectives[r] - best) / best).toBeLessThan(1e-8);
      // The reported objective is the objective of the codes returned.
      expect(Math.abs(result.rowObjectives[r] - ref.objective(problem, row(x, r), codesRow(result, r))) / best).toBeLessThan(1e-12);
    }
    expect(result.objective).toBeCloseTo(result.rowObjectives.reduce((a, b) => a + b, 0) / x.rows, 12);
    expect(result.iterations).toBe(Math.max(...result.rowIterations));
    coder.dispose();
  });

  it('agree with exhaustive enumeration on tiny problems', async () => {
    const tiny = randomDictionary(4, 6, 3);
    const xs = randomMatrix(6, 6, 4);
    for (const lam of [0.05, 0.3, 1]) {
      const coder = new FistaCoder({ dictionary: tiny, lambda: lam, nonNegative, maxIter: 20_000, tol: 1e-8 });
      const result = await coder.encode(xs);
      for (let r = 0; r < xs.rows; r++) {
        const expected = ref.exhaustive(lasso(tiny, lam, nonNegative), row(xs, r));
        const best = ref.objective(lasso(tiny, lam, nonNegative), row(xs, r), expected);
        expect(relativeError(codesRow(result, r), expected)).toBeLessThan(1e-5);
        expect(result.rowObjectives[r]).toBeGreaterThanOrEqual(best * (1 - 1e-12));
        expect(result.rowObjectives[r]).toBeLessThanOrEqual(best * (1 + 1e-9));
      }
      coder.dispose();
    }
  });

  it('never increase the objective from one iteration to the next', async () => {
    // The same deterministic run stopped after k iterations, for k = 0, 1, 2, ...
    const ill = randomDictionary(48, 16, 5);
    const xs = randomMatrix(6, 16, 6, 3);
    const objectives: Float64Array[] = [];
    for (let k = 0; k <= 80; k++) {
      const coder = new FistaCoder({ dictionary: ill, lambda: 0.05, nonNegative, maxIter: k, tol: 0 });
      const result = await coder.encode(xs);
      objectives.push(result.rowObjectives);
      expect(result.rowIterations.every((i) => i === k)).toBe(true);
      coder.dispose();
    }
    let decreases = 0;
    for (let r = 0; r < xs.rows; r++) {
      for (let k = 1; k < objectives.length; k++) {
        const [before, after] = [objectives[k - 1][r], objectives[k][r]];
        expect(after).toBeLessThanOrEqual(before * (1 + 1e-13));
        if (after < before * (1 - 1e-6)) decreases++;
      }
    }
    // Progress was made along the way (not a run stuck at its start).
    expect(decreases).toBeGreaterThan(xs.rows * 20);
  });
});

// Many more atoms than non-zeros: the solver iterates on working sets of 64 atoms chosen from
// 600 (the tests above have too few atoms for that), so these fail if an atom outside the first
// working set is never brought in, or if a step on a working set is too long for its curvature.
describe.each([false, true])('working sets, nonNegative %s', (nonNegative) => {
  const m = 600;
  const d = 40;
  const dictionary = randomDictionary(m, d, 21);
  const x = randomMatrix(24, d, 22);
  const lambda = 0.9;
  const problem = lasso(dictionary, lambda, nonNegative);
  const optimum = Array.from({ length: x.rows }, (_, r) => ref.coordinateDescent(problem, row(x, r)));
  const best = optimum.map((z, r) => ref.objective(problem, row(x, r), z));

  it('reach the lasso optimum over every atom', async () => {
    const coder = new FistaCoder({ dictionary, lambda, nonNegative, tol: 1e-7, maxIter: 20_000 });
    const result = await coder.encode(x);
    expect(result.converged).toBe(true);
    let active = 0;
    for (let r = 0; r < x.rows; r++) {
      const z = codesRow(result, r);
      const { violation, scale } = ref.kkt(problem, row(x, r), z);
      expect(violation / scale).toBeLessThanOrEqual(coder.tol + floatSlack);
      expect(relativeError(z, optimum[r])).toBeLessThan(1e-4);
      expect(Math.abs(result.rowObjectives[r] - best[r]) / best[r]).toBeLessThan(1e-8);
      active += countNonZero(z);
    }
    // Supports of a few atoms: working sets far smaller than the dictionary.
    expect(active / x.rows).toBeGreaterThan(3);
    expect(2 * (active / x.rows)).toBeLessThan(64);
    coder.dispose();
  });

  it('with tol 0, iterating longer keeps approaching the optimum over every atom', async () => {
    for (const [maxIter, bound] of [[400, 1e-6], [3000, 1e-10]] as const) {
      const coder = new FistaCoder({ dictionary, lambda, nonNegative, tol: 0, maxIter });
      const result = await coder.encode(x);
      expect(Array.from(result.rowIterations).every((i) => i === maxIter)).toBe(true);
      for (let r = 0; r < x.rows; r++) expect((result.rowObjectives[r] - best[r]) / best[r]).toBeLessThan(bound);
      coder.dispose();
    }
  });

  it('never increase the objective from one iteration to the next', async () => {
    const xs = randomMatrix(6, d, 23, 3);
    let previous: Float64Array | undefined;
    let decreases = 0;
    for (let k = 0; k <= 60; k++) {
      const coder = new FistaCoder({ dictionary, lambda: 0.3, nonNegative, maxIter: k, tol: 0 });
      const result = await coder.encode(xs);
      expect(result.rowIterations.every((i) => i === k)).toBe(true);
      if (previous) {
        for (let r = 0; r < xs.rows; r++) {
          expect(result.rowObjectives[r]).toBeLessThanOrEqual(previous[r] * (1 + 1e-13));
          if (result.rowObjectives[r] < previous[r] * (1 - 1e-6)) decreases++;
        }
      }
      previous = result.rowObjectives;
      coder.dispose();
    }
    expect(decreases).toBeGreaterThan(xs.rows * 20);
  });
});

describe('the step size', () => {
  it.each([
    ['more atoms than dimensions (power iteration on D^T D)', 12, 8],
    ['fewer atoms than dimensions (power iteration on D D^T)', 6, 10],
  ])('L is the largest eigenvalue of D D^T: %s', async (_, m, d) => {
    const dictionary = randomDictionary(m, d, 7, false);
    const eigenvalues = ref.symmetricEigenvalues(ref.gram(Float64Array.from(dictionary.data), m, d), m);
    const coder = new FistaCoder({ dictionary, lambda: 0.1 });
    const L = await coder.lipschitz();
    expect(L).toBeGreaterThanOrEqual(eigenvalues[0]);
    expect(L).toBeLessThanOrEqual(eigenvalues[0] * (1 + 1e-5));
    // Not 2 L (the gradient of ||x - zD||^2 rather than of half of it).
    expect(L).toBeLessThan(1.5 * eigenvalues[0]);
    coder.dispose();
  });

  it('lambda 0 gives the least-squares codes (fewer atoms than dimensions: unique)', async () => {
    const dictionary = randomDictionary(6, 10, 17);
    const x = randomMatrix(5, 10, 18);
    const coder = new FistaCoder({ dictionary, lambda: 0, maxIter: 20_000 });
    const result = await coder.encode(x);
    expect(result.converged).toBe(true);
    for (let r = 0; r < 5; r++) {
      const expected = ref.coordinateDescent(lasso(dictionary, 0), row(x, r));
      expect(relativeError(codesRow(result, r), expected)).toBeLessThan(1e-5);
    }
    coder.dispose();
  });

  it('an all-zero atom gets a zero code, and an all-zero dictionary gives zero codes', async () => {
    const dictionary = randomDictionary(8, 5, 8);
    dictionary.data.fill(0, 3 * 5, 4 * 5);
    const x = randomMatrix(4, 5, 9);
    const coder = new FistaCoder({ dictionary, lambda: 0.1 });
    const result = await coder.encode(x);
    expect(result.converged).toBe(true);
    for (let r = 0; r < 4; r++) expect(codesRow(result, r)[3]).toBe(0);
    coder.dispose();
    const zero = new FistaCoder({ dictionary: { rows: 8, cols: 5, data: new Float32Array(40) }, lambda: 0.1 });
    expect(await zero.lipschitz()).toBe(1);
    const empty = await zero.encode(x);
    expect(countNonZero(empty.codes.data)).toBe(0);
    expect(empty.converged).toBe(true);
    zero.dispose();
  });
});

describe('stopping', () => {
  const dictionary = randomDictionary(96, 24, 10);
  const x = randomMatrix(12, 24, 11);
  const problem = lasso(dictionary, 0.4);

  it('gapTol bounds each row\'s relative distance to the optimum', async () => {
    const coder = new FistaCoder({ dictionary, lambda: 0.4, tol: 0, gapTol: 1e-3, maxIter: 10_000 });
    const result = await coder.encode(x);
    const tight = new FistaCoder({ dictionary, lambda: 0.4, tol: 0, maxIter: 3 });
    const early = await tight.encode(x);
    expect(result.converged).toBe(true);
    for (let r = 0; r < x.rows; r++) {
      const best = ref.objective(problem, row(x, r), ref.coordinateDescent(problem, row(x, r)));
      const excess = result.rowObjectives[r] - best;
      expect(excess / best).toBeLessThanOrEqual(1e-3);
      expect(result.rowGaps[r] / best).toBeLessThanOrEqual(1e-3 * (1 + 1e-3));
      // The gap bounds the excess, also far from the optimum.
      expect(result.rowGaps[r]).toBeGreaterThanOrEqual(excess - 1e-9 * best);
      expect(early.rowGaps[r]).toBeGreaterThanOrEqual(early.rowObjectives[r] - best - 1e-9 * best);
    }
    // The looser stop ends sooner than the default KKT tolerance would.
    const strict = new FistaCoder({ dictionary, lambda: 0.4, maxIter: 10_000 });
    const full = await strict.encode(x);
    expect(result.iterations).toBeLessThan(full.iterations);
    for (const c of [coder, tight, strict]) c.dispose();
  });

  it('reports rows that ran out of iterations', async () => {
    const coder = new FistaCoder({ dictionary, lambda: 0.4, maxIter: 2 });
    const result = await coder.encode(x);
    expect(result.converged).toBe(false);
    expect(result.iterations).toBe(2);
    expect(Array.from(result.rowConverged)).toContain(0);
    for (let r = 0; r < x.rows; r++) {
      if (result.rowConverged[r] === 0) expect(result.rowKkt[r]).toBeGreaterThan(coder.tol);
    }
    coder.dispose();
  });

  it('a row whose optimum is zero stops at once', async () => {
    const c = ref.correlations(problem, row(x, 0));
    const lambda = Math.max(...Array.from(c, Math.abs)) * 1.01;
    const coder = new FistaCoder({ dictionary, lambda });
    const result = await coder.encode({ rows: 2, cols: 24, data: Float32Array.from([...row(x, 0), ...new Float32Array(24)]) });
    expect(Array.from(result.rowIterations)).toEqual([0, 0]);
    expect(countNonZero(result.codes.data)).toBe(0);
    expect(result.converged).toBe(true);
    expect(result.rowObjectives[1]).toBe(0);
    coder.dispose();
  });

  it('encodes zero rows', async () => {
    const coder = new FistaCoder({ dictionary, lambda: 0.4 });
    const result = await coder.encode({ rows: 0, cols: 24, data: new Float32Array(0) });
    expect(result.codes).toEqual({ rows: 0, cols: 96, data: new Float32Array(0) });
    expect(result.iterations).toBe(0);
    expect(result.objective).toBeNaN();
    coder.dispose();
  });
});

describe('warm starts', () => {
  const dictionary = randomDictionary(128, 32, 12);
  const x = randomMatrix(20, 32, 13);

  it('starting from the solution takes no iterations', async () => {
    const coder = new FistaCoder({ dictionary, lambda: 0.5, maxIter: 5000 });
    const cold = await coder.encode(x);
    expect(cold.converged).toBe(true);
    const warm = await coder.encode(x, { init: cold.codes });
    expect(Array.from(warm.rowIterations).every((i) => i === 0)).toBe(true);
    expect(warm.codes.data).toEqual(cold.codes.data);
    coder.dispose();
  });

  it('refining a looser solve takes fewer iterations than starting over, and reaches the same codes', async () => {
    const loose = new FistaCoder({ dictionary, lambda: 0.5, tol: 1e-3 });
    const coder = new FistaCoder({ dictionary, lambda: 0.5, tol: 1e-7, maxIter: 5000 });
    const start = await loose.encode(x);
    const cold = await coder.encode(x);
    const warm = await coder.encode(x, { init: start.codes });
    expect(cold.converged && warm.converged).toBe(true);
    const sum = (a: Int32Array) => a.reduce((s, v) => s + v, 0);
    expect(sum(warm.rowIterations)).toBeLessThan(0.8 * sum(cold.rowIterations));
    expect(relativeError(warm.codes.data, cold.codes.data)).toBeLessThan(1e-4);
    loose.dispose();
    coder.dispose();
  });

  it('maxIter 0 returns the start point, projected onto z >= 0 when nonNegative', async () => {
    const init = randomMatrix(x.rows, 128, 14);
    const plain = new FistaCoder({ dictionary, lambda: 0.5, maxIter: 0 });
    expect((await plain.encode(x, { init })).codes.data).toEqual(init.data);
    const nonNegative = new FistaCoder({ dictionary, lambda: 0.5, maxIter: 0, nonNegative: true });
    const projected = await nonNegative.encode(x, { init });
    expect(projected.codes.data).toEqual(init.data.map((v) => Math.max(v, 0)));
    const problem = lasso(dictionary, 0.5, true);
    expect(projected.rowObjectives[0]).toBeCloseTo(ref.objective(problem, row(x, 0), row(projected.codes, 0)), 8);
    plain.dispose();
    nonNegative.dispose();
  });
});

describe('determinism', () => {
  const dictionary = randomDictionary(200, 40, 15);
  const x = randomMatrix(150, 40, 16);

  it('the same codes for any number of threads, and row by row', async () => {
    const results = [];
    for (const threads of [1, 2, 3]) {
      const coder = new FistaCoder({ dictionary, lambda: 0.6, threads });
      results.push(await coder.encode(x));
      coder.dispose();
    }
    expect(results[1].codes.data).toEqual(results[0].codes.data);
    expect(results[2].codes.data).toEqual(results[0].codes.data);
    expect(results[2].rowIterations).toEqual(results[0].rowIterations);
    const coder = new FistaCoder({ dictionary, lambda: 0.6 });
    for (const r of [0, 77, 149]) {
      const single = await coder.encode({ rows: 1, cols: 40, data: row(x, r).slice() });
      expect(single.codes.data).toEqual(row(results[0].codes, r));
    }
    coder.dispose();
  });

  it.each(cpuKernelSets)('kernel set %s agrees with the float64 reference', async (kernels) => {
    const coder = FistaCoder._withCpuKernels({ dictionary, lambda: 0.6, maxIter: 5000 }, kernels);
    const result = await coder.encode(x);
    expect(result.converged).toBe(true);
    const problem = lasso(dictionary, 0.6);
    for (const r of [0, 1, 2]) {
      const { violation, scale } = ref.kkt(problem, row(x, r), codesRow(result, r));
      expect(violation / scale).toBeLessThanOrEqual(coder.tol + floatSlack);
    }
    coder.dispose();
  });
});
