// A plain float64 implementation of RICA's cost and gradient, written per sample for clarity,
// that the native cost and gradient are checked against. W and x are row-major: W [k, d],
// x [rows, d].

export interface RicaProblem {
  k: number;
  d: number;
  lambda: number;
  epsilon: number;
  normalizeRows: boolean;
}

export interface RicaValue {
  loss: number;
  sparsity: number;
  reconstruction: number;
  l0: number;
}

/** V: W's rows at unit norm (or W), and the factor applied to each row. */
export function directions(p: RicaProblem, w: ArrayLike<number>): { v: Float64Array; scale: Float64Array } {
  const { k, d } = p;
  const v = new Float64Array(k * d);
  const scale = new Float64Array(k).fill(1);
  for (let j = 0; j < k; j++) {
    if (p.normalizeRows) {
      let norm = 0;
      for (let i = 0; i < d; i++) norm += w[j * d + i] ** 2;
      scale[j] = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    }
    for (let i = 0; i < d; i++) v[j * d + i] = w[j * d + i] * scale[j];
  }
  return { v, scale };
}

export function cost(p: RicaProblem, w: ArrayLike<number>, x: ArrayLike<number>, rows: number): RicaValue {
  const { k, d, lambda, epsilon } = p;
  const { v } = directions(p, w);
  let sparsity = 0;
  let reconstruction = 0;
  let active = 0;
  const y = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += v[j * d + i] * x[r * d + i];
      y[j] = s;
      sparsity += Math.sqrt(s * s + epsilon);
      if (Math.abs(s) > Math.sqrt(epsilon)) active++;
    }
    for (let i = 0; i < d; i++) {
      let xhat = 0;
      for (let j = 0; j < k; j++) xhat += v[j * d + i] * y[j];
      reconstruction += 0.5 * (xhat - x[r * d + i]) ** 2;
    }
  }
  return {
    loss: (lambda * sparsity + reconstruction) / rows,
    sparsity: sparsity / rows,
    reconstruction: reconstruction / rows,
    l0: active / rows,
  };
}

/**
 * dCost/dW. Per sample, with y = V x and e = V^T y - x:
 * dV = lambda g'(y) x^T + (V e) x^T + y e^T, and through v = w / ||w||,
 * dw = (dv - (dv . v) v) / ||w||.
 */
export function gradient(p: RicaProblem, w: ArrayLike<number>, x: ArrayLike<number>, rows: number): Float64Array {
  const { k, d, lambda, epsilon } = p;
  const { v, scale } = directions(p, w);
  const dv = new Float64Array(k * d);
  const y = new Float64Array(k);
  const e = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const xr = (i: number) => x[r * d + i];
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += v[j * d + i] * xr(i);
      y[j] = s;
    }
    for (let i = 0; i < d; i++) {
      let xhat = 0;
      for (let j = 0; j < k; j++) xhat += v[j * d + i] * y[j];
      e[i] = xhat - xr(i);
    }
    for (let j = 0; j < k; j++) {
      let ve = 0;
      for (let i = 0; i < d; i++) ve += v[j * d + i] * e[i];
      const coefficient = (lambda * y[j]) / Math.sqrt(y[j] * y[j] + epsilon) + ve;
      for (let i = 0; i < d; i++) dv[j * d + i] += (coefficient * xr(i) + y[j] * e[i]) / rows;
    }
  }
  if (!p.normalizeRows) return dv;
  const dw = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    let along = 0;
    for (let i = 0; i < d; i++) along += dv[j * d + i] * v[j * d + i];
    for (let i = 0; i < d; i++) dw[j * d + i] = (dv[j * d + i] - along * v[j * d + i]) * scale[j];
  }
  return dw;
}
