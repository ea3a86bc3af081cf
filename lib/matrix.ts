import { describe, integer, isObject, typeError } from './validate.js';

/** A dense row-major matrix: element (i, j) is `data[i * cols + j]`. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array;
}

/**
 * A matrix in compressed sparse row form: row i's non-zeros are at positions
 * `indptr[i]` to `indptr[i + 1] - 1` of `indices` (their columns, increasing) and `values`.
 */
export interface SparseMatrix {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export function matrix(rows: number, cols: number, data: Float32Array = new Float32Array(rows * cols)): Matrix {
  return { rows, cols, data };
}

/**
 * Checks that `value` is a Matrix whose data length matches its shape and, when `cols` is
 * given, whose column count is `cols.value` (named `cols.label` in the message).
 */
export function checkMatrix(
  name: string,
  value: unknown,
  cols?: { value: number; label: string },
  minRows = 0,
): Matrix {
  if (!isObject(value)) throw typeError(name, 'Matrix { rows, cols, data }', value);
  const rows = integer(`${name}.rows`, value.rows, minRows);
  const c = integer(`${name}.cols`, value.cols, 0);
  const data = value.data;
  if (!(data instanceof Float32Array)) throw typeError(`${name}.data`, 'Float32Array', data);
  if (isDetached(data)) throw new TypeError(`Expected ${name}.data to be readable but its ArrayBuffer is detached (transferred)`);
  if (data.length !== rows * c) {
    throw new RangeError(
      `Expected ${name}.data.length to equal ${name}.rows * ${name}.cols = ${rows * c} but received ${data.length}`,
    );
  }
  if (cols !== undefined && c !== cols.value) {
    throw new RangeError(`Expected ${name}.cols to equal ${cols.label} (${cols.value}) but received ${describe(c)}`);
  }
  return { rows, cols: c, data };
}

/** Whether a typed array's buffer was transferred away (it then reads as empty). */
export function isDetached(array: ArrayBufferView): boolean {
  if (array.byteLength > 0) return false;
  try {
    new Uint8Array(array.buffer);
    return false;
  } catch {
    return true;
  }
}

/** Shape and type checks of a SparseMatrix; the native layer checks indptr and indices. */
export function checkSparseMatrix(name: string, value: unknown, cols?: { value: number; label: string }): SparseMatrix {
  if (!isObject(value)) throw typeError(name, 'SparseMatrix { rows, cols, indptr, indices, values }', value);
  const rows = integer(`${name}.rows`, value.rows, 0);
  const c = integer(`${name}.cols`, value.cols, 0);
  const { indptr, indices, values } = value;
  if (!(indptr instanceof Int32Array)) throw typeError(`${name}.indptr`, 'Int32Array', indptr);
  if (!(indices instanceof Int32Array)) throw typeError(`${name}.indices`, 'Int32Array', indices);
  if (!(values instanceof Float32Array)) throw typeError(`${name}.values`, 'Float32Array', values);
  for (const [field, array] of [['indptr', indptr], ['indices', indices], ['values', values]] as const) {
    if (isDetached(array)) throw new TypeError(`Expected ${name}.${field} to be readable but its ArrayBuffer is detached (transferred)`);
  }
  if (indptr.length !== rows + 1) {
    throw new RangeError(`Expected ${name}.indptr.length to equal ${name}.rows + 1 = ${rows + 1} but received ${indptr.length}`);
  }
  if (indices.length !== values.length) {
    throw new RangeError(
      `Expected ${name}.indices.length to equal ${name}.values.length (${values.length}) but received ${indices.length}`,
    );
  }
  if (cols !== undefined && c !== cols.value) {
    throw new RangeError(`Expected ${name}.cols to equal ${cols.label} (${cols.value}) but received ${describe(c)}`);
  }
  return { rows, cols: c, indptr, indices, values };
}

export function isSparseMatrix(value: unknown): boolean {
  return isObject(value) && 'indptr' in value;
}

