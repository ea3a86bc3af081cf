// A small reader and writer for the safetensors format (huggingface/safetensors): 8 bytes of
// little-endian header length N, N bytes of JSON mapping each tensor name to { dtype, shape,
// data_offsets: [begin, end] } (offsets into the data that follows) plus an optional
// "__metadata__" map of strings, then the raw little-endian data. Our own rather than a
// package: the format is a page long, we need only dense float tensors, and every check
// below turns a bad file into an error that names the file and the problem.
import { float16ToFloat32 } from './npy.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64';

export interface Tensor {
  shape: number[];
  /** Row-major values: float64 tensors as a Float64Array, the others widened to float32. */
  data: Float32Array | Float64Array;
  /** The dtype stored in the file. */
  dtype: SafetensorsDType;
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

const dtypeSize: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

export class SafetensorsFormatError extends Error {
  readonly code = 'SAFETENSORS_FORMAT';
  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'SafetensorsFormatError';
  }
}

function bfloat16ToFloat32(bits: number): number {
  const scratch = new DataView(new ArrayBuffer(4));
  scratch.setUint32(0, bits << 16, true);
  return scratch.getFloat32(0, true);
}

function decode(dtype: SafetensorsDType, bytes: Uint8Array, count: number): Float32Array | Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = dtype === 'F64' ? new Float64Array(count) : new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = float16ToFloat32(view.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat32(view.getUint16(2 * i, true));
      break;
  }
  return out;
}

/** Parses a safetensors file's bytes; `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  if (bytes.length < 8) throw new SafetensorsFormatError(source, `file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new SafetensorsFormatError(source, `bad header length ${headerLength} (the file has ${bytes.length - 8} bytes after it)`);
  }
  const headerEnd = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch (error) {
    throw new SafetensorsFormatError(source, `the header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsFormatError(source, 'the header is not a JSON object');
  }
  const dataLength = bytes.length - headerEnd;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in dtypeSize)) {
      throw new SafetensorsFormatError(source, `tensor ${name} has unsupported dtype ${JSON.stringify(dtype)} (F32, F16, BF16 and F64 are supported)`);
    }
    if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new SafetensorsFormatError(source, `tensor ${name} has a bad shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0) || offsets[0] > offsets[1]) {
      throw new SafetensorsFormatError(source, `tensor ${name} has bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== count * dtypeSize[dtype]) {
      throw new SafetensorsFormatError(source, `tensor ${name} of shape [${shape.join(', ')}] and dtype ${dtype} needs ${count * dtypeSize[dtype]} bytes but its data_offsets span ${end - begin}`);
    }
    if (end > dataLength) {
      throw new SafetensorsFormatError(source, `tensor ${name} ends at byte ${end} of the data but the file holds only ${dataLength} (truncated?)`);
    }
    tensors.set(name, {
      shape: shape as number[],
      dtype: dtype as SafetensorsDType,
      data: decode(dtype as SafetensorsDType, bytes.subarray(headerEnd + begin, headerEnd + end), count),
    });
  }
  return { tensors, metadata };
}

/** The bytes of a safetensors file holding float32 or float64 tensors (in the given order) and string metadata. */
export function encodeSafetensors(
  tensors: Record<string, { shape: readonly number[]; data: Float32Array | Float64Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, { shape, data }] of Object.entries(tensors)) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new RangeError(`Expected tensor ${name} to hold ${count} values for shape [${shape.join(', ')}] but it holds ${data.length}`);
    header[name] = { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20); // space-padded: data starts 8-byte aligned
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const { data } of Object.values(tensors)) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}
