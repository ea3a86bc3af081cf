// Plain float64 implementations that FISTA coding and dictionary learning are checked
// against, written for clarity and independence from the native solver: the lasso objective
// and its optimality conditions, coordinate descent and exhaustive lasso solvers, Jacobi
// eigenvalues, and one online dictionary learning step. Matrices are row-major; a
// dictionary is [m, d] with one atom per row.

export interface Lasso {
  m: number;
  d: number;
  dictionary: Float64Array; // [m, d]
  lambda: number;
  nonNegative: boolean;
}

export function gram(dictionary: ArrayLike<number>, m: number, d: number): Float64Array {
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += dictionary[i * d + k] * dictionary[j * d + k];
      g[i * m + j] = s;
    }
  }
  return g;
}

/** c = x D^T [m] */
export function correlations(p: Lasso, x: ArrayLike<number>): Float64Array {
  const c = new Float64Array(p.m);
  for (let j = 0; j < p.m; j++) {
    let s = 0;
    for (let i = 0; i < p.d; i++) s += x[i] * p.dictionary[j * p.d + i];
    c[j] = s;
  }
  return c;
}

/** 0.5 ||x - z D||^2 + lambda ||z||_1 (Infinity when nonNegative and some z_j < 0). */
export function objective(p: Lasso, x: ArrayLike<number>, z: ArrayLike<number>): number {
  let squared = 0;
  for (let i = 0; i < p.d; i++) {
    let r = x[i];
    for (let j = 0; j < p.m; j++) r -= z[j] * p.dictionary[j * p.d + i];
    squared += r * r;
  }
  let l1 = 0;
  for (let j = 0; j < p.m; j++) {
    if (p.nonNegative && z[j] < 0) return Infinity;
    l1 += Math.abs(z[j]);
  }
  return 0.5 * squared + p.lambda * l1;
}

/** g = (z D - x) D^T, the gradient of the smooth part. */
export function gradient(p: Lasso, x: ArrayLike<number>, z: ArrayLike<number>): Float64Array {
  const residual = new Float64Array(p.d);
  for (let i = 0; i < p.d; i++) {
    let s = -x[i];
    for (let j = 0; j < p.m; j++) s += z[j] * p.dictionary[j * p.d + i];
    residual[i] = s;
  }
  const g = new Float64Array(p.m);
  for (let j = 0; j < p.m; j++) {
    let s = 0;
    for (let i = 0; i < p.d; i++) s += residual[i] * p.dictionary[j * p.d + i];
    g[j] = s;
  }
  return g;
}

/**
 * The lasso's KKT violation at z: max over j of |g_j + lambda sign(z_j)| where z_j != 0 and
 * max(|g_j| - lambda, 0) where z_j = 0 (max(-g_j - lambda, 0) when nonNegative), and the
 * scale max(lambda, ||c||_inf) that the solver's tolerance multiplies.
 */
export function kkt(p: Lasso, x: ArrayLike<number>, z: ArrayLike<number>): { violation: number; scale: number } {
  const g = gradient(p, x, z);
  let violation = 0;
  for (let j = 0; j < p.m; j++) {
    let error: number;
    if (z[j] !== 0) error = Math.abs(g[j] + p.lambda * Math.sign(z[j]));
    else if (p.nonNegative) error = Math.max(-g[j] - p.lambda, 0);
    else error = Math.max(Math.abs(g[j]) - p.lambda, 0);
    violation = Math.max(violation, error);
  }
  const c = correlations(p, x);
  return { violation, scale: Math.max(p.lambda, ...Array.from(c, Math.abs)) };
}

/** Cyclic coordinate descent on the Gram form until no coordinate moves by more than `tol`. */
export function coordinateDescent(p: Lasso, x: ArrayLike<number>, tol = 1e-14, maxSweeps = 200_000): Float64Array {
  const { m } = p;
  const g = gram(p.dictionary, m, p.d);
  const c = correlations(p, x);
  const z = new Float64Array(m);
  const grad = Float64Array.from(c, (v) => -v); // z G - c at z = 0
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let largest = 0;
    for (let j = 0; j < m; j++) {
      const curvature = g[j * m + j];
      if (curvature <= 0) continue;
      const u = z[j] - grad[j] / curvature;
      const t = p.lambda / curvature;
      const updated = u > t ? u - t : !p.nonNegative && u < -t ? u + t : 0;
      const delta = updated - z[j];
      if (delta === 0) continue;
      for (let k = 0; k < m; k++) grad[k] += delta * g[j * m + k];
      z[j] = updated;
      largest = Math.max(largest, Math.abs(delta));
    }
    if (largest < tol) return z;
  }
  throw new Error('coordinate descent did not converge');
}

/**
 * The lasso by enumeration, for tiny m: the optimum's support S and signs s satisfy
 * G_SS z_S = c_S - lambda s_S, so among all sign patterns whose solution has those signs,
 * the one with the least objective is the optimum.
 */
export function exhaustive(p: Lasso, x: ArrayLike<number>): Float64Array {
  const { m } = p;
  const g = gram(p.dictionary, m, p.d);
  const c = correlations(p, x);
  const choices = p.nonNegative ? [0, 1] : [-1, 0, 1];
  let best = new Float64Array(m);
  let bestValue = objective(p, x, best);
  const signs = new Array<number>(m).fill(0);
  const visit = (j: number): void => {
    if (j < m) {
      for (const s of choices) {
        signs[j] = s;
        visit(j + 1);
      }
      return;
    }
    const support = signs.flatMap((s, i) => (s !== 0 ? [i] : []));
    if (support.length === 0) return;
    const n = support.length;
    const a = support.map((i) => support.map((k) => g[i * m + k]));
    const b = support.map((i) => c[i] - p.lambda * signs[i]);
    const solution = solve(a, b);
    if (solution === undefined) return;
    if (solution.some((v, e) => Math.sign(v) !== signs[support[e]])) return;
    const z = new Float64Array(m);
    for (let e = 0; e < n; e++) z[support[e]] = solution[e];
    const value = objective(p, x, z);
    if (value < bestValue) {
      bestValue = value;
      best = z;
    }
  };
  visit(0);
  return best;
}

/** Gaussian elimination with partial pivoting; undefined for a (numerically) singular matrix. */
function solve(a: number[][], b: number[]): number[] | undefined {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (Math.abs(m[pivot][col]) < 1e-12) return undefined;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r][col] / m[col][col];
      for (let k = col; k <= n; k++) m[r][k] -= f * m[col][k];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

/** Eigenvalues of a symmetric n x n matrix by cyclic Jacobi rotations, largest first. */
export function symmetricEigenvalues(matrix: ArrayLike<number>, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => matrix[i * n + j]));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i][j] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] === 0) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cos = 1 / Math.sqrt(t * t + 1);
        const sin = t * cos;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = cos * akp - sin * akq;
          a[k][q] = sin * akp + cos * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = cos * apk - sin * aqk;
          a[q][k] = sin * apk + cos * aqk;
        }
      }
    }
  }
  return a.map((row, i) => row[i]).sort((x, y) => y - x);
}

/** Sufficient statistics of online dictionary learning: A [m, m], B [m, d] (row k: sum z_k x). */
export interface OnlineState {
  a: Float64Array;
  b: Float64Array;
  step: number;
}

/**
 * One step of online dictionary learning as FistaDictionary documents it (scikit-learn's
 * MiniBatchDictionaryLearning with unit-norm atoms): decay A and B by scikit-learn's
 * forgetting factor, add Z^T Z / n and Z^T X / n, then one block coordinate descent pass
 * d_k += (B_k - A_k D) / A_kk, d_k /= ||d_k||. Atoms are not redrawn here: callers pick
 * settings where every atom is used.
 */
export function onlineStep(dictionary: Float64Array, m: number, d: number, x: ArrayLike<number>, codes: ArrayLike<number>, n: number, state: OnlineState): void {
  const theta = state.step < n - 1 ? (state.step + 1) * n : n * n + state.step + 1 - n;
  const beta = (theta + 1 - n) / (theta + 1);
  for (let i = 0; i < state.a.length; i++) state.a[i] *= beta;
  for (let i = 0; i < state.b.length; i++) state.b[i] *= beta;
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < m; k++) {
      const zk = codes[r * m + k];
      if (zk === 0) continue;
      for (let j = 0; j < m; j++) state.a[k * m + j] += (zk * codes[r * m + j]) / n;
      for (let i = 0; i < d; i++) state.b[k * d + i] += (zk * x[r * d + i]) / n;
    }
  }
  for (let k = 0; k < m; k++) {
    const akk = state.a[k * m + k];
    const update = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      let s = state.b[k * d + i];
      for (let j = 0; j < m; j++) s -= state.a[k * m + j] * dictionary[j * d + i];
      update[i] = s / akk;
    }
    let norm = 0;
    for (let i = 0; i < d; i++) {
      dictionary[k * d + i] += update[i];
      norm += dictionary[k * d + i] ** 2;
    }
    for (let i = 0; i < d; i++) dictionary[k * d + i] /= Math.sqrt(norm);
  }
  state.step += 1;
}

/**
 * Online dictionary learning from `start` [m, d], one step per batch, as FistaDictionary
 * documents it: each row coded by coordinate descent to the optimum, then onlineStep. Returns
 * each step's mean objective (before its update) and the final dictionary.
 */
export function onlineLearning(
  start: ArrayLike<number>,
  m: number,
  d: number,
  lambda: number,
  batches: { rows: number; data: ArrayLike<number> }[],
): { losses: number[]; dictionary: Float64Array } {
  const dictionary = Float64Array.from(start);
  const state: OnlineState = { a: new Float64Array(m * m), b: new Float64Array(m * d), step: 0 };
  const losses: number[] = [];
  for (const batch of batches) {
    const n = batch.rows;
    const problem = { m, d, dictionary, lambda, nonNegative: false };
    const codes = new Float64Array(n * m);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const x = Array.from({ length: d }, (_, i) => batch.data[r * d + i]);
      const z = coordinateDescent(problem, x);
      codes.set(z, r * m);
      loss += objective(problem, x, z) / n;
    }
    losses.push(loss);
    onlineStep(dictionary, m, d, batch.data, codes, n, state);
  }
  return { losses, dictionary };
}
