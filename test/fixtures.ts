// Fixtures shared by the tests and the benchmarks.
import { Random } from '../lib/random.js';
import type { Matrix } from '../lib/matrix.js';
import { SparseAutoencoder, type SparseAutoencoderOptions } from '../lib/sparse_autoencoder.js';
import { addon } from '../lib/native.js';
import * as ref from './reference.js';

/** Every CPU kernel set this machine runs (portable first): kernel tests run on each. */
export const cpuKernelSets: string[] = addon.cpuKernelSets();

export function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Matrix {
  const random = new Random(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = scale * random.normal();
  return { rows, cols, data };
}

export function toFloat64(values: Float32Array): Float64Array {
  return Float64Array.from(values);
}

/** The model's current parameters as a float64 reference copy. */
export function referenceParams(sae: SparseAutoencoder): ref.Params {
  return {
    d: sae.dIn,
    m: sae.dHidden,
    tied: sae.tied,
    applyBDecToInput: sae.applyBDecToInput,
    activation: sae.activation,
    k: sae.k,
    wEnc: toFloat64(sae.encoderWeights().data),
    bEnc: toFloat64(sae.encoderBias()),
    wDec: toFloat64(sae.decoderWeights().data),
    bDec: toFloat64(sae.decoderBias()),
  };
}

/**
 * A small model with random (non-unit, non-zero) parameters everywhere, so that every term
 * of the gradient is exercised, and an input whose pre-activations all keep at least
 * `margin` away from the ReLU kink.
 */
export function randomProblem(
  shape: { dIn: number; dHidden: number; rows: number },
  options: Partial<SparseAutoencoderOptions> & { seed: number; cpuKernels?: string },
  margin = 0.02,
): { sae: SparseAutoencoder; x: Matrix; params: ref.Params } {
  const { dIn, dHidden, rows } = shape;
  const { cpuKernels, ...modelOptions } = options;
  const settings = { dIn, dHidden, l1Coeff: 0.05, ...modelOptions } as SparseAutoencoderOptions;
  const sae = cpuKernels === undefined ? new SparseAutoencoder(settings) : SparseAutoencoder._withCpuKernels(settings, cpuKernels);
  const random = new Random(options.seed + 1000);
  const fill = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = scale * random.normal();
    return a;
  };
  if (!sae.tied) sae._setParameter('encoderWeights', fill(dIn * dHidden, 1 / Math.sqrt(dIn)));
  sae._setParameter('decoderWeights', fill(dHidden * dIn, 1 / Math.sqrt(dIn)));
  sae._setParameter('encoderBias', fill(dHidden, 0.1));
  sae._setParameter('decoderBias', fill(dIn, 0.1));
  const params = referenceParams(sae);
  const x = new Float32Array(rows * dIn);
  for (let r = 0; r < rows; r++) {
    for (let attempt = 0; ; attempt++) {
      for (let i = 0; i < dIn; i++) x[r * dIn + i] = random.normal();
      const pre = ref.preActivations(params, x.subarray(r * dIn, (r + 1) * dIn), 1);
      if (pre.every((v) => Math.abs(v) > margin)) break;
      if (attempt > 1000) throw new Error('could not draw a row away from the ReLU kinks');
    }
  }
  return { sae, x: { rows, cols: dIn, data: x }, params };
}

/** max |a - b| / max |b|: the error relative to the reference's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
