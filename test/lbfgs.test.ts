// L-BFGS and its strong Wolfe line search on problems with known minima, the Wolfe conditions
// checked on every accepted step, robustness to a wrong gradient, and argument checks.
import { describe, expect, it } from 'vitest';

import { lbfgs, wolfeLineSearch, type Evaluation, type LbfgsIteration, type LinePoint } from '../lib/lbfgs.js';
import { addon } from '../lib/native.js';
import { Random } from '../lib/random.js';

function rosenbrock(x: Float64Array): Evaluation {
  // Extended Rosenbrock: sum over pairs of 100 (x_{2i+1} - x_{2i}^2)^2 + (1 - x_{2i})^2.
  const g = new Float64Array(x.length);
  let f = 0;
  for (let i = 0; i < x.length; i += 2) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    f += 100 * a * a + b * b;
    g[i] = -400 * a * x[i] - 2 * b;
    g[i + 1] = 200 * a;
  }
  return { f, g };
}

function rosenbrockStart(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (i % 2 === 0 ? -1.2 : 1));
}

/**
 * f = 0.5 (x - xStar)^T A (x - xStar) with A = Q diag(eigenvalues) Q^T: minimum 0 at xStar.
 * (Written around xStar rather than as 0.5 x^T A x - b^T x, whose rounding error near the
 * minimum would swamp the decrease a line search has to see.)
 */
function quadratic(n: number, seed: number, condition: number) {
  const random = new Random(seed);
  // Q from Gram-Schmidt on a random matrix.
  const q = Float64Array.from({ length: n * n }, () => random.normal());
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let d = 0;
      for (let k = 0; k < n; k++) d += q[i * n + k] * q[j * n + k];
      for (let k = 0; k < n; k++) q[i * n + k] -= d * q[j * n + k];
    }
    let norm = 0;
    for (let k = 0; k < n; k++) norm += q[i * n + k] ** 2;
    for (let k = 0; k < n; k++) q[i * n + k] /= Math.sqrt(norm);
  }
  const eigenvalues = Float64Array.from({ length: n }, (_, i) => condition ** (i / (n - 1)));
  const a = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let k = 0; k < n; k++) a[r * n + c] += q[k * n + r] * eigenvalues[k] * q[k * n + c];
  const xStar = Float64Array.from({ length: n }, () => random.normal());
  const objective = (x: Float64Array): Evaluation => {
    const g = new Float64Array(n);
    let f = 0;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) g[r] += a[r * n + c] * (x[c] - xStar[c]);
      f += 0.5 * (x[r] - xStar[r]) * g[r];
    }
    return { f, g };
  };
  return { objective, xStar };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The search direction of Nocedal & Wright's algorithm 7.4, one loop per dot product and per
// update, in float64 (with no pairs: -g).
function textbookDirection(g: Float64Array, pairs: Array<{ s: Float64Array; y: Float64Array; rho: number }>): Float64Array {
  const q = g.map((v) => -v);
  const alphas: number[] = [];
  for (let j = pairs.length - 1; j >= 0; j--) {
    alphas[j] = pairs[j].rho * dot(pairs[j].s, q);
    for (let i = 0; i < q.length; i++) q[i] -= alphas[j] * pairs[j].y[i];
  }
  if (pairs.length > 0) {
    const { y, rho } = pairs[pairs.length - 1];
    const gamma = 1 / (rho * dot(y, y));
    for (let i = 0; i < q.length; i++) q[i] *= gamma;
  }
  for (let j = 0; j < pairs.length; j++) {
    const beta = pairs[j].rho * dot(pairs[j].y, q);
    for (let i = 0; i < q.length; i++) q[i] += (alphas[j] - beta) * pairs[j].s[i];
  }
  return q;
}

describe('lbfgs', () => {
  it('minimises the 2-D Rosenbrock function from (-1.2, 1) to (1, 1)', async () => {
    const result = await lbfgs(rosenbrock, rosenbrockStart(2), { maxIterations: 200 });
    expect(result.reason).toBe('gradient tolerance');
    expect(maxAbsDifference(result.x, [1, 1])).toBeLessThan(1e-5);
    expect(result.f).toBeLessThan(1e-10);
    expect(result.iterations).toBeLessThan(60);
  });

  it('minimises the 100-D extended Rosenbrock function', async () => {
    const result = await lbfgs(rosenbrock, rosenbrockStart(100), { maxIterations: 1000, progressTolerance: 0 });
    expect(result.reason).toBe('gradient tolerance');
    expect(maxAbsDifference(result.x, new Float64Array(100).fill(1))).toBeLessThan(1e-5);
  });

  it('finds the known minimum of an ill-conditioned convex quadratic (condition 1e4, n 60)', async () => {
    const { objective, xStar } = quadratic(60, 1, 1e4);
    const result = await lbfgs(objective, new Float64Array(60), { maxIterations: 2000, gradientTolerance: 1e-9, progressTolerance: 0 });
    expect(result.reason).toBe('gradient tolerance');
    // |x - xStar| <= |g| / smallest eigenvalue (1).
    expect(maxAbsDifference(result.x, xStar)).toBeLessThan(1e-8);
    expect(result.f).toBeLessThan(1e-15);
  });

  it('every accepted step satisfies the strong Wolfe conditions', async () => {
    const c1 = 1e-4;
    const c2 = 0.9;
    for (const [name, objective, x0] of [
      ['Rosenbrock', rosenbrock, rosenbrockStart(20)],
      ['quadratic', quadratic(30, 2, 1e3).objective, new Float64Array(30)],
    ] as const) {
      const start = objective(x0);
      const points: Array<{ x: Float64Array; f: number; g: Float64Array }> = [{ x: x0, ...start }];
      await lbfgs(objective, x0, {
        maxIterations: 300,
        c1,
        c2,
        onIteration: ({ x, f, g }: LbfgsIteration) => void points.push({ x: x.slice(), f, g: g.slice() }),
      });
      expect(points.length, name).toBeGreaterThan(10);
      for (let k = 1; k < points.length; k++) {
        const [before, after] = [points[k - 1], points[k]];
        const s = after.x.map((v, i) => v - before.x[i]);
        // In terms of s = alpha p: alpha phi'(0) = g_k . s and alpha phi'(alpha) = g_{k+1} . s.
        const slope0 = dot(before.g, s);
        expect(slope0, `${name} step ${k} is a descent step`).toBeLessThan(0);
        expect(after.f, `${name} step ${k} sufficient decrease`).toBeLessThanOrEqual(before.f + c1 * slope0);
        expect(Math.abs(dot(after.g, s)), `${name} step ${k} curvature`).toBeLessThanOrEqual(c2 * Math.abs(slope0));
      }
    }
  });

  it('takes the steps of the textbook two-loop recursion, bit for bit', async () => {
    // The optimizer fuses the recursion's loops; here each accepted step x_{k+1} - x_k is held
    // to alpha times the direction of Nocedal & Wright's algorithm 7.4 written plainly (one
    // loop per dot product and per update), from the pairs of the accepted iterates. After a
    // reset (a non-descent direction or a failed search) the optimizer starts from -g again,
    // so a step may instead match the direction with no pairs.
    for (const [name, objective, x0, memory] of [
      ['Rosenbrock 100, memory 3', rosenbrock, rosenbrockStart(100), 3],
      ['Rosenbrock 100, memory 10', rosenbrock, rosenbrockStart(100), 10],
      ['quadratic 40, memory 5', quadratic(40, 3, 1e3).objective, new Float64Array(40), 5],
    ] as const) {
      const points = [{ x: x0.slice(), g: objective(x0).g, stepLength: 0 }];
      await lbfgs(objective, x0, {
        maxIterations: 300,
        memory,
        progressTolerance: 0,
        onIteration: ({ x, g, stepLength }) => void points.push({ x: x.slice(), g: g.slice(), stepLength }),
      });
      expect(points.length, name).toBeGreaterThan(2 * memory);
      let pairs: Array<{ s: Float64Array; y: Float64Array; rho: number }> = [];
      let withPairs = 0;
      for (let k = 1; k < points.length; k++) {
        const [before, after] = [points[k - 1], points[k]];
        const takes = (p: Float64Array) => after.x.every((v, i) => v === before.x[i] + after.stepLength * p[i]);
        if (pairs.length > 0 && takes(textbookDirection(before.g, pairs))) {
          withPairs++;
        } else {
          pairs = [];
          expect(takes(textbookDirection(before.g, pairs)), `${name}: step ${k}`).toBe(true);
        }
        const s = after.x.map((v, i) => v - before.x[i]);
        const y = after.g.map((v, i) => v - before.g[i]);
        const sy = dot(s, y);
        if (sy > 1e-10 * Math.sqrt(dot(s, s) * dot(y, y)) && Number.isFinite(sy)) {
          if (pairs.length === memory) pairs.shift();
          pairs.push({ s, y, rho: 1 / sy });
        }
      }
      expect(withPairs, name).toBeGreaterThan(points.length / 2);
    }
  });

  it('reuses its parameter-sized arrays rather than allocating new ones every iteration', async () => {
    // Each trial point the objective sees is one of the optimizer's arrays; without reuse there
    // would be one per evaluation. The pairs (2 x memory), the current point and a few trials
    // bound how many there are.
    const { objective } = quadratic(30, 4, 1e4);
    const seen = new Set<Float64Array>();
    const memory = 4;
    const result = await lbfgs(
      (x) => {
        seen.add(x);
        return objective(x);
      },
      new Float64Array(30),
      { maxIterations: 200, memory, gradientTolerance: 0, progressTolerance: 0 },
    );
    expect(result.evaluations).toBeGreaterThan(50);
    expect(seen.size).toBeLessThanOrEqual(2 * memory + 6);
  });

  it('stops at maxIterations, counting evaluations', async () => {
    let calls = 0;
    const result = await lbfgs(
      (x) => {
        calls++;
        return rosenbrock(x);
      },
      rosenbrockStart(2),
      { maxIterations: 5 },
    );
    expect(result.reason).toBe('max iterations');
    expect(result.iterations).toBe(5);
    expect(result.evaluations).toBe(calls);
    expect(result.f).toBeLessThan(rosenbrock(rosenbrockStart(2)).f);
  });

  it('does not modify x0 and accepts an async objective', async () => {
    const x0 = rosenbrockStart(2);
    const result = await lbfgs(async (x) => rosenbrock(x), x0, { maxIterations: 100 });
    expect(Array.from(x0)).toEqual([-1.2, 1]);
    expect(result.reason).toBe('gradient tolerance');
  });

  it('ends with "line search failed", not a loop, when the gradient points the wrong way', async () => {
    let calls = 0;
    const wrong = (x: Float64Array): Evaluation => {
      calls++;
      const { f, g } = rosenbrock(x);
      return { f, g: g.map((v) => -v) };
    };
    const result = await lbfgs(wrong, rosenbrockStart(2), { maxIterations: 100 });
    expect(result.reason).toBe('line search failed');
    expect(result.iterations).toBe(0);
    expect(Array.from(result.x)).toEqual([-1.2, 1]);
    expect(calls).toBeLessThanOrEqual(1 + 25);
  });

  it('stops when the objective stops changing', async () => {
    // f is quantised, so near the minimum steps no longer change it.
    const quantised = (x: Float64Array): Evaluation => {
      const { f, g } = rosenbrock(x);
      return { f: Math.round(f * 1e3) / 1e3, g };
    };
    const result = await lbfgs(quantised, rosenbrockStart(2), { maxIterations: 200, gradientTolerance: 0 });
    expect(['no progress', 'line search failed']).toContain(result.reason);
    expect(result.iterations).toBeLessThan(200);
    expect(result.f).toBeLessThanOrEqual(1e-3);
  });

  it('an abort signal rejects with its reason before the next iteration', async () => {
    const controller = new AbortController();
    const iterations: number[] = [];
    const run = lbfgs(rosenbrock, rosenbrockStart(20), {
      maxIterations: 1000,
      signal: controller.signal,
      onIteration: ({ iteration }) => {
        iterations.push(iteration);
        if (iteration === 3) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(iterations).toEqual([1, 2, 3]);
  });

  it.each([
    ['Expected function for objective but received "f" of type string', TypeError, () => lbfgs('f' as never, new Float64Array(2), { maxIterations: 1 })],
    ['Expected Float64Array for x0 but received an Array of length 2', TypeError, () => lbfgs(rosenbrock, [1, 2] as never, { maxIterations: 1 })],
    ['Expected object for options but received undefined', TypeError, () => lbfgs(rosenbrock, new Float64Array(2), undefined as never)],
    ['Expected number for options.maxIterations but received undefined', TypeError, () => lbfgs(rosenbrock, new Float64Array(2), {} as never)],
    ['Expected non-negative integer for options.maxIterations but received -1 of type number', RangeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: -1 })],
    ['Expected integer in [1, 1000] for options.memory but received 0 of type number', RangeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: 1, memory: 0 })],
    ['Expected integer in [1, 1024] for options.threads but received 0 of type number', RangeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: 1, threads: 0 })],
    ['Expected number in (0, 0.5) for options.c1 but received 0 of type number', RangeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: 1, c1: 0 })],
    ['Expected number in (0.1, 1) for options.c2 but received 0.05 of type number', RangeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: 1, c1: 0.1, c2: 0.05 })],
    ["Unknown option 'maxIteration' for lbfgs; did you mean 'maxIterations'?", TypeError, () => lbfgs(rosenbrock, new Float64Array(2), { maxIterations: 1, maxIteration: 3 } as never)],
    ["Expected the objective's gradient to have length 2 but received 3", RangeError, () => lbfgs(() => ({ f: 0, g: new Float64Array(3) }), new Float64Array(2), { maxIterations: 1 })],
    ["Expected { f: number, g: Float64Array } for the objective's result but received an object", TypeError, () => lbfgs(() => ({ f: 0, g: [0, 0] }) as never, new Float64Array(2), { maxIterations: 1 })],
    ['Expected a finite objective at x0 but received NaN', RangeError, () => lbfgs(() => ({ f: NaN, g: new Float64Array(2) }), new Float64Array(2), { maxIterations: 1 })],
  ])('rejects: %s', async (message, type, call) => {
    const run = (async () => call())();
    await expect(run).rejects.toThrow(type);
    await expect(run).rejects.toThrow(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  });
});

describe('the native passes (addon.lbfgsDirection, lbfgsSteepest, lbfgsStep, lbfgsSlope, lbfgsPair)', () => {
  // Pairs with positive curvature, y = A s for a diagonal A in [0.5, 50], and a gradient.
  function problem(n: number, m: number, seed: number) {
    const random = new Random(seed);
    const curvature = Float64Array.from({ length: n }, () => 0.5 + 49.5 * random.uniform());
    const pairs = Array.from({ length: m }, () => {
      const s = Float64Array.from({ length: n }, () => random.normal());
      const y = s.map((v, i) => curvature[i] * v);
      return { s, y, rho: 1 / dot(s, y) };
    });
    const g = Float64Array.from({ length: n }, () => random.normal());
    return { g, pairs };
  }
  async function native(g: Float64Array, pairs: Array<{ s: Float64Array; y: Float64Array; rho: number }>, threads: number) {
    const newest = pairs[pairs.length - 1];
    const direction = new Float64Array(g.length);
    const slope = await addon.lbfgsDirection(
      g,
      pairs.map((p) => p.s),
      pairs.map((p) => p.y),
      Float64Array.from(pairs, (p) => p.rho),
      1 / (newest.rho * dot(newest.y, newest.y)),
      direction,
      threads,
    );
    return { direction, slope };
  }

  it('equals the textbook recursion bit for bit up to 16,384 values, with its slope', async () => {
    for (const [n, m] of [[1, 1], [7, 3], [1000, 10], [16_384, 4]] as const) {
      const { g, pairs } = problem(n, m, n + m);
      const expected = textbookDirection(g, pairs);
      const { direction, slope } = await native(g, pairs, 3);
      expect(maxAbsDifference(direction, expected), `n ${n}, ${m} pairs`).toBe(0);
      expect(slope, `n ${n}, ${m} pairs`).toBe(dot(g, expected));
    }
  });

  it('beyond that sums in blocks: within rounding of the textbook, the same bits on any number of threads', async () => {
    for (const [n, m] of [[16_385, 2], [100_000, 10]] as const) {
      const { g, pairs } = problem(n, m, n + m);
      const expected = textbookDirection(g, pairs);
      const scale = maxAbsDifference(expected, new Float64Array(n));
      const one = await native(g, pairs, 1);
      expect(maxAbsDifference(one.direction, expected) / scale, `n ${n}`).toBeLessThan(1e-12);
      expect(Math.abs(one.slope - dot(g, expected)) / Math.abs(dot(g, expected)), `n ${n}`).toBeLessThan(1e-12);
      expect(one.slope, `n ${n}`).toBeLessThan(0);  // a descent direction
      for (const threads of [2, 5]) {
        const other = await native(g, pairs, threads);
        expect(maxAbsDifference(other.direction, one.direction), `n ${n}, ${threads} threads`).toBe(0);
        expect(other.slope, `n ${n}, ${threads} threads`).toBe(one.slope);
      }
    }
  });

  // The line search's and the pairs' passes against plain loops: the same bits up to 16,384
  // values, the same on any number of threads beyond (and within rounding of the loops).
  it('the steepest direction, a trial point, its slope and max |g|, and a correction pair, as plain loops compute them', async () => {
    for (const n of [1, 1000, 16_384, 50_000]) {
      const random = new Random(n);
      const vector = () => Float64Array.from({ length: n }, () => random.normal());
      const [origin, p, g, x0, x1, g0, g1] = [vector(), vector(), vector(), vector(), vector(), vector(), vector()];
      const exact = n <= 16_384;
      const close = (actual: number, expected: number, what: string) => {
        if (exact) expect(actual, `${what}, n ${n}`).toBe(expected);
        else expect(Math.abs(actual - expected), `${what}, n ${n}`).toBeLessThanOrEqual(1e-12 * n);
      };
      let slope = 0, gMax = 0, sy = 0, ss = 0, yy = 0, steepestSlope = 0, l1 = 0;
      const step = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        steepestSlope += g[i] * -g[i];
        l1 += Math.abs(g[i]);
        step[i] = origin[i] + 0.37 * p[i];
        slope += g[i] * p[i];
        gMax = Math.max(gMax, Math.abs(g[i]));
        const si = x1[i] - x0[i], yi = g1[i] - g0[i];
        sy += si * yi; ss += si * si; yy += yi * yi;
      }
      const results = [];
      for (const threads of [1, 2, 5]) {
        const out = new Float64Array(n);
        await addon.lbfgsStep(out, origin, 0.37, p, threads);
        expect(maxAbsDifference(out, step), `step, n ${n}`).toBe(0);
        const s = new Float64Array(n), y = new Float64Array(n);
        const products = await addon.lbfgsPair(s, y, x0, x1, g0, g1, threads);
        expect(maxAbsDifference(s, x1.map((v, i) => v - x0[i])), `s, n ${n}`).toBe(0);
        expect(maxAbsDifference(y, g1.map((v, i) => v - g0[i])), `y, n ${n}`).toBe(0);
        const direction = new Float64Array(n);
        const steepest = await addon.lbfgsSteepest(g, direction, threads);
        expect(maxAbsDifference(direction, g.map((v) => -v)), `steepest direction, n ${n}`).toBe(0);
        results.push({ ...(await addon.lbfgsSlope(g, p, threads)), ...products, steepestSlope: steepest.slope, l1: steepest.l1 });
      }
      for (const r of results) expect(r, `n ${n}: the same bits on 1, 2 and 5 threads`).toEqual(results[0]);
      const r = results[0];
      close(r.slope, slope, 'slope');
      expect(r.gMax, `gMax, n ${n}`).toBe(gMax);
      close(r.sy, sy, 's . y');
      close(r.ss, ss, 's . s');
      close(r.yy, yy, 'y . y');
      close(r.steepestSlope, steepestSlope, 'g . -g');
      close(r.l1, l1, 'sum |g_i|');
    }
  });

  it('max |g| is NaN when g holds a NaN, in any block, as Math.max gives', async () => {
    for (const at of [0, 20_000, 39_999]) {
      const g = new Float64Array(40_000).fill(1);
      g[at] = NaN;
      expect((await addon.lbfgsSlope(g, new Float64Array(40_000), 2)).gMax, `NaN at ${at}`).toBeNaN();
    }
  });

  const f64 = (n: number) => new Float64Array(n);
  it.each([
    ['Expected Float64Array for g', TypeError, () => addon.lbfgsDirection(new Float32Array(2) as never, [f64(2)], [f64(2)], f64(1), 1, f64(2), 1)],
    ['Expected array for s', TypeError, () => addon.lbfgsDirection(f64(2), f64(2) as never, [f64(2)], f64(1), 1, f64(2), 1)],
    ['Expected Float64Array for y[1]', TypeError, () => addon.lbfgsDirection(f64(2), [f64(2), f64(2)], [f64(2), [0, 0]] as never, f64(2), 1, f64(2), 1)],
    ['Expected 2 elements in s[0] but received 3', RangeError, () => addon.lbfgsDirection(f64(2), [f64(3)], [f64(2)], f64(1), 1, f64(2), 1)],
    ['Expected as many y as s, at least one, but received 0 and 0', RangeError, () => addon.lbfgsDirection(f64(2), [], [], f64(1), 1, f64(2), 1)],
    ['Expected as many y as s, at least one, but received 2 and 1', RangeError, () => addon.lbfgsDirection(f64(2), [f64(2), f64(2)], [f64(2)], f64(2), 1, f64(2), 1)],
    ['Expected at least 2 elements in rho but received 1', RangeError, () => addon.lbfgsDirection(f64(2), [f64(2), f64(2)], [f64(2), f64(2)], f64(1), 1, f64(2), 1)],
    ['Expected number for gamma', TypeError, () => addon.lbfgsDirection(f64(2), [f64(2)], [f64(2)], f64(1), '1' as never, f64(2), 1)],
    ['Expected 2 elements in direction but received 1', RangeError, () => addon.lbfgsDirection(f64(2), [f64(2)], [f64(2)], f64(1), 1, f64(1), 1)],
    ['Expected threads in [1, 1024]', RangeError, () => addon.lbfgsDirection(f64(2), [f64(2)], [f64(2)], f64(1), 1, f64(2), 0)],
    ['Expected Float64Array for g', TypeError, () => addon.lbfgsSteepest(new Float32Array(2) as never, f64(2), 1)],
    ['Expected 2 elements in direction but received 3', RangeError, () => addon.lbfgsSteepest(f64(2), f64(3), 1)],
    ['Expected threads in [1, 1024]', RangeError, () => addon.lbfgsSteepest(f64(2), f64(2), 0.5)],
    ['Expected Float64Array for out', TypeError, () => addon.lbfgsStep([0, 0] as never, f64(2), 1, f64(2), 1)],
    ['Expected 2 elements in p but received 3', RangeError, () => addon.lbfgsStep(f64(2), f64(2), 1, f64(3), 1)],
    ['Expected number for alpha', TypeError, () => addon.lbfgsStep(f64(2), f64(2), null as never, f64(2), 1)],
    ['Expected 2 elements in p but received 1', RangeError, () => addon.lbfgsSlope(f64(2), f64(1), 1)],
    ['Expected threads in [1, 1024]', RangeError, () => addon.lbfgsSlope(f64(2), f64(2), 2000)],
    ['Expected 2 elements in g1 but received 4', RangeError, () => addon.lbfgsPair(f64(2), f64(2), f64(2), f64(2), f64(2), f64(4), 1)],
    ['Expected Float64Array for x0', TypeError, () => addon.lbfgsPair(f64(2), f64(2), new Float32Array(2) as never, f64(2), f64(2), f64(2), 1)],
  ])('refuses, before any work: %s', (message, type, call) => {
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });
});

describe('wolfeLineSearch', () => {
  // Test functions 1 and 2 of More & Thuente, "Line search algorithms with guaranteed
  // sufficient decrease" (ACM TOMS 1994), with their tight constants c1 1e-3, c2 0.1.
  const functions = [
    { name: '-a / (a^2 + 2)', phi: (a: number) => -a / (a * a + 2), slope: (a: number) => (a * a - 2) / (a * a + 2) ** 2 },
    {
      name: '(a + 0.004)^5 - 2 (a + 0.004)^4',
      phi: (a: number) => (a + 0.004) ** 5 - 2 * (a + 0.004) ** 4,
      slope: (a: number) => 5 * (a + 0.004) ** 4 - 8 * (a + 0.004) ** 3,
    },
  ];
  const c1 = 1e-3;
  const c2 = 0.1;

  describe.each(functions)('on $name', ({ phi, slope }) => {
    it.each([1e-3, 1e-1, 10, 1e3])('from initial step %d finds a strong Wolfe point', async (initial) => {
      const point = (alpha: number): LinePoint<null> => ({ alpha, f: phi(alpha), slope: slope(alpha), data: null });
      const start = point(0);
      const result = await wolfeLineSearch(async (a) => point(a), start, initial, { c1, c2, maxEvaluations: 30 });
      expect(result.strongWolfe).toBe(true);
      const found = result.point!;
      expect(found.alpha).toBeGreaterThan(0);
      expect(found.f).toBeLessThanOrEqual(start.f + c1 * found.alpha * start.slope);
      expect(Math.abs(found.slope)).toBeLessThanOrEqual(c2 * Math.abs(start.slope));
      expect(result.evaluations).toBeLessThanOrEqual(15);
    });
  });

  it('returns no point when nothing decreases phi', async () => {
    const result = await wolfeLineSearch(async (alpha) => ({ alpha, f: alpha, slope: 1, data: null }), { alpha: 0, f: 0, slope: -1, data: null }, 1, {
      c1: 1e-4,
      c2: 0.9,
      maxEvaluations: 10,
    });
    expect(result.point).toBeUndefined();
    expect(result.evaluations).toBe(10);
  });
});
