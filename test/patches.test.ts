// Patch extraction, whitening and the filter measures, on inputs whose answers are known; the
// symmetric eigensolver they rest on; argument checks.
import { describe, expect, it } from 'vitest';

import { symmetricEigen } from '../lib/linalg.js';
import type { Matrix } from '../lib/matrix.js';
import {
  applyWhitening,
  averagePool2x2,
  extractPatches,
  filterLocality,
  filterOrientation,
  naturalImagePatches,
  removePatchMean,
  responseKurtosis,
  zcaWhiten,
} from '../lib/patches.js';
import { addon } from '../lib/native.js';
import { Random } from '../lib/random.js';
import { randomMatrix, relativeError } from './fixtures.js';

/** Pixel (r, c) = 1000 r + c: every patch says where it came from. */
function ramp(rows: number, cols: number, offset = 0): Matrix {
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, (_, i) => offset + 1000 * Math.floor(i / cols) + (i % cols)) };
}

/** x^T x / rows in float64. */
function secondMoments(x: Matrix): Float64Array {
  const d = x.cols;
  const out = new Float64Array(d * d);
  for (let r = 0; r < x.rows; r++) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i * d + j] += (x.data[r * d + i] * x.data[r * d + j]) / x.rows;
  return out;
}

describe('native matmul (the product under whitening)', () => {
  it.each([
    { m: 1, k: 1, n: 1 },
    { m: 7, k: 300, n: 13 },
    { m: 100, k: 700, n: 33 },
    { m: 50, k: 20, n: 144 },
  ])('op(a) b matches a plain float64 product for m $m, k $k, n $n, both layouts of a, 1 or 3 threads', async ({ m, k, n }) => {
    const a = randomMatrix(m, k, 1).data;
    const b = randomMatrix(k, n, 2).data;
    const expected = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let q = 0; q < k; q++) for (let j = 0; j < n; j++) expected[i * n + j] += a[i * k + q] * b[q * n + j];
    const aTransposed = new Float32Array(k * m);
    for (let i = 0; i < m; i++) for (let q = 0; q < k; q++) aTransposed[q * m + i] = a[i * k + q];
    const results: Float32Array[] = [];
    for (const [input, transposed] of [[a, false], [aTransposed, true]] as const) {
      for (const threads of [1, 3]) {
        const out = new Float32Array(m * n);
        await addon.matmul(input, transposed, b, m, k, n, out, threads);
        expect(relativeError(out, expected)).toBeLessThan(1e-5);
        results.push(out);
      }
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[3]).toEqual(results[2]);
  });

  it('re-checks its arguments natively', async () => {
    expect(() => addon.matmul(new Float32Array(3), false, new Float32Array(4), 2, 2, 2, new Float32Array(4), 1)).toThrow(
      new RangeError('Expected at least 4 elements in a but received 3'),
    );
    expect(() => addon.matmul(new Float32Array(4), 'no' as never, new Float32Array(4), 2, 2, 2, new Float32Array(4), 1)).toThrow(
      new TypeError('Expected boolean for transposeA'),
    );
  });
});

describe('symmetricEigen', () => {
  it('recovers a known spectrum: A v = lambda v, orthonormal vectors, largest first', () => {
    const n = 30;
    const random = new Random(3);
    // A = Q diag(values) Q^T with Q from Gram-Schmidt.
    const q = Float64Array.from({ length: n * n }, () => random.normal());
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) {
        let d = 0;
        for (let k = 0; k < n; k++) d += q[i * n + k] * q[j * n + k];
        for (let k = 0; k < n; k++) q[i * n + k] -= d * q[j * n + k];
      }
      let norm = 0;
      for (let k = 0; k < n; k++) norm += q[i * n + k] ** 2;
      for (let k = 0; k < n; k++) q[i * n + k] /= Math.sqrt(norm);
    }
    const known = Float64Array.from({ length: n }, (_, i) => (i === 5 ? 0 : 10 ** (2 - i / 6)));
    const a = new Float64Array(n * n);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) for (let k = 0; k < n; k++) a[r * n + c] += q[k * n + r] * known[k] * q[k * n + c];
    const { values, vectors } = symmetricEigen(a, n);
    const sorted = Array.from(known).sort((x, y) => y - x);
    for (let j = 0; j < n; j++) expect(values[j]).toBeCloseTo(sorted[j], 10);
    for (let j = 0; j < n; j++) {
      for (let r = 0; r < n; r++) {
        let av = 0;
        for (let c = 0; c < n; c++) av += a[r * n + c] * vectors[j * n + c];
        expect(av).toBeCloseTo(values[j] * vectors[j * n + r], 9);
      }
      for (let k = 0; k < n; k++) {
        let dot = 0;
        for (let c = 0; c < n; c++) dot += vectors[j * n + c] * vectors[k * n + c];
        expect(dot).toBeCloseTo(j === k ? 1 : 0, 12);
      }
    }
  });

  it('solves a 2 x 2 case by hand and reads only the upper triangle', () => {
    // [[2, 1], [1, 2]]: eigenvalues 3 and 1, vectors (1, 1) / sqrt 2 and (1, -1) / sqrt 2.
    const { values, vectors } = symmetricEigen([2, 1, 999, 2], 2);
    expect(Array.from(values)).toEqual([expect.closeTo(3, 14), expect.closeTo(1, 14)]);
    expect(Math.abs(vectors[0] + vectors[1])).toBeCloseTo(Math.SQRT2, 14);
    expect(Math.abs(vectors[2] - vectors[3])).toBeCloseTo(Math.SQRT2, 14);
  });
});

describe('patches', () => {
  it('averagePool2x2 averages 2 x 2 blocks and drops an odd last row and column', () => {
    const image = { rows: 3, cols: 5, data: Float32Array.from({ length: 15 }, (_, i) => i) };
    expect(averagePool2x2(image)).toEqual({ rows: 1, cols: 2, data: Float32Array.from([3, 5]) });
  });

  it('extractPatches cuts real windows at distinct positions across all images, reproducibly', () => {
    const images = [ramp(20, 30), ramp(15, 15, 1e6)];
    const patches = extractPatches(images, 5, 250, 11);
    expect(patches.rows).toBe(250);
    expect(patches.cols).toBe(25);
    const seen = new Set<number>();
    const fromImage = [0, 0];
    for (let p = 0; p < 250; p++) {
      const topLeft = patches.data[p * 25];
      const which = topLeft >= 1e6 ? 1 : 0;
      fromImage[which]++;
      const local = topLeft - which * 1e6;
      const [top, left] = [Math.floor(local / 1000), local % 1000];
      expect(top + 5).toBeLessThanOrEqual(images[which].rows);
      expect(left + 5).toBeLessThanOrEqual(images[which].cols);
      for (let r = 0; r < 5; r++) for (let c = 0; c < 5; c++) expect(patches.data[p * 25 + r * 5 + c]).toBe(topLeft + 1000 * r + c);
      seen.add(topLeft);
    }
    expect(seen.size).toBe(250);
    // Positions are uniform over both images: 416 and 121 of them.
    expect(fromImage[1] / 250).toBeGreaterThan(0.12);
    expect(fromImage[1] / 250).toBeLessThan(0.33);
    expect(extractPatches(images, 5, 250, 11)).toEqual(patches);
    expect(extractPatches(images, 5, 250, 12)).not.toEqual(patches);
  });

  it('extractPatches can take every position exactly once', () => {
    const all = extractPatches(ramp(6, 7), 3, 20, 1);
    expect(new Set(Array.from({ length: 20 }, (_, p) => all.data[p * 9])).size).toBe(20);
  });

  it('removePatchMean leaves each row with mean zero', () => {
    const x = removePatchMean(randomMatrix(10, 7, 1, 3));
    for (let r = 0; r < 10; r++) expect(x.data.subarray(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 5);
  });

  it('zcaWhiten makes the second moments U diag(l / (l + eps)) U^T, with a symmetric whitening matrix', async () => {
    // Correlated rows: x = z L for random z and a random mixing L.
    const z = randomMatrix(4000, 6, 2);
    const mixing = randomMatrix(6, 6, 3);
    const x = new Float32Array(4000 * 6);
    for (let r = 0; r < 4000; r++) for (let j = 0; j < 6; j++) for (let i = 0; i < 6; i++) x[r * 6 + j] += z.data[r * 6 + i] * mixing.data[i * 6 + j];
    const input = { rows: 4000, cols: 6, data: x };
    const { values, vectors } = symmetricEigen(secondMoments(input), 6);
    const result = await zcaWhiten(input, { epsilon: 0.05 });
    expect(result.epsilon).toBeCloseTo((0.05 * values.reduce((a, b) => a + b, 0)) / 6, 4);
    for (let j = 0; j < 6; j++) expect(result.eigenvalues[j]).toBeCloseTo(values[j], 3);
    const moments = secondMoments(result.data);
    for (let i = 0; i < 6; i++) {
      for (let k = 0; k < 6; k++) {
        let expected = 0;
        for (let j = 0; j < 6; j++) expected += (vectors[j * 6 + i] * vectors[j * 6 + k] * values[j]) / (values[j] + result.epsilon);
        expect(moments[i * 6 + k]).toBeCloseTo(expected, 4);
        expect(result.whitening.data[i * 6 + k]).toBe(result.whitening.data[k * 6 + i]);
      }
    }
    // Held-out rows go through the same matrix.
    expect(await applyWhitening(input, result.whitening)).toEqual(result.data);
  });

  it('naturalImagePatches pools, cuts, centres and whitens, keeping held-out patches apart', async () => {
    const random = new Random(5);
    const image = { rows: 64, cols: 80, data: Float32Array.from({ length: 64 * 80 }, () => random.uniform()) };
    const { train, heldOut, whitening } = await naturalImagePatches([image], { size: 4, count: 300, heldOut: 100, seed: 2 });
    const raw = removePatchMean(extractPatches([averagePool2x2(image)], 4, 400, 2));
    const whitened = await zcaWhiten({ rows: 300, cols: 16, data: raw.data.subarray(0, 300 * 16) });
    expect(train).toEqual(whitened.data);
    expect(whitening).toEqual(whitened.whitening);
    expect(heldOut).toEqual(await applyWhitening({ rows: 100, cols: 16, data: raw.data.subarray(300 * 16) }, whitening));
  });
});

describe('filter measures', () => {
  it('filterLocality is 1 inside one window, 16/144 for a flat filter, about 0.2 for random ones', () => {
    const inWindow = new Float32Array(144);
    for (let r = 3; r < 7; r++) for (let c = 5; c < 9; c++) inWindow[r * 12 + c] = r - c;
    const flat = new Float32Array(144).fill(0.5);
    const [a, b] = filterLocality({ rows: 2, cols: 144, data: Float32Array.from([...inWindow, ...flat]) });
    expect(a).toBeCloseTo(1, 12);
    expect(b).toBeCloseTo(16 / 144, 12);
    const random = filterLocality(randomMatrix(200, 144, 4));
    const mean = random.reduce((x, y) => x + y, 0) / 200;
    expect(mean).toBeGreaterThan(0.17);
    expect(mean).toBeLessThan(0.23);
    expect(filterLocality({ rows: 1, cols: 9, data: Float32Array.from([1, 0, 0, 0, 0, 0, 0, 0, 2]) }, 2)[0]).toBeCloseTo(4 / 5, 12);
  });

  it('filterOrientation is 1 for a grating and near 0.1 for random filters', () => {
    const grating = Float32Array.from({ length: 144 }, (_, i) => Math.cos((2 * Math.PI * 2 * (Math.floor(i / 12) + (i % 12))) / 12));
    // An odd Gabor (a localised edge detector) at 0.5 rad, sigma 2 pixels, 0.2 cycles per pixel.
    const gabor = Float32Array.from({ length: 144 }, (_, i) => {
      const [y, x] = [Math.floor(i / 12) - 5.5, (i % 12) - 5.5];
      return Math.exp(-(x * x + y * y) / 8) * Math.sin(2 * Math.PI * 0.2 * (y * Math.cos(0.5) + x * Math.sin(0.5)));
    });
    const [g, e] = filterOrientation({ rows: 2, cols: 144, data: Float32Array.from([...grating, ...gabor]) });
    expect(g).toBeCloseTo(1, 10);
    expect(e).toBeGreaterThan(0.8);
    const random = filterOrientation(randomMatrix(200, 144, 5));
    const mean = random.reduce((x, y) => x + y, 0) / 200;
    expect(mean).toBeGreaterThan(0.05);
    expect(mean).toBeLessThan(0.15);
  });

  it('responseKurtosis is 3 for Gaussian responses and 6 for Laplace ones', async () => {
    const random = new Random(6);
    const rows = 100_000;
    const x = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      x[r * 2] = random.normal();
      // Laplace by inverse CDF.
      const u = random.uniform() - 0.5;
      x[r * 2 + 1] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
    }
    const [gaussian, laplace] = await responseKurtosis({ rows: 2, cols: 2, data: Float32Array.from([1, 0, 0, 1]) }, { rows, cols: 2, data: x });
    expect(gaussian).toBeCloseTo(3, 1);
    expect(laplace).toBeGreaterThan(5.6);
    expect(laplace).toBeLessThan(6.4);
  });
});

describe('argument checks', () => {
  const image = ramp(10, 10);
  it.each([
    ['Expected integer of at least 2 for image.rows but received 1 of type number', RangeError, () => averagePool2x2({ rows: 1, cols: 4, data: new Float32Array(4) })],
    ['Expected integer of at least 2 for image.cols but received 1 of type number', RangeError, () => averagePool2x2({ rows: 4, cols: 1, data: new Float32Array(4) })],
    ['Expected images[1] to be at least 12 x 12 pixels (the patch size) but it is 10 x 10', RangeError, () => extractPatches([ramp(20, 20), image], 12, 1)],
    ['Expected integer in [0, 36] (the number of distinct patch positions) for count but received 37 of type number', RangeError, () => extractPatches(image, 5, 37)],
    ['Expected positive integer for size but received 0 of type number', RangeError, () => extractPatches(image, 0, 1)],
    ['Expected at least one image for images but received an Array of length 0', RangeError, () => extractPatches([], 2, 1)],
    ['Expected Matrix { rows, cols, data } for images but received null', TypeError, () => extractPatches(null as never, 2, 1)],
    ['Expected filters.cols to be a square number of pixels but received 10', RangeError, () => filterLocality({ rows: 1, cols: 10, data: new Float32Array(10) })],
    ['Expected integer in [1, 3] for window but received 4 of type number', RangeError, () => filterLocality({ rows: 1, cols: 9, data: new Float32Array(9) }, 4)],
  ])('%s', (message, type, call) => {
    expect(call).toThrow(type);
    expect(call).toThrow(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  });

  it.each([
    ['Expected positive finite number for options.epsilon but received 0 of type number', RangeError, () => zcaWhiten(image, { epsilon: 0 })],
    ["Unknown option 'eps' for zcaWhiten", TypeError, () => zcaWhiten(image, { eps: 1 } as never)],
    ["Unknown option 'Count' for naturalImagePatches; did you mean 'count'?", TypeError, () => naturalImagePatches(image, { Count: 3 } as never)],
    ['Expected finite values in x.data but found NaN at index 3 (row 0, column 3)', RangeError, () => zcaWhiten({ rows: 1, cols: 4, data: Float32Array.from([0, 0, 0, NaN]) })],
    ['Expected whitening.cols to equal x.cols (10) but received 4 of type number', RangeError, () => applyWhitening(image, { rows: 4, cols: 4, data: new Float32Array(16) })],
    ['Expected x.cols to equal filters.cols (100) but received 10 of type number', RangeError, () => responseKurtosis(randomMatrix(2, 100, 1), { rows: 3, cols: 10, data: new Float32Array(30) })],
  ])('%s', async (message, type, call) => {
    const run = (async () => call())();
    await expect(run).rejects.toThrow(type);
    await expect(run).rejects.toThrow(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  });
});
