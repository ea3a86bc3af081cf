import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { encodeNpy, float16ToFloat32, loadNpy, npyToMatrix, parseNpy, readNpy, saveNpy, writeNpy } from '../lib/npy.js';

const data = resolve(import.meta.dirname, '..', '..', 'shared', 'data');
const work = mkdtempSync(join(tmpdir(), 'saekit-npy-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('.npy files', () => {
  it('reads the shared real data with the shapes and ranges its README gives', async () => {
    const china = await readNpy(join(data, 'china_gray.npy'));
    expect(china.dtype).toBe('float32');
    expect(china.shape).toEqual([427, 640]);
    const values = china.data as Float32Array;
    expect(values.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(values.some((v) => v > 0.5)).toBe(true);
    const digits = await readNpy(join(data, 'digits_8x8.npy'));
    expect(digits.shape).toEqual([1797, 64]);
    const labels = await readNpy(join(data, 'digits_labels.npy'));
    expect(labels.dtype).toBe('int32');
    expect(new Set(labels.data as Int32Array)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const m = npyToMatrix(digits);
    expect([m.rows, m.cols, m.data.length]).toEqual([1797, 64, 1797 * 64]);
  });

  it('round-trips what it writes, for several dtypes and shapes', async () => {
    const cases = [
      { values: new Float32Array([1.5, -2, 3.25, 4, 5, 6]), shape: [2, 3] },
      { values: new Float64Array([1e-300, 2, 3]), shape: [3] },
      { values: new Int32Array([7, -8]), shape: [1, 2] },
      { values: new Uint8Array([]), shape: [0, 4] },
    ];
    for (const c of cases) {
      const path = join(work, 'a.npy');
      await writeNpy(path, c.values, c.shape);
      const back = await readNpy(path);
      expect(back.shape).toEqual(c.shape);
      expect(Array.from(back.data as ArrayLike<number>)).toEqual(Array.from(c.values));
      expect((readFileSync(path).indexOf(0x0a) + 1) % 64).toBe(0); // data aligned to 64 bytes
    }
  });

  it('reads version 2.0 and float16, refuses Fortran order', () => {
    const header = (h: string, version = 1) => {
      const text = h.padEnd(version === 1 ? 117 : 115, ' ') + '\n';
      const prefix = version === 1 ? [0x93, 78, 85, 77, 80, 89, 1, 0, text.length & 255, text.length >> 8] : [0x93, 78, 85, 77, 80, 89, 2, 0, text.length & 255, text.length >> 8, 0, 0];
      return [...prefix, ...Array.from(text, (c) => c.charCodeAt(0))];
    };
    const fortran = new Uint8Array([...header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"), ...new Uint8Array(new Float32Array([1, 4, 2, 5, 3, 6]).buffer)]);
    expect(() => parseNpy(fortran, 'f.npy')).toThrow(
      'f.npy is not a readable .npy file: Fortran-ordered (column-major) arrays are not supported; save it with np.ascontiguousarray',
    );
    const v2 = new Uint8Array([...header("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 2), ...new Uint8Array(new Int32Array([9, 10]).buffer)]);
    expect(Array.from(parseNpy(v2).data as Int32Array)).toEqual([9, 10]);
    const half = new Uint8Array([...header("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"), ...new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer)]);
    const values = parseNpy(half).data as Float32Array;
    expect(values[0]).toBe(1);
    expect(values[1]).toBe(-2);
    expect(values[2]).toBeCloseTo(1 / 3, 3);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
  });

  it('loadNpy and saveNpy: float 2-D matrices, converted to float32', async () => {
    const path = join(work, 'm.npy');
    const m = { rows: 2, cols: 3, data: new Float32Array([1, 2, 3, 4, 5, 6.5]) };
    await saveNpy(path, m);
    expect(await loadNpy(path)).toEqual(m);
    await writeNpy(path, new Float64Array([0.5, 1.5]), [1, 2]);
    expect(await loadNpy(path)).toEqual({ rows: 1, cols: 2, data: new Float32Array([0.5, 1.5]) });
    await writeNpy(path, new Int32Array([1, 2]), [1, 2]);
    await expect(loadNpy(path)).rejects.toThrow(`${path} is not a readable .npy file: dtype int32 is not a float dtype (float32, float16 and float64 are)`);
    await writeNpy(path, new Float32Array([1, 2]), [2]);
    await expect(loadNpy(path)).rejects.toThrow(`${path} is not a readable .npy file: expected a 2-D array (rows, features) but its shape is (2)`);
    await expect(saveNpy(path, { rows: 2, cols: 2, data: new Float32Array(3) })).rejects.toThrow(
      new RangeError('Expected matrix.data.length to equal matrix.rows * matrix.cols = 4 but received 3'),
    );
  });

  it('says what is wrong with a bad file, naming it', async () => {
    const good = encodeNpy(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const truncated = join(work, 'truncated.npy');
    writeFileSync(truncated, good.subarray(0, good.length - 3));
    await expect(readNpy(truncated)).rejects.toThrow(
      `${truncated} is not a readable .npy file: shape (2, 2) of float32 needs 16 bytes of data but the file has 13`,
    );
    expect(() => parseNpy(new Uint8Array([1, 2, 3]), 'x.npy')).toThrow('x.npy is not a readable .npy file: missing the \\x93NUMPY magic string');
    const bigEndian = encodeNpy(new Float32Array([1]), [1]);
    bigEndian.set(Array.from('>f4', (c) => c.charCodeAt(0)), bigEndian.indexOf(0x3c)); // '<'
    expect(() => parseNpy(bigEndian, 'b.npy')).toThrow("b.npy is not a readable .npy file: dtype '>f4' is not supported");
    expect(() => npyToMatrix({ dtype: 'float32', shape: [2, 2, 2], data: new Float32Array(8) }, 'c.npy')).toThrow(
      new RangeError('Expected a 1-D or 2-D array in c.npy but its shape is (2, 2, 2)'),
    );
  });
});
