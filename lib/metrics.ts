// How well a learned dictionary recovers known features, and how well and how sparsely a
// model reconstructs its input. Directions are compared through one cosine-similarity matrix
// (a native matrix product); everything else is a float64 pass in TypeScript.
import { availableParallelism } from 'node:os';

import { maxWeightMatching } from './assignment.js';
import { checkMatrix, checkSparseMatrix, isSparseMatrix, type Matrix, type SparseMatrix } from './matrix.js';
import { addon } from './native.js';
import * as is from './validate.js';

export interface MmcsOptions {
  /**
   * 'truth' (default): average over the true features of each one's best match among the
   * learned directions: how well the true features are recovered. 'learned': average over the
   * learned directions of each one's best match among the true features: how many learned
   * directions are true features (dead or duplicate directions lower it).
   */
  direction?: 'truth' | 'learned';
  /**
   * Compare |cos| instead of the signed cosine: for methods whose codes may be negative (RICA,
   * FISTA without nonNegative), where a learned direction may come out as a feature's negation.
   * Default false.
   */
  absolute?: boolean;
}

export interface RecoveredFractionOptions {
  /** Compare |cos| instead of the signed cosine (see MmcsOptions.absolute). Default false. */
  absolute?: boolean;
}

/**
 * cos(a_i, b_j) for every row a_i of a [rows, d] and b_j of b [rows', d]: a Matrix [a.rows,
 * b.rows]. A zero row has cosine 0 with everything. Computed in float32 on unit-normalised rows
 * (rows are normalised in float64), so entries are accurate to a few 1e-6, clamped to [-1, 1].
 */
export function cosineSimilarity(a: Matrix, b: Matrix): Matrix {
  const [x, y] = checkDirections('a', a, 'b', b);
  return similarities(x, y);
}

/**
 * Mean max cosine similarity between learned directions and true features (rows of each):
 *
 *     direction 'truth' (default):  MMCS = (1 / T) * sum over true t of   max over learned l of cos(t, l)
 *     direction 'learned':          MMCS = (1 / L) * sum over learned l of max over true t of cos(t, l)
 *
 * with cos replaced by |cos| when `absolute`. The default is HoagyC/sparse_coding's
 * `mean_max_cosine_similarity(ground_truth, learned)`: how well each true feature is recovered,
 * whatever the other learned directions do. The signed cosine does not count a learned
 * direction that points the opposite way, which is right for non-negative codes (SAEs).
 */
export function mmcs(learned: Matrix, truth: Matrix, options?: MmcsOptions): number {
  const [l, t] = checkDirections('learned', learned, 'truth', truth);
  const opts = is.options('options', options);
  is.knownKeys('mmcs', opts, ['direction', 'absolute']);
  const direction = opts.direction === undefined ? 'truth' : is.oneOf('options.direction', opts.direction, ['truth', 'learned'] as const);
  const absolute = opts.absolute === undefined ? false : is.boolean('options.absolute', opts.absolute);
  const s = similarities(t, l);
  return mean(direction === 'truth' ? rowMaxima(s, absolute) : columnMaxima(s, absolute));
}

/**
 * Mean correlation coefficient of a one-to-one matching (O'Neill et al. 2024; SAELens's
 * synthetic evaluation): the learned directions and true features are paired one to one by the
 * Hungarian algorithm so that the sum of |cos| over the pairs is as large as possible, and
 *
 *     MCC = (1 / min(L, T)) * sum over matched pairs (l, t) of |cos(l, t)|
 *
 * Each learned direction can stand for one true feature only, so duplicates do not help. With
 * fewer learned directions than true features (L < T) the unmatched true features are not
 * counted, as in SAELens (scipy's linear_sum_assignment on a rectangular matrix). O(min^2 * max)
 * time: about 0.1 s for 512 true features and 2048 learned directions, 0.4 s for 1024 and 4096.
 */
export function mcc(learned: Matrix, truth: Matrix): number {
  const [l, t] = checkDirections('learned', learned, 'truth', truth);
  const s = similarities(t, l);
  const weights = new Float64Array(s.data.length);
  for (let i = 0; i < weights.length; i++) weights[i] = Math.abs(s.data[i]);
  const match = maxWeightMatching(weights, t.rows, l.rows);
  let total = 0;
  for (let i = 0; i < t.rows; i++) if (match[i] >= 0) total += weights[i * l.rows + match[i]];
  return total / Math.min(t.rows, l.rows);
}

/**
 * The fraction of true features recovered: those whose best learned direction has
 * cos(t, l) >= threshold (|cos| when `absolute`), i.e.
 *
 *     (1 / T) * #{ true t : max over learned l of cos(t, l) >= threshold }
 *
 * `threshold` in [-1, 1], default 0.9.
 */
export function recoveredFraction(learned: Matrix, truth: Matrix, threshold = 0.9, options?: RecoveredFractionOptions): number {
  const [l, t] = checkDirections('learned', learned, 'truth', truth);
  is.numberInRange('threshold', threshold, -1, 1);
  const opts = is.options('options', options);
  is.knownKeys('recoveredFraction', opts, ['absolute']);
  const absolute = opts.absolute === undefined ? false : is.boolean('options.absolute', opts.absolute);
  const best = rowMaxima(similarities(t, l), absolute);
  let recovered = 0;
  for (const value of best) if (value >= threshold) recovered++;
  return recovered / t.rows;
}

/**
 * Fraction of variance unexplained by a reconstruction xhat of x (both [rows, d]):
 *
 *     FVU = sum over rows r of ||x_r - xhat_r||^2 / sum over rows r of ||x_r - mean(x)||^2
 *
 * where mean(x) is the mean row of x itself (each coordinate's mean over the rows given), so
 * predicting that mean for every row scores 1 and a perfect reconstruction 0. Computed in
 * float64. A RangeError if x has no variance (all rows equal).
 */
export function fvu(x: Matrix, xhat: Matrix): number {
  const [a, b] = checkPair(x, xhat);
  const { rows, cols } = a;
  const columnMean = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) columnMean[c] += a.data[r * cols + c];
  for (let c = 0; c < cols; c++) columnMean[c] /= rows;
  let error = 0;
  let variance = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const value = a.data[r * cols + c];
      error += (value - b.data[r * cols + c]) ** 2;
      variance += (value - columnMean[c]) ** 2;
    }
  }
  if (variance === 0) {
    throw new RangeError('Expected x with non-zero variance around its mean row (the denominator of fvu) but all rows of x are equal');
  }
  return error / variance;
}

/**
 * Mean squared error over every element: MSE = (1 / (rows * d)) * sum over r, c of
 * (x[r, c] - xhat[r, c])^2. (A SparseAutoencoder's step `mse` is the same quantity; its `loss`
 * sums over d instead.) Computed in float64.
 */
export function mse(x: Matrix, xhat: Matrix): number {
  const [a, b] = checkPair(x, xhat);
  let error = 0;
  for (let i = 0; i < a.data.length; i++) error += (a.data[i] - b.data[i]) ** 2;
  return error / a.data.length;
}

/**
 * Mean number of non-zero codes per row: L0 = (1 / rows) * #{ (r, j) : codes[r, j] != 0 }.
 * Codes are dense [rows, features] or CSR (as `encode(x, { format: 'sparse' })` returns; stored
 * zeros do not count). Negative codes count as active.
 */
export function l0(codes: Matrix | SparseMatrix): number {
  const { rows, counts } = activity(codes);
  let total = 0;
  for (const count of counts) total += count;
  return total / rows;
}

/**
 * Per-feature firing frequency: density[j] = (1 / rows) * #{ r : codes[r, j] != 0 }, a
 * Float64Array of one value in [0, 1] per feature (column). Dense or CSR codes, as for l0.
 */
export function featureDensity(codes: Matrix | SparseMatrix): Float64Array {
  const { rows, counts } = activity(codes);
  const density = new Float64Array(counts.length);
  for (let j = 0; j < counts.length; j++) density[j] = counts[j] / rows;
  return density;
}

/**
 * Fraction of features (columns) that are never active over the given codes:
 * (1 / features) * #{ j : codes[r, j] = 0 for every row r }. A feature is only dead relative to
 * the rows given: use enough of them (SAE practice: a few million tokens). Dense or CSR codes.
 */
export function deadFraction(codes: Matrix | SparseMatrix): number {
  const { counts } = activity(codes);
  if (counts.length === 0) throw is.rangeError('codes.cols', 'positive integer', 0);
  let dead = 0;
  for (const count of counts) if (count === 0) dead++;
  return dead / counts.length;
}

function checkDirections(nameA: string, a: unknown, nameB: string, b: unknown): [Matrix, Matrix] {
  const x = checkMatrix(nameA, a, undefined, 1);
  const y = checkMatrix(nameB, b, { value: x.cols, label: `${nameA}.cols` }, 1);
  addon.checkFinite(x.data, x.cols, `${nameA}.data`);
  addon.checkFinite(y.data, y.cols, `${nameB}.data`);
  return [x, y];
}

function similarities(a: Matrix, b: Matrix): Matrix {
  const out = new Float32Array(a.rows * b.rows);
  addon.cosineSimilarity(a.data, a.rows, b.data, b.rows, a.cols, out, availableParallelism());
  return { rows: a.rows, cols: b.rows, data: out };
}

function rowMaxima(s: Matrix, absolute: boolean): Float64Array {
  const best = new Float64Array(s.rows).fill(-Infinity);
  for (let i = 0; i < s.rows; i++) {
    for (let j = 0; j < s.cols; j++) {
      const value = absolute ? Math.abs(s.data[i * s.cols + j]) : s.data[i * s.cols + j];
      if (value > best[i]) best[i] = value;
    }
  }
  return best;
}

function columnMaxima(s: Matrix, absolute: boolean): Float64Array {
  const best = new Float64Array(s.cols).fill(-Infinity);
  for (let i = 0; i < s.rows; i++) {
    for (let j = 0; j < s.cols; j++) {
      const value = absolute ? Math.abs(s.data[i * s.cols + j]) : s.data[i * s.cols + j];
      if (value > best[j]) best[j] = value;
    }
  }
  return best;
}

function mean(values: Float64Array): number {
  let total = 0;
  for (const value of values) total += value;
  return total / values.length;
}

function checkPair(x: unknown, xhat: unknown): [Matrix, Matrix] {
  const a = checkMatrix('x', x, undefined, 1);
  if (a.cols === 0) throw is.rangeError('x.cols', 'positive integer', 0);
  const b = checkMatrix('xhat', xhat, { value: a.cols, label: 'x.cols' });
  if (b.rows !== a.rows) {
    throw new RangeError(`Expected xhat.rows to equal x.rows (${a.rows}) but received ${is.describe(b.rows)}`);
  }
  addon.checkFinite(a.data, a.cols, 'x.data');
  addon.checkFinite(b.data, b.cols, 'xhat.data');
  return [a, b];
}

// How many rows each feature (column) is non-zero in, for dense or CSR codes with at least one row.
function activity(codes: unknown): { rows: number; counts: Float64Array } {
  if (isSparseMatrix(codes)) {
    const c = checkSparseMatrix('codes', codes);
    if (c.rows === 0) throw is.rangeError('codes.rows', 'positive integer', 0);
    const stored = checkCsrStructure(c);
    addon.checkFinite(c.values.subarray(0, stored), 0, 'codes.values');
    const counts = new Float64Array(c.cols);
    for (let e = 0; e < stored; e++) if (c.values[e] !== 0) counts[c.indices[e]]++;
    return { rows: c.rows, counts };
  }
  const c = checkMatrix('codes', codes, undefined, 1);
  addon.checkFinite(c.data, c.cols, 'codes.data');
  const counts = new Float64Array(c.cols);
  for (let r = 0; r < c.rows; r++) {
    for (let j = 0; j < c.cols; j++) if (c.data[r * c.cols + j] !== 0) counts[j]++;
  }
  return { rows: c.rows, counts };
}

// The checks native/core/checks.cc makes before decoding sparse codes, plus increasing columns
// within a row (a repeated column would be counted twice). Returns the number of entries used.
function checkCsrStructure(c: SparseMatrix): number {
  const { rows, cols, indptr, indices } = c;
  if (indptr[0] !== 0) throw new RangeError(`Expected codes.indptr[0] to be 0 but received ${indptr[0]}`);
  for (let r = 0; r < rows; r++) {
    if (indptr[r + 1] < indptr[r]) {
      throw new RangeError(
        `Expected codes.indptr to be non-decreasing but indptr[${r + 1}] = ${indptr[r + 1]} is less than indptr[${r}] = ${indptr[r]}`,
      );
    }
  }
  const stored = indptr[rows];
  if (stored > indices.length) {
    throw new RangeError(
      `Expected codes.indptr[rows] = ${stored} to be at most the length of codes.indices and codes.values (${indices.length})`,
    );
  }
  for (let r = 0; r < rows; r++) {
    for (let e = indptr[r]; e < indptr[r + 1]; e++) {
      const column = indices[e];
      if (column < 0 || column >= cols) {
        throw new RangeError(`Expected codes.indices to be in [0, ${cols}) but indices[${e}] is ${column}`);
      }
      if (e > indptr[r] && column <= indices[e - 1]) {
        throw new RangeError(
          `Expected codes.indices to increase within each row but row ${r} has ${column} after ${indices[e - 1]}`,
        );
      }
    }
  }
  return stored;
}

/**
 * The fraction of the model's loss that splicing the SAE in recovers, from losses the user's
 * model computed (for example mean next-token cross-entropy):
 *   lossRecovered = (zeroAblated - spliced) / (zeroAblated - clean)
 * where `clean` is the model's own loss, `zeroAblated` its loss with the activation replaced by
 * zeros, and `spliced` its loss with the activation replaced by the SAE's reconstruction. 1
 * means the reconstruction loses nothing; 0 that it is as bad as deleting the activation.
 */
export function lossRecovered(losses: { clean: number; zeroAblated: number; spliced: number }): number {
  if (!is.isObject(losses)) throw is.typeError('losses', '{ clean, zeroAblated, spliced }', losses);
  is.knownKeys('metrics.lossRecovered', losses, ['clean', 'zeroAblated', 'spliced']);
  const clean = is.finiteNumber('losses.clean', losses.clean);
  const zeroAblated = is.finiteNumber('losses.zeroAblated', losses.zeroAblated);
  const spliced = is.finiteNumber('losses.spliced', losses.spliced);
  if (zeroAblated === clean) {
    throw new RangeError(`Expected losses.zeroAblated to differ from losses.clean but both are ${clean}: the fraction is undefined`);
  }
  return (zeroAblated - spliced) / (zeroAblated - clean);
}

/**
 * The mean over rows of KL(softmax(a_r) || softmax(b_r)) in nats, for logits a and b of the
 * same shape [rows, vocabulary]: sum_j p_j (log p_j - log q_j) with p = softmax(a_r) and
 * q = softmax(b_r), computed with log-sum-exp so that large logits do not overflow. Typically
 * a holds the clean model's logits and b the logits with the SAE spliced in.
 */
export function klDivergence(logitsA: Matrix, logitsB: Matrix): number {
  const a = checkMatrix('logitsA', logitsA, undefined, 1);
  const b = checkMatrix('logitsB', logitsB, { value: a.cols, label: 'logitsA.cols' }, 1);
  if (b.rows !== a.rows) throw new RangeError(`Expected logitsB.rows to equal logitsA.rows (${a.rows}) but received ${b.rows}`);
  if (a.cols === 0) throw new RangeError('Expected at least one column (a vocabulary) in logitsA');
  const logSumExp = (data: Float32Array, offset: number, n: number): number => {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, data[offset + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += Math.exp(data[offset + j] - max);
    return max + Math.log(sum);
  };
  let total = 0;
  for (let r = 0; r < a.rows; r++) {
    const offset = r * a.cols;
    const lseA = logSumExp(a.data, offset, a.cols);
    const lseB = logSumExp(b.data, offset, a.cols);
    let kl = 0;
    for (let j = 0; j < a.cols; j++) {
      const logP = a.data[offset + j] - lseA;
      const logQ = b.data[offset + j] - lseB;
      kl += Math.exp(logP) * (logP - logQ);
    }
    total += kl;
  }
  const mean = total / a.rows;
  if (!Number.isFinite(mean)) throw new RangeError('Expected finite logits in logitsA and logitsB');
  return mean;
}
