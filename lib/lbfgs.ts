// Limited-memory BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., algorithm 7.4 and
// 7.5) with a line search that satisfies the strong Wolfe conditions (algorithms 3.5 and 3.6,
// with safeguarded cubic interpolation). The objective is asynchronous so that an expensive
// one (RICA's native cost) runs off the main thread while the optimizer waits for it.
import { availableParallelism } from 'node:os';

import { addon } from './native.js';
import * as is from './validate.js';

export interface Evaluation {
  f: number;
  /** The gradient: a fresh array the optimizer may keep. */
  g: Float64Array;
}

/**
 * f and its gradient at x. x is the optimizer's own array, reused for later points once this
 * one is no longer needed: read it during the call, and copy it to keep it.
 */
export type Objective = (x: Float64Array) => Evaluation | Promise<Evaluation>;

export interface LbfgsIteration {
  /** 1-based. */
  iteration: number;
  /** The accepted point (the optimizer's own array: copy it to keep it). */
  x: Float64Array;
  f: number;
  g: Float64Array;
  /** Step length along the search direction. */
  stepLength: number;
  /** Objective evaluations so far, the first one included. */
  evaluations: number;
}

export interface LbfgsOptions {
  maxIterations: number;
  /** Correction pairs kept (default 10). */
  memory?: number;
  /** Stop when max |g_i| is at most this (default 1e-5). */
  gradientTolerance?: number;
  /** Stop when an iteration changes f by at most this times max(1, |f|) (default 1e-9). */
  progressTolerance?: number;
  /** Sufficient decrease constant of the Wolfe conditions (default 1e-4). */
  c1?: number;
  /** Curvature constant of the strong Wolfe conditions (default 0.9). */
  c2?: number;
  /** Objective evaluations one line search may spend (default 25). */
  maxLineSearchEvaluations?: number;
  /** Called after every iteration, and awaited. */
  onIteration?: (iteration: LbfgsIteration) => void | Promise<void>;
  /** Checked before every iteration; aborting rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * CPU threads for the optimizer's passes over x (the search direction, the line search's
   * points and slopes, the correction pairs), which run natively, off the main thread, with
   * one thread at most per 16,384 values. Default: all cores (os.availableParallelism()).
   */
  threads?: number;
}

export type LbfgsStopReason =
  | 'gradient tolerance'
  | 'no progress'
  | 'max iterations'
  | 'line search failed';

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  g: Float64Array;
  iterations: number;
  evaluations: number;
  reason: LbfgsStopReason;
}

/** A point of the line search: phi(alpha) = f(x + alpha p), its slope phi'(alpha) = g . p. */
export interface LinePoint<T> {
  alpha: number;
  f: number;
  slope: number;
  /** What the caller wants kept with the point (the position and gradient). */
  data: T;
}

export interface LineSearchResult<T> {
  /** The accepted point, or undefined when no step decreased phi sufficiently. */
  point: LinePoint<T> | undefined;
  /** Whether the point also satisfies the strong Wolfe curvature condition. */
  strongWolfe: boolean;
  evaluations: number;
}

const optionNames = [
  'maxIterations',
  'memory',
  'gradientTolerance',
  'progressTolerance',
  'c1',
  'c2',
  'maxLineSearchEvaluations',
  'onIteration',
  'signal',
  'threads',
] as const;

/**
 * The minimiser of the cubic through (a, fa, slope da) and (b, fb, slope db) (Nocedal &
 * Wright eq. 3.59), or NaN when the cubic has none.
 */
export function cubicMinimizer(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const d1 = da + db - (3 * (fa - fb)) / (a - b);
  const radicand = d1 * d1 - da * db;
  if (!(radicand >= 0) || !Number.isFinite(radicand)) return NaN;
  const d2 = Math.sign(b - a) * Math.sqrt(radicand);
  const denominator = db - da + 2 * d2;
  if (denominator === 0) return NaN;
  return b - ((b - a) * (db + d2 - d1)) / denominator;
}

/**
 * Finds a step alpha > 0 along a descent direction satisfying the strong Wolfe conditions
 *
 *     phi(alpha) <= phi(0) + c1 alpha phi'(0)      and      |phi'(alpha)| <= c2 |phi'(0)|,
 *
 * first bracketing an acceptable interval by expanding steps, then narrowing it ("zoom") by
 * safeguarded cubic interpolation. When the evaluation budget runs out it returns the best
 * point found that satisfies the first condition, if any, with strongWolfe false.
 */
export async function wolfeLineSearch<T>(
  phi: (alpha: number) => Promise<LinePoint<T>>,
  start: LinePoint<T>,
  initialStep: number,
  options: { c1: number; c2: number; maxEvaluations: number },
): Promise<LineSearchResult<T>> {
  const { c1, c2, maxEvaluations } = options;
  const f0 = start.f;
  const slope0 = start.slope;
  let evaluations = 0;
  const sufficientlyLower = (p: LinePoint<T>) => Number.isFinite(p.f) && p.f <= f0 + c1 * p.alpha * slope0;
  const flatEnough = (p: LinePoint<T>) => Math.abs(p.slope) <= -c2 * slope0;
  const evaluate = async (alpha: number) => {
    evaluations++;
    return phi(alpha);
  };

  // lo: the best point so far that decreases phi sufficiently; hi: the other end of an
  // interval that contains strong Wolfe points.
  const zoom = async (lo: LinePoint<T>, hi: LinePoint<T>): Promise<LineSearchResult<T>> => {
    const widths: number[] = [];
    while (evaluations < maxEvaluations) {
      const width = Math.abs(hi.alpha - lo.alpha);
      if (!(width > Number.EPSILON * Math.max(1, lo.alpha, hi.alpha))) break;
      // The cubic's minimiser may lie as close to lo (the best point) as it likes, which gives
      // fast convergence, but at most 0.66 of the way to hi; and if two trials have not shrunk
      // the interval to 0.66 of its width, bisect (More & Thuente's safeguards).
      const stalled = widths.length >= 2 && width > 0.66 * widths[widths.length - 2];
      widths.push(width);
      const cubic = Number.isFinite(hi.f) ? cubicMinimizer(lo.alpha, lo.f, lo.slope, hi.alpha, hi.f, hi.slope) : NaN;
      const fraction = (cubic - lo.alpha) / (hi.alpha - lo.alpha);
      const alpha = stalled || !(fraction > 0 && fraction < 1) ? (lo.alpha + hi.alpha) / 2 : lo.alpha + Math.min(fraction, 0.66) * (hi.alpha - lo.alpha);
      const trial = await evaluate(alpha);
      if (!sufficientlyLower(trial) || trial.f >= lo.f) {
        hi = trial;
      } else {
        if (flatEnough(trial)) return { point: trial, strongWolfe: true, evaluations };
        if (trial.slope * (hi.alpha - lo.alpha) >= 0) hi = lo;
        lo = trial;
      }
    }
    return { point: lo.alpha > 0 ? lo : undefined, strongWolfe: false, evaluations };
  };

  let previous = start;
  let alpha = initialStep;
  for (let i = 0; evaluations < maxEvaluations; i++) {
    const current = await evaluate(alpha);
    if (!sufficientlyLower(current) || (i > 0 && current.f >= previous.f)) return zoom(previous, current);
    if (flatEnough(current)) return { point: current, strongWolfe: true, evaluations };
    if (current.slope >= 0) return zoom(current, previous);
    // Still descending: extrapolate, by at least 1.1 and at most 10 times the last stride.
    const stride = current.alpha - previous.alpha;
    const cubic = cubicMinimizer(previous.alpha, previous.f, previous.slope, current.alpha, current.f, current.slope);
    const lowest = current.alpha + 1.1 * stride;
    const highest = current.alpha + 10 * stride;
    alpha = Number.isFinite(cubic) && cubic > lowest ? Math.min(cubic, highest) : Math.min(current.alpha + 4 * stride, highest);
    previous = current;
  }
  return { point: previous.alpha > 0 ? previous : undefined, strongWolfe: false, evaluations };
}

interface Position {
  x: Float64Array;
  g: Float64Array;
  /** max |g_i|, found with the slope. */
  gMax: number;
}

interface CorrectionPair {
  s: Float64Array;
  y: Float64Array;
  rho: number;
  /** y . y, for the initial Hessian scale (s.y / y.y) when this pair is the newest. */
  yy: number;
}

function openInterval(name: string, value: unknown, low: number, high: number): number {
  const v = is.number(name, value);
  if (!(v > low && v < high)) throw is.rangeError(name, `number in (${low}, ${high})`, value);
  return v;
}

function checkOptions(value: unknown): Required<Omit<LbfgsOptions, 'onIteration' | 'signal'>> & Pick<LbfgsOptions, 'onIteration' | 'signal'> {
  if (!is.isObject(value)) throw is.typeError('options', 'object', value);
  is.knownKeys('lbfgs', value, optionNames);
  const o = value as Partial<LbfgsOptions>;
  const c1 = o.c1 === undefined ? 1e-4 : openInterval('options.c1', o.c1, 0, 0.5);
  const c2 = o.c2 === undefined ? 0.9 : openInterval('options.c2', o.c2, c1, 1);
  if (o.onIteration !== undefined) is.func('options.onIteration', o.onIteration);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw is.typeError('options.signal', 'AbortSignal', o.signal);
  return {
    maxIterations: is.integer('options.maxIterations', o.maxIterations, 0),
    memory: o.memory === undefined ? 10 : is.integer('options.memory', o.memory, 1, 1000),
    gradientTolerance: o.gradientTolerance === undefined ? 1e-5 : is.nonNegativeNumber('options.gradientTolerance', o.gradientTolerance),
    progressTolerance: o.progressTolerance === undefined ? 1e-9 : is.nonNegativeNumber('options.progressTolerance', o.progressTolerance),
    c1,
    c2,
    maxLineSearchEvaluations:
      o.maxLineSearchEvaluations === undefined ? 25 : is.integer('options.maxLineSearchEvaluations', o.maxLineSearchEvaluations, 1),
    onIteration: o.onIteration,
    signal: o.signal,
    threads: o.threads === undefined ? availableParallelism() : is.integer('options.threads', o.threads, 1, 1024),
  };
}

async function evaluateChecked(objective: Objective, x: Float64Array): Promise<Evaluation> {
  const result = await objective(x);
  if (!is.isObject(result) || typeof result.f !== 'number' || !(result.g instanceof Float64Array)) {
    throw is.typeError('the objective\'s result', '{ f: number, g: Float64Array }', result);
  }
  if (result.g.length !== x.length) {
    throw new RangeError(`Expected the objective's gradient to have length ${x.length} but received ${result.g.length}`);
  }
  return result;
}

/**
 * Minimises `objective` from `x0` (not modified) by L-BFGS. Stops at `maxIterations`, when
 * max |g_i| <= gradientTolerance, when an iteration no longer changes f (progressTolerance),
 * or when no step along the search direction decreases f even after falling back to steepest
 * descent (in floating point, near a minimum); the result says which.
 */
export async function lbfgs(objective: Objective, x0: Float64Array, options: LbfgsOptions): Promise<LbfgsResult> {
  is.func('objective', objective);
  if (!(x0 instanceof Float64Array)) throw is.typeError('x0', 'Float64Array', x0);
  const o = checkOptions(options);
  const n = x0.length;
  let evaluations = 1;
  let x: Float64Array = x0.slice();
  let { f, g }: Evaluation = await evaluateChecked(objective, x);
  if (!Number.isFinite(f)) throw new RangeError(`Expected a finite objective at x0 but received ${f}`);

  let { gMax } = await addon.lbfgsSlope(g, g, o.threads);

  // The work of an iteration is as few passes over the parameters as the recursion allows
  // (about 2 per correction pair, 2 per evaluation and 1 for the new pair), and all of them
  // run natively (native/cpu/lbfgs.h), off the main thread. Each sum is taken
  // in index order in blocks of 16,384 values, the blocks' sums added in order, so the iterates
  // are those of the plain algorithm bit for bit up to that size and do not depend on the
  // number of threads at any size. Parameter-sized arrays are reused:
  // `spare` holds the points that no longer matter (the previous x, rejected trials, evicted
  // pairs), which the caller was told to copy if it wants them kept.
  const pairs: CorrectionPair[] = [];
  const spare: Float64Array[] = [];
  const take = () => spare.pop() ?? new Float64Array(n);
  const direction = new Float64Array(n);
  let iterations = 0;
  let reason: LbfgsStopReason = 'max iterations';
  const forgetPairs = () => {
    for (const { s, y } of pairs) spare.push(s, y);
    pairs.length = 0;
  };

  // direction = -H g by the two-loop recursion, H0 = (s.y / y.y) I from the newest pair, and
  // the slope g . direction; with no pairs also sum |g_i| (for the first step's length).
  const rho = new Float64Array(o.memory);
  const searchDirection = async (): Promise<{ slope: number; l1: number }> => {
    const m = pairs.length;
    if (m === 0) return addon.lbfgsSteepest(g, direction, o.threads);
    for (let j = 0; j < m; j++) rho[j] = pairs[j].rho;
    const newest = pairs[m - 1];
    const gamma = 1 / (newest.rho * newest.yy);
    const slope = await addon.lbfgsDirection(
      g,
      pairs.map((p) => p.s),
      pairs.map((p) => p.y),
      rho.subarray(0, m),
      gamma,
      direction,
      o.threads,
    );
    return { slope, l1: NaN };
  };

  while (iterations < o.maxIterations) {
    if (gMax <= o.gradientTolerance) {
      reason = 'gradient tolerance';
      break;
    }
    if (o.signal?.aborted) throw o.signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
    let { slope: slope0, l1 } = await searchDirection();
    if (!(slope0 < 0)) {
      // Not a descent direction (rounding in the curvature pairs): start again from -g.
      forgetPairs();
      ({ slope: slope0, l1 } = await searchDirection());
    }
    // Without curvature information the step length has no natural scale: take one that
    // moves x by at most 1 (minFunc's choice); afterwards the quasi-Newton step 1.
    const initialStep = pairs.length === 0 ? Math.min(1, 1 / l1) : 1;
    const origin = x;
    const trials: Float64Array[] = [];
    const phi = async (alpha: number): Promise<LinePoint<Position>> => {
      const trial = take();
      trials.push(trial);
      await addon.lbfgsStep(trial, origin, alpha, direction, o.threads);
      const value = await evaluateChecked(objective, trial);
      const { slope, gMax: largest } = await addon.lbfgsSlope(value.g, direction, o.threads);
      return { alpha, f: value.f, slope, data: { x: trial, g: value.g, gMax: largest } };
    };
    const search = await wolfeLineSearch(phi, { alpha: 0, f, slope: slope0, data: { x, g, gMax } }, initialStep, {
      c1: o.c1,
      c2: o.c2,
      maxEvaluations: o.maxLineSearchEvaluations,
    });
    evaluations += search.evaluations;
    const next = search.point;
    for (const trial of trials) if (trial !== next?.data.x) spare.push(trial);
    if (next === undefined) {
      if (pairs.length > 0) {
        // The quasi-Newton model misled the search: forget it and try steepest descent.
        forgetPairs();
        continue;
      }
      reason = 'line search failed';
      break;
    }
    // The new pair, with s.y, s.s and y.y, in one pass.
    const s = take();
    const y = take();
    const { sy, ss, yy } = await addon.lbfgsPair(s, y, x, next.data.x, g, next.data.g, o.threads);
    // Strong Wolfe steps give s.y > 0; a fallback step may not, and must not enter H.
    if (sy > 1e-10 * Math.sqrt(ss * yy) && Number.isFinite(sy)) {
      if (pairs.length === o.memory) {
        const evicted = pairs.shift() as CorrectionPair;
        spare.push(evicted.s, evicted.y);
      }
      pairs.push({ s, y, rho: 1 / sy, yy });
    } else {
      spare.push(s, y);
    }
    spare.push(x);
    const previousF = f;
    x = next.data.x;
    g = next.data.g;
    f = next.f;
    gMax = next.data.gMax;
    iterations++;
    await o.onIteration?.({ iteration: iterations, x, f, g, stepLength: next.alpha, evaluations });
    if (Math.abs(previousF - f) <= o.progressTolerance * Math.max(1, Math.abs(previousF), Math.abs(f))) {
      reason = 'no progress';
      break;
    }
  }
  if (iterations === o.maxIterations && reason === 'max iterations' && gMax <= o.gradientTolerance) {
    reason = 'gradient tolerance';
  }
  return { x, f, g, iterations, evaluations, reason };
}
