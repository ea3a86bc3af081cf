// Batches from .npy files larger than memory: every row once per pass, mixed, bounded memory.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { npyBatches, SparseAutoencoder } from '../lib/index.js';
import { encodeNpy, writeNpy } from '../lib/npy.js';

const work = mkdtempSync(join(tmpdir(), 'saekit-batches-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** rows x cols float32 whose first column is the row's global id. */
async function idFile(name: string, firstId: number, rows: number, cols: number, data: 'float32' | 'float64' | 'float16' = 'float32') {
  const path = join(work, name);
  const values = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    values[r * cols] = firstId + r;
    for (let c = 1; c < cols; c++) values[r * cols + c] = (c % 3) - 1;
  }
  if (data === 'float64') await writeNpy(path, values, [rows, cols]);
  else if (data === 'float32') await writeNpy(path, Float32Array.from(values), [rows, cols]);
  else {
    // float16 by hand: ids below 2048 and -1, 0, 1 are exact.
    const halves = Uint16Array.from(values, (v) => {
      if (v === 0) return 0;
      const a = Math.abs(v);
      const e = Math.floor(Math.log2(a));
      return (v < 0 ? 0x8000 : 0) | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
    });
    const bytes = encodeNpy(Float32Array.from(values), [rows, cols]);
    const header = Buffer.from(bytes.subarray(0, 128)).toString('latin1').replace("'<f4'", "'<f2'");
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.from(header, 'latin1'));
    writeSync(fd, new Uint8Array(halves.buffer));
    closeSync(fd);
  }
  return path;
}

async function collect(iterable: AsyncIterable<{ rows: number; cols: number; data: Float32Array }>) {
  const ids: number[] = [];
  const sizes: number[] = [];
  for await (const batch of iterable) {
    sizes.push(batch.rows);
    for (let r = 0; r < batch.rows; r++) ids.push(batch.data[r * batch.cols]);
  }
  return { ids, sizes };
}

describe('npyBatches', () => {
  it('yields every row of every file once per epoch, mixed across a buffer smaller than the data', async () => {
    const files = [await idFile('a.npy', 0, 1000, 5), await idFile('b.npy', 1000, 700, 5, 'float64'), await idFile('c.npy', 1700, 300, 5, 'float16')];
    const batches = npyBatches(files, { batchSize: 64, bufferRows: 256, seed: 3, epochs: 2 });
    expect(await batches.open()).toEqual({ rows: 2000, cols: 5 });
    const { ids, sizes } = await collect(batches);
    expect(ids).toHaveLength(4000);
    for (const epoch of [ids.slice(0, 2000), ids.slice(2000)]) {
      expect([...epoch].sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
      // Mixed: far from file order, yet local (a buffer of 256 cannot move a row arbitrarily early).
      const displaced = epoch.filter((id, position) => id !== position).length;
      expect(displaced).toBeGreaterThan(1900);
      expect(epoch.every((id, position) => id <= position + 256)).toBe(true);
    }
    expect(ids.slice(0, 2000)).not.toEqual(ids.slice(2000));
    expect(sizes.filter((s) => s !== 64).length).toBeLessThanOrEqual(2);
    // The same seed gives the same stream.
    expect((await collect(npyBatches(files, { batchSize: 64, bufferRows: 256, seed: 3, epochs: 2 }))).ids).toEqual(ids);
  });

  it('without shuffle keeps file order', async () => {
    const files = [await idFile('d.npy', 0, 50, 3), await idFile('e.npy', 50, 30, 3)];
    const { ids, sizes } = await collect(npyBatches(files, { batchSize: 32, shuffle: false, bufferRows: 40 }));
    expect(ids).toEqual(Array.from({ length: 80 }, (_, i) => i));
    expect(sizes).toEqual([32, 32, 16]);
  });

  it('handles a batch larger than the data, and a buffer as large as the data', async () => {
    const file = await idFile('small.npy', 0, 30, 2);
    expect((await collect(npyBatches(file, { batchSize: 100, shuffle: false }))).sizes).toEqual([30]);
    const exact = await collect(npyBatches(file, { batchSize: 10, bufferRows: 30, seed: 1 }));
    expect(exact.sizes).toEqual([10, 10, 10]);
    expect([...exact.ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it("normalize: 'expected-norm' scales rows to a mean squared norm of the column count", async () => {
    const path = join(work, 'scaled.npy');
    const rows = 4000;
    const cols = 16;
    const values = Float32Array.from({ length: rows * cols }, (_, i) => 3 * Math.sin(i * 0.7));
    await writeNpy(path, values, [rows, cols]);
    const batches = npyBatches(path, { batchSize: 500, normalize: 'expected-norm', bufferRows: 4000 });
    let squared = 0;
    for await (const b of batches) for (const v of b.data) squared += v * v;
    expect(squared / rows).toBeCloseTo(cols, 3);
    const raw = values.reduce((s, v) => s + v * v, 0) / rows;
    expect(batches.scale).toBeCloseTo(Math.sqrt(cols / raw), 5);
  });

  it('feeds fit directly', async () => {
    const path = await idFile('train.npy', 0, 600, 8);
    const sae = new SparseAutoencoder({ dIn: 8, dHidden: 16, l1Coeff: 0.01 });
    const records = await sae.fit(npyBatches(path, { batchSize: 100, epochs: 2 }), { steps: 50 });
    expect(records).toHaveLength(12);
    expect(sae.inputScale).toBe(1);
    // A normalising stream hands its factor to the model, which then scales raw inputs itself.
    const normalised = npyBatches(path, { batchSize: 100, normalize: 'expected-norm' });
    const scaledModel = new SparseAutoencoder({ dIn: 8, dHidden: 16, l1Coeff: 0.01 });
    await scaledModel.fit(normalised, { steps: 3 });
    expect(normalised.scale).not.toBe(1);
    expect(scaledModel.inputScale).toBe(normalised.scale);
    await expect(scaledModel.fit(normalised, { steps: 1 })).rejects.toThrow(RangeError);
    sae.dispose();
    scaledModel.dispose();
  });

  it('refuses mismatched, non-2-D, non-float and truncated files with errors naming them', async () => {
    const a = await idFile('m1.npy', 0, 10, 4);
    const b = await idFile('m2.npy', 0, 10, 5);
    await expect(npyBatches([a, b]).open()).rejects.toThrow(new RangeError(`Expected every file to have 4 columns (as ${a}) but ${b} has 5`));
    const flat = join(work, 'flat.npy');
    await writeNpy(flat, new Float32Array(3), [3]);
    await expect(collect(npyBatches(flat))).rejects.toThrow(`${flat} is not a readable .npy file: expected a 2-D array (rows, features) but its shape is (3)`);
    const ints = join(work, 'ints.npy');
    await writeNpy(ints, new Int32Array(4), [2, 2]);
    await expect(npyBatches(ints).open()).rejects.toThrow(`${ints} is not a readable .npy file: dtype int32 is not a float dtype`);
    const cut = join(work, 'cut.npy');
    const bytes = encodeNpy(new Float32Array(40), [10, 4]);
    const fd = openSync(cut, 'w');
    writeSync(fd, bytes.subarray(0, bytes.length - 8));
    closeSync(fd);
    await expect(npyBatches(cut).open()).rejects.toThrow(`${cut} is not a readable .npy file: shape (10, 4) of float32 needs 288 bytes but the file has 280 (truncated?)`);
    expect(() => npyBatches([])).toThrow(new TypeError('Expected a path or a non-empty array of paths for paths but received an Array of length 0'));
    expect(() => npyBatches(a, { batchSize: 100, bufferRows: 10 })).toThrow(new RangeError('Expected options.bufferRows (10) to be at least options.batchSize (100)'));
    expect(() => npyBatches(a, { shufle: true } as never)).toThrow(new TypeError("Unknown option 'shufle' for npyBatches; did you mean 'shuffle'?"));
  });

  // Sanitizers quarantine freed memory, so resident memory is no measure there.
  it.skipIf(process.env.SAEKIT_SANITIZED === '1')('reads a file of 160 MB through a 16 MB buffer with resident memory growing by far less than the file', async () => {
    const rows = 40_000;
    const cols = 1024;
    const path = join(work, 'big.npy');
    const header = encodeNpy(new Float32Array(0), [0, cols]).subarray(0, 128);
    const headerText = Buffer.from(header).toString('latin1').replace(`(0, ${cols})`, `(${rows}, ${cols})`);
    const fd = openSync(path, 'w');
    writeSync(fd, Buffer.from(headerText.padEnd(128 - 1, ' ').slice(0, 127) + '\n', 'latin1'));
    const chunk = new Float32Array(1000 * cols).fill(0.5);
    for (let r = 0; r < rows; r += 1000) writeSync(fd, new Uint8Array(chunk.buffer));
    closeSync(fd);

    // Resident memory after a collection: what the reader keeps alive, not garbage awaiting GC.
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'vitest runs with --expose-gc').toBeDefined();
    const resident = () => {
      gc!();
      return process.memoryUsage().rss;
    };
    const before = resident();
    let peak = before;
    let seen = 0;
    for await (const batch of npyBatches(path, { batchSize: 1024, bufferRows: 2048, seed: 1 })) {
      seen += batch.rows;
      if (seen % (8 * 1024) < 1024) peak = Math.max(peak, resident());
    }
    expect(seen).toBe(rows);
    // Live: two 8 MB buffers, an 8 MB read chunk and a 4 MB batch (~28 MB); the allocator keeps
    // some freed memory mapped, so allow 100 MB. Reading the file whole would add 160 MB.
    expect((peak - before) / 2 ** 20).toBeLessThan(100);
  });
});
