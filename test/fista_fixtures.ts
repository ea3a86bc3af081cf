// Fixtures for the FISTA tests: random dictionaries and data, and their float64 views.
import type { Matrix } from '../lib/matrix.js';
import { Random } from '../lib/random.js';
import type { Lasso } from './fista_reference.js';

/** m atoms of dimension d drawn from a standard normal, normalised to unit rows unless `unit` is false. */
export function randomDictionary(m: number, d: number, seed: number, unit = true): Matrix {
  const random = new Random(seed);
  const data = new Float32Array(m * d);
  for (let k = 0; k < m; k++) {
    let norm = 0;
    for (let i = 0; i < d; i++) {
      const v = random.normal();
      data[k * d + i] = v;
      norm += v * v;
    }
    const scale = unit ? 1 / Math.sqrt(norm) : 1 / Math.sqrt(d);
    for (let i = 0; i < d; i++) data[k * d + i] *= scale;
  }
  return { rows: m, cols: d, data };
}

/** The float64 problem the native solver sees for dictionary D (the float32 values, exactly). */
export function lasso(dictionary: Matrix, lambda: number, nonNegative = false): Lasso {
  return { m: dictionary.rows, d: dictionary.cols, dictionary: Float64Array.from(dictionary.data), lambda, nonNegative };
}

export function row(matrix: Matrix, r: number): Float32Array {
  return matrix.data.subarray(r * matrix.cols, (r + 1) * matrix.cols);
}

export function countNonZero(values: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) count++;
  return count;
}
