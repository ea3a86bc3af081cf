// Activations larger than memory: batches read from one or many .npy files in chunks, mixed
// through a shuffle buffer (as SAELens's activation store mixes its buffer), so memory stays
// bounded by the buffer whatever the files' sizes.
import { open, type FileHandle } from 'node:fs/promises';

import type { Matrix } from './matrix.js';
import { checkFloatMatrixHeader, float16ToFloat32, parseNpyHeader, type NpyHeader } from './npy.js';
import { Random } from './random.js';
import * as is from './validate.js';

export interface NpyBatchesOptions {
  /** Rows per batch (the last batch of a pass may be smaller). Default 1024. */
  batchSize?: number;
  /** Mix rows through the shuffle buffer (default true); false reads rows in file order. */
  shuffle?: boolean;
  seed?: number;
  /** Rows held in the shuffle buffer; default max(16 * batchSize, 65536). Memory is about 2 * bufferRows * cols * 4 bytes. */
  bufferRows?: number;
  /** Passes over the files (default 1; Infinity for an endless stream). */
  epochs?: number;
  /**
   * 'expected-norm' multiplies every row by one factor s so that the mean squared norm of the
   * rows is the number of columns (the SAELens/Anthropic convention), with s estimated on the
   * first buffer of rows: s = sqrt(cols / mean ||x||^2). Exposed as `scale`; a
   * SparseAutoencoder trained on these batches records it (see SparseAutoencoder.inputScale).
   */
  normalize?: 'none' | 'expected-norm';
}

interface Source {
  path: string;
  header: NpyHeader;
  rows: number;
}

const headerProbeBytes = 65536;
const chunkBytes = 8 << 20;

async function readHeader(path: string): Promise<Source> {
  const handle = await open(path, 'r');
  try {
    const probe = new Uint8Array(headerProbeBytes);
    const { bytesRead } = await handle.read(probe, 0, probe.length, 0);
    const header = parseNpyHeader(probe.subarray(0, bytesRead), path);
    checkFloatMatrixHeader(header, path);
    const { size } = await handle.stat();
    const [rows, cols] = header.shape;
    const needed = header.dataOffset + rows * cols * header.itemSize;
    if (size < needed) {
      throw new Error(`${path} is not a readable .npy file: shape (${rows}, ${cols}) of ${header.dtype} needs ${needed} bytes but the file has ${size} (truncated?)`);
    }
    return { path, header, rows };
  } finally {
    await handle.close();
  }
}

function decodeRows(header: NpyHeader, bytes: Uint8Array, out: Float32Array, at: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / header.itemSize;
  switch (header.dtype) {
    case 'float32':
      // The chunk buffer starts its own ArrayBuffer, so the view is aligned.
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset, count), at);
      break;
    case 'float64':
      for (let i = 0; i < count; i++) out[at + i] = view.getFloat64(8 * i, true);
      break;
    default:
      for (let i = 0; i < count; i++) out[at + i] = float16ToFloat32(view.getUint16(2 * i, true));
  }
}

/** Reads rows from the files in order, a chunk at a time. */
class RowReader {
  #file = 0;
  #row = 0;
  #remaining: number;
  #handle: FileHandle | undefined;
  readonly #chunk = new Uint8Array(chunkBytes);
  constructor(
    private readonly sources: Source[],
    private readonly cols: number,
  ) {
    this.#remaining = sources.reduce((sum, source) => sum + source.rows, 0);
  }

  /** True once every row has been read. */
  get finished(): boolean {
    return this.#remaining === 0;
  }

  /** Reads up to `count` rows into out[at * cols ...]; returns how many were read (0 at the end). */
  async read(out: Float32Array, at: number, count: number): Promise<number> {
    let done = 0;
    while (done < count && this.#file < this.sources.length) {
      const source = this.sources[this.#file];
      if (this.#row >= source.rows) {
        await this.#handle?.close();
        this.#handle = undefined;
        this.#file++;
        this.#row = 0;
        continue;
      }
      this.#handle ??= await open(source.path, 'r');
      const rowBytes = this.cols * source.header.itemSize;
      const rows = Math.min(count - done, source.rows - this.#row, Math.max(1, Math.floor(chunkBytes / rowBytes)));
      const bytes = rows * rowBytes <= chunkBytes ? this.#chunk.subarray(0, rows * rowBytes) : new Uint8Array(rows * rowBytes);
      const position = source.header.dataOffset + this.#row * rowBytes;
      const { bytesRead } = await this.#handle.read(bytes, 0, bytes.length, position);
      if (bytesRead !== bytes.length) throw new Error(`${source.path}: expected ${bytes.length} bytes at offset ${position} but read ${bytesRead} (was the file truncated while reading?)`);
      decodeRows(source.header, bytes, out, (at + done) * this.cols);
      this.#row += rows;
      this.#remaining -= rows;
      done += rows;
    }
    return done;
  }

  async close(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
  }
}

/**
 * An AsyncIterable of batches over the rows of one or many 2-D float .npy files (float32,
 * float16 or float64; converted to float32), all with the same number of columns. Files are
 * read in order, a few megabytes at a time. With `shuffle`, rows pass through a buffer of
 * `bufferRows`: it is filled, shuffled, half of it is emitted as batches, and the rest stays
 * to be mixed with the next rows read, so rows far apart in the files end up in the same
 * batches without the files ever being loaded whole.
 */
export class NpyBatches implements AsyncIterable<Matrix> {
  readonly paths: readonly string[];
  readonly batchSize: number;
  readonly bufferRows: number;
  readonly shuffle: boolean;
  readonly epochs: number;
  readonly normalize: 'none' | 'expected-norm';
  /** The factor rows are multiplied by: 1 unless normalize is 'expected-norm', then known after the first batch. */
  scale = 1;
  #sources: Promise<Source[]> | undefined;
  readonly #random: Random;

  constructor(paths: string | readonly string[], options: NpyBatchesOptions = {}) {
    const list = typeof paths === 'string' ? [paths] : paths;
    if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string')) {
      throw is.typeError('paths', 'a path or a non-empty array of paths', paths);
    }
    const o = checkOptions(options);
    this.paths = [...list];
    this.batchSize = o.batchSize;
    this.bufferRows = o.bufferRows;
    this.shuffle = o.shuffle;
    this.epochs = o.epochs;
    this.normalize = o.normalize;
    this.#random = new Random(o.seed);
  }

  /**
   * Reads the files' headers (once) and checks that they are 2-D float arrays with the same
   * number of columns. Iterating does this too; call it to learn the shape first.
   */
  async open(): Promise<{ rows: number; cols: number }> {
    this.#sources ??= readHeaders(this.paths);
    const sources = await this.#sources;
    return { rows: sources.reduce((sum, s) => sum + s.rows, 0), cols: sources[0].header.shape[1] };
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Matrix, void, undefined> {
    const { rows, cols } = await this.open();
    const sources = await (this.#sources as Promise<Source[]>);
    const batchSize = this.batchSize;
    const bufferRows = Math.max(1, Math.min(this.bufferRows, rows));
    let scaleKnown = this.normalize === 'none';

    let buffer = new Float32Array(bufferRows * cols);
    let spare = new Float32Array(bufferRows * cols);
    for (let epoch = 0; epoch < this.epochs; epoch++) {
      const reader = new RowReader(sources, cols);
      try {
        let filled = 0;
        let exhausted = false;
        while (!exhausted || filled > 0) {
          if (!exhausted) {
            filled += await reader.read(buffer, filled, bufferRows - filled);
            exhausted = reader.finished;
          }
          if (filled === 0) break;
          if (!scaleKnown) {
            this.scale = expectedNormScale(buffer, filled, cols);
            scaleKnown = true;
          }
          const order = Int32Array.from({ length: filled }, (_, i) => i);
          if (this.shuffle) this.#random.shuffle(order);
          // Emit half the buffer while more rows are coming, all of it at the end.
          const emit = exhausted ? filled : Math.min(filled, Math.max(batchSize, Math.floor(filled / 2 / batchSize) * batchSize));
          for (let start = 0; start < emit; start += batchSize) {
            const count = Math.min(batchSize, emit - start);
            const data = new Float32Array(count * cols);
            for (let i = 0; i < count; i++) {
              const row = order[start + i];
              data.set(buffer.subarray(row * cols, (row + 1) * cols), i * cols);
            }
            if (this.scale !== 1) for (let i = 0; i < data.length; i++) data[i] *= this.scale;
            yield { rows: count, cols, data };
          }
          for (let i = emit; i < filled; i++) {
            const row = order[i];
            spare.set(buffer.subarray(row * cols, (row + 1) * cols), (i - emit) * cols);
          }
          [buffer, spare] = [spare, buffer];
          filled -= emit;
        }
      } finally {
        await reader.close();
      }
    }
  }
}

function checkOptions(options: NpyBatchesOptions): Required<NpyBatchesOptions> {
  const opts = is.options('options', options);
  is.knownKeys('npyBatches', opts, ['batchSize', 'shuffle', 'seed', 'bufferRows', 'epochs', 'normalize']);
  const batchSize = opts.batchSize === undefined ? 1024 : is.integer('options.batchSize', opts.batchSize, 1);
  const o: Required<NpyBatchesOptions> = {
    batchSize,
    shuffle: opts.shuffle === undefined ? true : is.boolean('options.shuffle', opts.shuffle),
    seed: opts.seed === undefined ? 0 : is.integer('options.seed', opts.seed, 0),
    bufferRows: opts.bufferRows === undefined ? Math.max(16 * batchSize, 65536) : is.integer('options.bufferRows', opts.bufferRows, 1),
    epochs: opts.epochs === undefined ? 1 : opts.epochs === Infinity ? Infinity : is.integer('options.epochs', opts.epochs, 1),
    normalize: opts.normalize === undefined ? 'none' : is.oneOf('options.normalize', opts.normalize, ['none', 'expected-norm'] as const),
  };
  if (o.bufferRows < o.batchSize) {
    throw new RangeError(`Expected options.bufferRows (${o.bufferRows}) to be at least options.batchSize (${o.batchSize})`);
  }
  return o;
}

async function readHeaders(paths: readonly string[]): Promise<Source[]> {
  const sources = await Promise.all(paths.map(readHeader));
  const cols = sources[0].header.shape[1];
  for (const s of sources) {
    if (s.header.shape[1] !== cols) {
      throw new RangeError(`Expected every file to have ${cols} columns (as ${sources[0].path}) but ${s.path} has ${s.header.shape[1]}`);
    }
  }
  return sources;
}

function expectedNormScale(buffer: Float32Array, rows: number, cols: number): number {
  let squared = 0;
  for (let i = 0; i < rows * cols; i++) squared += buffer[i] * buffer[i];
  const mean = squared / rows;
  return mean > 0 ? Math.sqrt(cols / mean) : 1;
}

/** Batches from .npy files, read lazily: see NpyBatches. */
export function npyBatches(paths: string | readonly string[], options?: NpyBatchesOptions): NpyBatches {
  return new NpyBatches(paths, options);
}
