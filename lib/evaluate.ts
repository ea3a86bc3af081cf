// Streaming evaluation of a sparse autoencoder over data of any size.
import { checkMatrix, type Matrix } from './matrix.js';
import { SparseAutoencoder } from './sparse_autoencoder.js';
import * as is from './validate.js';

export interface EvaluationReport {
  samples: number;
  /** mean over rows and coordinates of (x - xhat)^2 */
  mse: number;
  /** sum ||x - xhat||^2 / sum ||x - mean(x)||^2, with mean(x) the per-coordinate mean over all samples */
  fvu: number;
  /** mean number of active units per row */
  l0: number;
  /** fraction of features never active on these samples */
  deadFraction: number;
  /** per-feature firing frequency (fraction of samples where the feature is active) */
  featureDensity: Float64Array;
  /** summary of featureDensity: quantiles, and the fraction of features firing on more than 10% or less than 1e-4 of samples */
  density: { min: number; median: number; max: number; above10Percent: number; below1e4: number };
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const position = q * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

/** Evaluates `sae` on every row of `data` (a Matrix or an (async) iterable of batches), a batch at a time. */
export async function evaluate(sae: SparseAutoencoder, data: Matrix | AsyncIterable<Matrix> | Iterable<Matrix>): Promise<EvaluationReport> {
  if (!(sae instanceof SparseAutoencoder)) throw is.typeError('sae', 'SparseAutoencoder', sae);
  const d = sae.dIn;
  const m = sae.dHidden;
  const sum = new Float64Array(d);
  let sumSquares = 0;
  let squaredError = 0;
  let active = 0;
  let samples = 0;
  const fired = new Float64Array(m);
  const single = !(Symbol.asyncIterator in Object(data) || Symbol.iterator in Object(data));
  const batches = single ? [data as Matrix] : (data as AsyncIterable<Matrix> | Iterable<Matrix>);
  let index = 0;
  for await (const raw of batches) {
    index++;
    const batch = checkMatrix(single ? 'data' : `data batch ${index}`, raw, { value: d, label: 'dIn' });
    const codes = await sae.encode(batch, { format: 'sparse' });
    const xhat = await sae.decode(codes);
    for (let r = 0; r < batch.rows; r++) {
      for (let i = 0; i < d; i++) {
        const x = batch.data[r * d + i];
        sum[i] += x;
        sumSquares += x * x;
        squaredError += (x - xhat.data[r * d + i]) ** 2;
      }
    }
    for (let e = 0; e < codes.indices.length; e++) if (codes.values[e] !== 0) fired[codes.indices[e]]++;
    active += codes.indptr[codes.rows];
    samples += batch.rows;
  }
  let meanSquares = 0;
  for (let i = 0; i < d; i++) meanSquares += sum[i] * sum[i];
  const variance = sumSquares - meanSquares / Math.max(samples, 1);
  const featureDensity = fired.map((count) => count / Math.max(samples, 1));
  const sorted = featureDensity.slice().sort();
  return {
    samples,
    mse: squaredError / Math.max(samples * d, 1),
    fvu: variance > 0 ? squaredError / variance : NaN,
    l0: active / Math.max(samples, 1),
    deadFraction: featureDensity.filter((v) => v === 0).length / m,
    featureDensity,
    density: {
      min: sorted[0],
      median: quantile(sorted, 0.5),
      max: sorted[sorted.length - 1],
      above10Percent: featureDensity.filter((v) => v > 0.1).length / m,
      below1e4: featureDensity.filter((v) => v < 1e-4).length / m,
    },
  };
}
