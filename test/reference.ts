// A plain float64 implementation of the sparse autoencoder, written for clarity, that the
// native kernels are checked against. Layouts match the public API: wEnc [d, m] row-major,
// wDec [m, d] row-major.

export interface Params {
  d: number;
  m: number;
  tied: boolean;
  /** false: the encoder sees x rather than x - b_dec */
  applyBDecToInput?: boolean;
  /** 'topk': the k largest pre-activations per row, then ReLU; 'batchtopk': the k * rows largest of the batch. */
  activation?: 'relu' | 'topk' | 'batchtopk';
  k?: number;
  wEnc: Float64Array; // [d, m]; ignored when tied (W_enc = W_dec^T)
  bEnc: Float64Array; // [m]
  wDec: Float64Array; // [m, d]
  bDec: Float64Array; // [d]
}

export interface Grads {
  wEnc: Float64Array | null;
  bEnc: Float64Array;
  wDec: Float64Array;
  bDec: Float64Array;
}

export function encoderWeight(p: Params, i: number, j: number): number {
  return p.tied ? p.wDec[j * p.d + i] : p.wEnc[i * p.m + j];
}

function encoderShift(p: Params, i: number): number {
  return p.applyBDecToInput === false ? 0 : p.bDec[i];
}

export function preActivations(p: Params, x: ArrayLike<number>, rows: number): Float64Array {
  const { d, m } = p;
  const pre = new Float64Array(rows * m);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      let s = p.bEnc[j];
      for (let i = 0; i < d; i++) s += (x[r * d + i] - encoderShift(p, i)) * encoderWeight(p, i, j);
      pre[r * m + j] = s;
    }
  }
  return pre;
}

/** Codes from pre-activations [rows, m], by the params' activation (BatchTopK as in training). */
export function activate(p: Params, pre: Float64Array, rows: number): Float64Array {
  const { m } = p;
  const h = pre.map((v) => Math.max(v, 0));
  if (p.activation === 'topk') {
    for (let r = 0; r < rows; r++) {
      const row = Array.from({ length: m }, (_, j) => j).sort((a, b) => pre[r * m + b] - pre[r * m + a] || a - b);
      for (const j of row.slice(p.k)) h[r * m + j] = 0;
    }
  } else if (p.activation === 'batchtopk') {
    const order = Array.from({ length: rows * m }, (_, i) => i).sort((a, b) => pre[b] - pre[a] || a - b);
    for (const i of order.slice((p.k as number) * rows)) h[i] = 0;
  }
  return h;
}

export function forward(p: Params, x: ArrayLike<number>, rows: number, l1Coeff: number) {
  const { d, m } = p;
  const pre = preActivations(p, x, rows);
  const h = activate(p, pre, rows);
  const xhat = new Float64Array(rows * d);
  let squared = 0;
  let l1 = 0;
  let active = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) {
      let s = p.bDec[i];
      for (let j = 0; j < m; j++) s += h[r * m + j] * p.wDec[j * d + i];
      xhat[r * d + i] = s;
      squared += (x[r * d + i] - s) ** 2;
    }
    for (let j = 0; j < m; j++) {
      l1 += h[r * m + j];
      if (h[r * m + j] > 0) active++;
    }
  }
  return {
    pre,
    h,
    xhat,
    loss: (squared + l1Coeff * l1) / rows,
    mse: squared / (rows * d),
    l1: l1 / rows,
    l0: active / rows,
  };
}

export function gradients(p: Params, x: ArrayLike<number>, rows: number, l1Coeff: number): Grads {
  const { d, m } = p;
  const { h, xhat } = forward(p, x, rows, l1Coeff);
  const g: Grads = {
    wEnc: p.tied ? null : new Float64Array(d * m),
    bEnc: new Float64Array(m),
    wDec: new Float64Array(m * d),
    bDec: new Float64Array(d),
  };
  for (let r = 0; r < rows; r++) {
    const dXhat = new Float64Array(d);
    for (let i = 0; i < d; i++) {
      dXhat[i] = (2 / rows) * (xhat[r * d + i] - x[r * d + i]);
      g.bDec[i] += dXhat[i];
    }
    for (let j = 0; j < m; j++) {
      const hj = h[r * m + j];
      for (let i = 0; i < d; i++) g.wDec[j * d + i] += hj * dXhat[i];
      if (hj <= 0) continue; // inactive: the activation passes no gradient
      let dPre = l1Coeff / rows;
      for (let i = 0; i < d; i++) dPre += dXhat[i] * p.wDec[j * d + i];
      g.bEnc[j] += dPre;
      for (let i = 0; i < d; i++) {
        const xc = x[r * d + i] - encoderShift(p, i);
        if (g.wEnc) g.wEnc[i * m + j] += dPre * xc;
        else g.wDec[j * d + i] += dPre * xc;
        if (p.applyBDecToInput !== false) g.bDec[i] -= dPre * encoderWeight(p, i, j);
      }
    }
  }
  return g;
}

export interface AdamState {
  t: number;
  m: Map<string, Float64Array>;
  v: Map<string, Float64Array>;
}

export interface Hyper {
  l1Coeff: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

function adam(name: string, param: Float64Array, grad: Float64Array, state: AdamState, h: Hyper): void {
  if (!state.m.has(name)) {
    state.m.set(name, new Float64Array(param.length));
    state.v.set(name, new Float64Array(param.length));
  }
  const m = state.m.get(name)!;
  const v = state.v.get(name)!;
  const bc1 = 1 - h.beta1 ** state.t;
  const bc2 = 1 - h.beta2 ** state.t;
  for (let i = 0; i < param.length; i++) {
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * grad[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * grad[i] ** 2;
    param[i] -= ((h.lr / bc1) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps);
  }
}

/** One training step: gradients, decoder projection, Adam, decoder renormalisation. */
export function trainStep(p: Params, x: ArrayLike<number>, rows: number, h: Hyper, state: AdamState): void {
  const { d, m } = p;
  const g = gradients(p, x, rows, h.l1Coeff);
  for (let j = 0; j < m; j++) {
    let dot = 0;
    let norm2 = 0;
    for (let i = 0; i < d; i++) {
      dot += g.wDec[j * d + i] * p.wDec[j * d + i];
      norm2 += p.wDec[j * d + i] ** 2;
    }
    for (let i = 0; i < d; i++) g.wDec[j * d + i] -= (dot / norm2) * p.wDec[j * d + i];
  }
  state.t += 1;
  adam('wDec', p.wDec, g.wDec, state, h);
  if (g.wEnc) adam('wEnc', p.wEnc, g.wEnc, state, h);
  adam('bEnc', p.bEnc, g.bEnc, state, h);
  adam('bDec', p.bDec, g.bDec, state, h);
  for (let j = 0; j < m; j++) {
    let norm2 = 0;
    for (let i = 0; i < d; i++) norm2 += p.wDec[j * d + i] ** 2;
    const scale = 1 / Math.sqrt(norm2);
    for (let i = 0; i < d; i++) p.wDec[j * d + i] *= scale;
  }
}

/**
 * AuxK's loss term with the residual e = x - xhat given (held fixed, as the model detaches
 * it): coeff * mean over rows of ||ehat - e||^2 / (mean over rows of ||e - mean e||^2), with
 * ehat = the decoder (no bias) applied to each row's `k` largest ReLU'd pre-activations among
 * the `dead` features.
 */
export function auxLoss(p: Params, x: ArrayLike<number>, rows: number, dead: boolean[], k: number, coeff: number, e: Float64Array): number {
  const { d, m } = p;
  const pre = preActivations(p, x, rows);
  const mean = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let i = 0; i < d; i++) mean[i] += e[r * d + i] / rows;
  let variance = 0;
  for (let r = 0; r < rows; r++) for (let i = 0; i < d; i++) variance += (e[r * d + i] - mean[i]) ** 2 / rows;
  let error = 0;
  for (let r = 0; r < rows; r++) {
    const candidates = Array.from({ length: m }, (_, j) => j)
      .filter((j) => dead[j])
      .sort((a, b) => pre[r * m + b] - pre[r * m + a] || a - b)
      .slice(0, k);
    for (let i = 0; i < d; i++) {
      let ehat = 0;
      for (const j of candidates) ehat += Math.max(pre[r * m + j], 0) * p.wDec[j * d + i];
      error += (ehat - e[r * d + i]) ** 2;
    }
  }
  return (coeff * error) / rows / variance;
}
