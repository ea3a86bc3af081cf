// NumPy .npy files (format versions 1.0, 2.0 and 3.0), the way activations usually leave
// PyTorch or numpy. https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';

import { checkMatrix, type Matrix } from './matrix.js';

export type NpyDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'uint32' | 'float16';
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array;

export interface NpyArray {
  dtype: NpyDType;
  /** Row-major (C order) shape. */
  shape: number[];
  /** C-order elements; float16 is widened to a Float32Array. */
  data: NpyData;
}

const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const dtypes: Record<string, { dtype: NpyDType; size: number }> = {
  f4: { dtype: 'float32', size: 4 },
  f8: { dtype: 'float64', size: 8 },
  f2: { dtype: 'float16', size: 2 },
  i4: { dtype: 'int32', size: 4 },
  i8: { dtype: 'int64', size: 8 },
  i2: { dtype: 'int16', size: 2 },
  i1: { dtype: 'int8', size: 1 },
  u1: { dtype: 'uint8', size: 1 },
  u2: { dtype: 'uint16', size: 2 },
  u4: { dtype: 'uint32', size: 4 },
};

export class NpyFormatError extends Error {
  readonly code = 'NPY_FORMAT';
  constructor(source: string, problem: string) {
    super(`${source} is not a readable .npy file: ${problem}`);
    this.name = 'NpyFormatError';
  }
}

export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  /** Bytes per element. */
  itemSize: number;
  /** Where the data starts in the file. */
  dataOffset: number;
}

/**
 * Parses the header at the start of a .npy file; `bytes` may be just the first part of the
 * file (a header is at most a few kilobytes). Fortran-ordered arrays of more than one
 * dimension are refused: they cannot be read row by row.
 */
export function parseNpyHeader(bytes: Uint8Array, source = 'the data'): NpyHeader {
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new NpyFormatError(source, 'missing the \\x93NUMPY magic string');
  const major = bytes[6];
  if (major < 1 || major > 3) throw new NpyFormatError(source, `format version ${major}.${bytes[7]} is not supported (1.0 to 3.0 are)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  if (bytes.length < headerStart) throw new NpyFormatError(source, 'the file ends inside its header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerStart + headerLength > bytes.length) {
    throw new NpyFormatError(source, `the header length ${headerLength} runs past the end of the file (${bytes.length} bytes)`);
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = header.match(/'descr'\s*:\s*'([^']*)'/)?.[1];
  const fortran = header.match(/'fortran_order'\s*:\s*(True|False)/)?.[1];
  const shapeText = header.match(/'shape'\s*:\s*\(([^)]*)\)/)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyFormatError(source, `the header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  }
  const order = descr[0];
  const kind = dtypes[descr.slice(1)];
  if (kind === undefined || !(order === '<' || order === '|' || (order === '=' && kind.size === 1))) {
    throw new NpyFormatError(source, `dtype '${descr}' is not supported (little-endian float16/32/64 and integers are)`);
  }
  const shape = shapeText
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map(Number);
  if (shape.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new NpyFormatError(source, `bad shape (${shapeText})`);
  if (fortran === 'True' && shape.filter((n) => n > 1).length > 1) {
    throw new NpyFormatError(source, 'Fortran-ordered (column-major) arrays are not supported; save it with np.ascontiguousarray');
  }
  return { dtype: kind.dtype, shape, itemSize: kind.size, dataOffset: headerStart + headerLength };
}

/** Parses the bytes of a .npy file. `source` names it in errors. */
export function parseNpy(bytes: Uint8Array, source = 'the data'): NpyArray {
  const { dtype, shape, itemSize, dataOffset } = parseNpyHeader(bytes, source);
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * itemSize;
  if (bytes.length - dataOffset < expected) {
    throw new NpyFormatError(source, `shape (${shape.join(', ')}) of ${dtype} needs ${expected} bytes of data but the file has ${bytes.length - dataOffset}`);
  }
  // A copy (Buffer#slice would share memory), which also aligns the data for the typed array.
  const raw = Uint8Array.prototype.slice.call(bytes, dataOffset, dataOffset + expected);
  return { dtype, shape, data: typedArray(dtype, raw.buffer, count) };
}

function typedArray(dtype: NpyDType, buffer: ArrayBuffer, count: number): NpyData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, 0, count);
    case 'float64':
      return new Float64Array(buffer, 0, count);
    case 'int32':
      return new Int32Array(buffer, 0, count);
    case 'int64':
      return new BigInt64Array(buffer, 0, count);
    case 'int16':
      return new Int16Array(buffer, 0, count);
    case 'int8':
      return new Int8Array(buffer, 0, count);
    case 'uint8':
      return new Uint8Array(buffer, 0, count);
    case 'uint16':
      return new Uint16Array(buffer, 0, count);
    case 'uint32':
      return new Uint32Array(buffer, 0, count);
    case 'float16': {
      const halves = new Uint16Array(buffer, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16ToFloat32(halves[i]);
      return out;
    }
  }
}

/** Any .npy array (numeric dtypes, any shape). */
export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await readFile(path), path);
}

const floatDTypes: readonly NpyDType[] = ['float32', 'float16', 'float64'];

export function checkFloatMatrixHeader(header: NpyHeader, source: string): void {
  if (!floatDTypes.includes(header.dtype)) {
    throw new NpyFormatError(source, `dtype ${header.dtype} is not a float dtype (float32, float16 and float64 are)`);
  }
  if (header.shape.length !== 2) {
    throw new NpyFormatError(source, `expected a 2-D array (rows, features) but its shape is (${header.shape.join(', ')})`);
  }
}

/**
 * A 2-D float32, float16 or float64 .npy array (C order) as a float32 Matrix. Other dtypes
 * and shapes are refused with an error naming the file.
 */
export async function loadNpy(path: string): Promise<Matrix> {
  if (typeof path !== 'string') throw new TypeError(`Expected string for path but received ${typeof path}`);
  const bytes = await readFile(path);
  checkFloatMatrixHeader(parseNpyHeader(bytes, path), path);
  return npyToMatrix(parseNpy(bytes, path), path);
}

/** Writes a Matrix as a 2-D float32 .npy file, atomically (temporary file, flush, rename). */
export async function saveNpy(path: string, matrix: Matrix): Promise<void> {
  if (typeof path !== 'string') throw new TypeError(`Expected string for path but received ${typeof path}`);
  const m = checkMatrix('matrix', matrix);
  await writeNpy(path, m.data, [m.rows, m.cols]);
}

/** A 2-D (or 1-D, as one row) numeric array as a float32 Matrix. */
export function npyToMatrix(array: NpyArray, source = 'the array'): Matrix {
  if (array.shape.length > 2) throw new RangeError(`Expected a 1-D or 2-D array in ${source} but its shape is (${array.shape.join(', ')})`);
  const rows = array.shape.length === 2 ? array.shape[0] : 1;
  const cols = array.shape.length === 2 ? array.shape[1] : (array.shape[0] ?? 1);
  const data =
    array.data instanceof Float32Array
      ? array.data
      : array.data instanceof BigInt64Array
        ? Float32Array.from(array.data, (v) => Number(v))
        : Float32Array.from(array.data as ArrayLike<number>);
  return { rows, cols, data };
}

const descrOf: Partial<Record<string, string>> = {
  Float32Array: '<f4',
  Float64Array: '<f8',
  Int32Array: '<i4',
  BigInt64Array: '<i8',
  Int16Array: '<i2',
  Int8Array: '|i1',
  Uint8Array: '|u1',
  Uint16Array: '<u2',
  Uint32Array: '<u4',
};

/** The bytes of a version 1.0 .npy file holding `data` with `shape` (C order). */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const descr = descrOf[data.constructor.name];
  if (descr === undefined) throw new TypeError(`Expected a numeric typed array for data but received ${data.constructor.name}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`Expected data.length to equal the product of shape (${count}) but received ${data.length}`);
  const header = npyHeaderBytes(descr, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** A version 1.0 header for C-ordered data of this dtype and shape; data starts 64-byte aligned after it. */
function npyHeaderBytes(descr: string, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total);
  out.set(magic, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  return out;
}

/**
 * Writes a .npy file atomically: to a temporary file beside `path`, flushed to disk, then
 * renamed over it, so a crash leaves either the old file or the new one.
 */
export async function writeNpy(path: string, data: NpyData, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}

export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}

/**
 * Writes a 2-D float32 .npy file a block of rows at a time, for outputs too large to hold in
 * memory. The file appears at `path` only when `close` succeeds (temporary file, flush,
 * rename); `abort` removes the temporary file.
 */
export class NpyWriter {
  readonly #path: string;
  readonly #temporary: string;
  readonly #rows: number;
  readonly #cols: number;
  #handle: Awaited<ReturnType<typeof open>> | undefined;
  #written = 0;

  private constructor(path: string, rows: number, cols: number) {
    this.#path = path;
    this.#temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.#rows = rows;
    this.#cols = cols;
  }

  static async create(path: string, rows: number, cols: number): Promise<NpyWriter> {
    const writer = new NpyWriter(path, rows, cols);
    writer.#handle = await open(writer.#temporary, 'w');
    await writer.#handle.write(npyHeaderBytes('<f4', [rows, cols]));
    return writer;
  }

  async append(rows: Float32Array): Promise<void> {
    if (this.#handle === undefined) throw new Error(`NpyWriter for ${this.#path} is closed`);
    if (rows.length % this.#cols !== 0 || this.#written + rows.length / this.#cols > this.#rows) {
      throw new RangeError(`Expected whole rows of ${this.#cols} values within the ${this.#rows} rows of ${this.#path}`);
    }
    await this.#handle.write(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    this.#written += rows.length / this.#cols;
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    if (this.#written !== this.#rows) {
      await handle.close();
      await unlink(this.#temporary).catch(() => {});
      throw new Error(`${this.#path}: ${this.#written} of ${this.#rows} rows were written; the file was not created`);
    }
    await handle.sync();
    await handle.close();
    await rename(this.#temporary, this.#path);
  }

  async abort(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
    await unlink(this.#temporary).catch(() => {});
  }
}
