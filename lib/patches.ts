// Natural-image patches, the classic data for sparse coding and ICA, and two measures of what
// a dictionary learned from them looks like: spatial locality and response kurtosis.
//
// The recipe that gives localised, oriented, edge-like filters on JPEG photographs (measured
// in shared/REFERENCES.md): average-pool each image 2x2 (which blurs away JPEG's 8x8 block
// structure), take random 12x12 patches, remove each patch's mean, ZCA-whiten with epsilon
// 0.1 x the mean eigenvalue. naturalImagePatches does exactly that.
import { availableParallelism } from 'node:os';

import { symmetricEigen } from './linalg.js';
import { checkMatrix, type Matrix } from './matrix.js';
import { addon } from './native.js';
import { Random } from './random.js';
import * as is from './validate.js';

/** Each 2x2 block of pixels replaced by its mean; an odd last row or column is dropped. */
export function averagePool2x2(image: Matrix): Matrix {
  const im = checkMatrix('image', image, undefined, 2);
  if (im.cols < 2) throw is.rangeError('image.cols', 'integer of at least 2', im.cols);
  const rows = Math.floor(im.rows / 2);
  const cols = Math.floor(im.cols / 2);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const top = 2 * r * im.cols;
    const bottom = top + im.cols;
    for (let c = 0; c < cols; c++) {
      const d = im.data;
      out[r * cols + c] = (d[top + 2 * c] + d[top + 2 * c + 1] + d[bottom + 2 * c] + d[bottom + 2 * c + 1]) / 4;
    }
  }
  return { rows, cols, data: out };
}

function checkImages(images: unknown, size: number): Matrix[] {
  const list = Array.isArray(images) ? images : [images];
  if (list.length === 0) throw is.rangeError('images', 'at least one image', images);
  return list.map((image, i) => {
    const name = Array.isArray(images) ? `images[${i}]` : 'images';
    const im = checkMatrix(name, image);
    if (im.rows < size || im.cols < size) {
      throw new RangeError(`Expected ${name} to be at least ${size} x ${size} pixels (the patch size) but it is ${im.rows} x ${im.cols}`);
    }
    return im;
  });
}

/**
 * `count` square patches of `size` x `size` pixels at distinct positions drawn uniformly (from
 * the seed) among every position in every image, one patch per row, row-major within the
 * patch: [count, size * size].
 */
export function extractPatches(images: Matrix | readonly Matrix[], size: number, count: number, seed = 0): Matrix {
  is.integer('size', size, 1);
  const list = checkImages(images, size);
  is.integer('count', count, 0);
  is.integer('seed', seed, 0);
  const positions = list.map((im) => (im.rows - size + 1) * (im.cols - size + 1));
  const total = positions.reduce((a, b) => a + b, 0);
  if (count > total) throw is.rangeError('count', `integer in [0, ${total}] (the number of distinct patch positions)`, count);

  const random = new Random(seed);
  const chosen = new Float64Array(count);
  if (2 * count <= total) {
    const taken = new Set<number>();
    for (let i = 0; i < count; i++) {
      let position: number;
      do position = random.below(total);
      while (taken.has(position));
      taken.add(position);
      chosen[i] = position;
    }
  } else {
    const all = new Float64Array(total);
    for (let i = 0; i < total; i++) all[i] = i;
    for (let i = 0; i < count; i++) {
      const j = i + random.below(total - i);
      chosen[i] = all[j];
      all[j] = all[i];
    }
  }

  const dim = size * size;
  const out = new Float32Array(count * dim);
  for (let p = 0; p < count; p++) {
    let position = chosen[p];
    let which = 0;
    while (position >= positions[which]) position -= positions[which++];
    const im = list[which];
    const across = im.cols - size + 1;
    const top = Math.floor(position / across);
    const left = position % across;
    for (let r = 0; r < size; r++) {
      const start = (top + r) * im.cols + left;
      out.set(im.data.subarray(start, start + size), p * dim + r * size);
    }
  }
  return { rows: count, cols: dim, data: out };
}

/** Each row minus its own mean (a patch's mean brightness carries no structure). */
export function removePatchMean(patches: Matrix): Matrix {
  const x = checkMatrix('patches', patches);
  const out = new Float32Array(x.data.length);
  for (let r = 0; r < x.rows; r++) {
    const row = x.data.subarray(r * x.cols, (r + 1) * x.cols);
    let sum = 0;
    for (let i = 0; i < x.cols; i++) sum += row[i];
    const mean = sum / x.cols;
    for (let i = 0; i < x.cols; i++) out[r * x.cols + i] = row[i] - mean;
  }
  return { rows: x.rows, cols: x.cols, data: out };
}

export interface Whitened {
  /** The whitened rows, x M. */
  data: Matrix;
  /** M = U diag(1 / sqrt(lambda + epsilon)) U^T [dIn, dIn], symmetric; whiten other rows with applyWhitening. */
  whitening: Matrix;
  /** Eigenvalues of the second-moment matrix x^T x / rows, largest first. */
  eigenvalues: Float64Array;
  /** The epsilon added to every eigenvalue (options.epsilon x their mean). */
  epsilon: number;
}

/** op(a) b natively, off the main thread: a [m, k] (or its transpose when stored [k, m]), b [k, n]. */
async function multiply(a: Float32Array, transposeA: boolean, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array> {
  const out = new Float32Array(m * n);
  await addon.matmul(a, transposeA, b, m, k, n, out, availableParallelism());
  return out;
}

/**
 * ZCA whitening: rotate to the eigenbasis of the second-moment matrix x^T x / rows, scale each
 * direction by 1 / sqrt(eigenvalue + epsilon), rotate back. `options.epsilon` (default 0.1) is
 * relative to the mean eigenvalue; it keeps the smallest directions (noise, and the one that
 * patch-mean removal zeroes) from being blown up. As in the UFLDL exercises the rows are not
 * centred here: remove patch means first (removePatchMean), which centres them closely.
 * The two products with x run natively off the main thread.
 */
export async function zcaWhiten(x: Matrix, options?: { epsilon?: number }): Promise<Whitened> {
  const data = checkMatrix('x', x, undefined, 1);
  const opts = is.options('options', options);
  is.knownKeys('zcaWhiten', opts, ['epsilon']);
  const relative = opts.epsilon === undefined ? 0.1 : is.positiveNumber('options.epsilon', opts.epsilon);
  addon.checkFinite(data.data, data.cols, 'x.data');
  const d = data.cols;
  const moments = await multiply(data.data, true, data.data, d, data.rows, d);
  const { values, vectors } = symmetricEigen(Float64Array.from(moments, (v) => v / data.rows), d);
  const epsilon = (relative * values.reduce((a, b) => a + b, 0)) / d;
  const whitening = new Float32Array(d * d);
  const scaled = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    // A rounding-negative eigenvalue of a singular matrix counts as zero.
    const scale = 1 / Math.sqrt(Math.max(values[j], 0) + epsilon);
    for (let i = 0; i < d; i++) scaled[j * d + i] = vectors[j * d + i] * scale;
  }
  for (let i = 0; i < d; i++) {
    for (let k = i; k < d; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += vectors[j * d + i] * scaled[j * d + k];
      whitening[i * d + k] = s;
      whitening[k * d + i] = s;
    }
  }
  const m = { rows: d, cols: d, data: whitening };
  return { data: { rows: data.rows, cols: d, data: await multiply(data.data, false, whitening, data.rows, d, d) }, whitening: m, eigenvalues: values, epsilon };
}

/** x M for a whitening matrix M from zcaWhiten (for held-out rows). */
export async function applyWhitening(x: Matrix, whitening: Matrix): Promise<Matrix> {
  const data = checkMatrix('x', x);
  const m = checkMatrix('whitening', whitening, { value: data.cols, label: 'x.cols' });
  if (m.rows !== m.cols) throw new RangeError(`Expected whitening to be square but it is ${m.rows} x ${m.cols}`);
  return { rows: data.rows, cols: data.cols, data: await multiply(data.data, false, m.data, data.rows, data.cols, data.cols) };
}

export interface NaturalImagePatchOptions {
  /** Patch side in pixels (default 12). */
  size?: number;
  /** Training patches. */
  count: number;
  /** Further patches, at positions distinct from the training ones, whitened the same way (default 0). */
  heldOut?: number;
  /** Seeds the patch positions (default 0). */
  seed?: number;
  /** Average-pool each image 2x2 first (default true). */
  pool?: boolean;
  /** ZCA epsilon relative to the mean eigenvalue (default 0.1). */
  epsilon?: number;
}

/** The recipe above, end to end: pooled, patch-mean-removed, ZCA-whitened patches. */
export async function naturalImagePatches(
  images: Matrix | readonly Matrix[],
  options: NaturalImagePatchOptions,
): Promise<{ train: Matrix; heldOut: Matrix; whitening: Matrix }> {
  if (!is.isObject(options)) throw is.typeError('options', 'object', options);
  is.knownKeys('naturalImagePatches', options, ['size', 'count', 'heldOut', 'seed', 'pool', 'epsilon']);
  const size = options.size === undefined ? 12 : is.integer('options.size', options.size, 1);
  const count = is.integer('options.count', options.count, 1);
  const heldOut = options.heldOut === undefined ? 0 : is.integer('options.heldOut', options.heldOut, 0);
  const seed = options.seed === undefined ? 0 : is.integer('options.seed', options.seed, 0);
  const pool = options.pool === undefined ? true : is.boolean('options.pool', options.pool);
  const list = Array.isArray(images) ? images : [images as Matrix];
  const source = pool ? list.map((im, i) => averagePool2x2(checkMatrix(Array.isArray(images) ? `images[${i}]` : 'images', im))) : list;
  const all = removePatchMean(extractPatches(source, size, count + heldOut, seed));
  const dim = size * size;
  const train = { rows: count, cols: dim, data: all.data.subarray(0, count * dim) };
  const whitened = await zcaWhiten(train, options.epsilon === undefined ? {} : { epsilon: options.epsilon });
  const rest = { rows: heldOut, cols: dim, data: all.data.subarray(count * dim) };
  return { train: whitened.data, heldOut: await applyWhitening(rest, whitened.whitening), whitening: whitened.whitening };
}

function squareSide(name: string, filters: Matrix): number {
  const side = Math.round(Math.sqrt(filters.cols));
  if (side * side !== filters.cols) {
    throw new RangeError(`Expected ${name}.cols to be a square number of pixels but received ${filters.cols}`);
  }
  return side;
}

/**
 * For each row of `filters` seen as a square image, the fraction of its energy (sum of
 * squares) inside its best `window` x `window` window (default 4): near 1 for a localised
 * filter, about 0.20 for random 12x12 filters with a 4x4 window. NaN for a zero filter.
 */
export function filterLocality(filters: Matrix, window = 4): Float64Array {
  const f = checkMatrix('filters', filters, undefined, 1);
  const side = squareSide('filters', f);
  is.integer('window', window, 1, side);
  const out = new Float64Array(f.rows);
  const energy = new Float64Array(side * side);
  for (let r = 0; r < f.rows; r++) {
    let total = 0;
    for (let i = 0; i < side * side; i++) {
      energy[i] = f.data[r * f.cols + i] ** 2;
      total += energy[i];
    }
    let best = 0;
    for (let top = 0; top + window <= side; top++) {
      for (let left = 0; left + window <= side; left++) {
        let sum = 0;
        for (let i = 0; i < window; i++) for (let j = 0; j < window; j++) sum += energy[(top + i) * side + left + j];
        best = Math.max(best, sum);
      }
    }
    out[r] = total > 0 ? best / total : NaN;
  }
  return out;
}

/**
 * For each row of `filters` seen as a square image, how concentrated its spatial-frequency
 * power is around one orientation: |sum P(u,v) e^{2i theta(u,v)}| / sum P(u,v) over the
 * discrete Fourier frequencies (u, v) other than (0, 0), with theta their angle and P the
 * power. 1 for a pure grating or edge at one orientation; small for isotropic or random
 * filters (about 0.1 for random 12x12 ones). NaN for a filter without non-constant content.
 */
export function filterOrientation(filters: Matrix): Float64Array {
  const f = checkMatrix('filters', filters, undefined, 1);
  const side = squareSide('filters', f);
  const out = new Float64Array(f.rows);
  const cos = Float64Array.from({ length: side }, (_, i) => Math.cos((2 * Math.PI * i) / side));
  const sin = Float64Array.from({ length: side }, (_, i) => Math.sin((2 * Math.PI * i) / side));
  // The signed frequency of DFT index i: 0, 1, ..., then negative above side / 2.
  const frequency = (i: number) => (i <= side / 2 ? i : i - side);
  for (let r = 0; r < f.rows; r++) {
    const image = f.data.subarray(r * f.cols, (r + 1) * f.cols);
    let total = 0;
    let re2 = 0;
    let im2 = 0;
    for (let u = 0; u < side; u++) {
      for (let v = 0; v < side; v++) {
        if (u === 0 && v === 0) continue;
        let re = 0;
        let im = 0;
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) {
            const phase = (u * y + v * x) % side;
            re += image[y * side + x] * cos[phase];
            im -= image[y * side + x] * sin[phase];
          }
        }
        const power = re * re + im * im;
        const angle = 2 * Math.atan2(frequency(u), frequency(v));
        total += power;
        re2 += power * Math.cos(angle);
        im2 += power * Math.sin(angle);
      }
    }
    out[r] = total > 0 ? Math.hypot(re2, im2) / total : NaN;
  }
  return out;
}

/**
 * For each row f of `filters`, the kurtosis E[(y - mean)^4] / var^2 of its responses y = x f
 * over the rows of `x`: 3 for Gaussian responses; sparse, heavy-tailed responses score high.
 * (Pearson's kurtosis, not the excess kurtosis, which is 3 less.)
 */
export async function responseKurtosis(filters: Matrix, x: Matrix): Promise<Float64Array> {
  const f = checkMatrix('filters', filters, undefined, 1);
  const data = checkMatrix('x', x, { value: f.cols, label: 'filters.cols' }, 2);
  const [k, d, rows] = [f.rows, f.cols, data.rows];
  const transposed = new Float32Array(d * k);
  for (let j = 0; j < k; j++) for (let i = 0; i < d; i++) transposed[i * k + j] = f.data[j * d + i];
  const responses = await multiply(data.data, false, transposed, rows, d, k);
  const out = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += responses[r * k + j];
    const mean = sum / rows;
    let m2 = 0;
    let m4 = 0;
    for (let r = 0; r < rows; r++) {
      const c = (responses[r * k + j] - mean) ** 2;
      m2 += c;
      m4 += c * c;
    }
    out[j] = (m4 / rows) / (m2 / rows) ** 2;
  }
  return out;
}
