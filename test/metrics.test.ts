// Recovery and reconstruction metrics: hand-made cases with known answers, the cosine matrix
// against a float64 reference, the Hungarian matching against brute force, dense and sparse
// codes alike, and exact validation messages.
import { describe, expect, it } from 'vitest';

import { metrics, SparseAutoencoder, type Matrix, type SparseMatrix } from '../lib/index.js';
import { maxWeightMatching } from '../lib/assignment.js';
import { Random } from '../lib/random.js';
import { randomMatrix } from './fixtures.js';

function rows(values: number[][]): Matrix {
  return { rows: values.length, cols: values[0].length, data: Float32Array.from(values.flat()) };
}

const s = Math.SQRT1_2;
// Three true features in 4 dimensions, and learned directions that find the first, find the
// second negated, half-find the third, and repeat the first (scaled: only direction matters).
const truth = rows([
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
]);
const learned = rows([
  [1, 0, 0, 0],
  [0, -1, 0, 0],
  [0, 0, 1, 1],
  [2, 0, 0, 0],
]);

describe('cosineSimilarity', () => {
  it('matches a float64 reference, with zero rows at 0 and parallel rows at exactly 1', () => {
    const a = randomMatrix(37, 19, 1);
    const b = randomMatrix(53, 19, 2, 3);
    a.data.fill(0, 5 * 19, 6 * 19); // row 5 is zero
    b.data.set(a.data.subarray(0, 19).map((v) => -4 * v), 7 * 19); // b_7 = -4 a_0
    const c = metrics.cosineSimilarity(a, b);
    expect([c.rows, c.cols]).toEqual([37, 53]);
    let worst = 0;
    for (let i = 0; i < 37; i++) {
      for (let j = 0; j < 53; j++) {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let k = 0; k < 19; k++) {
          dot += a.data[i * 19 + k] * b.data[j * 19 + k];
          na += a.data[i * 19 + k] ** 2;
          nb += b.data[j * 19 + k] ** 2;
        }
        const expected = na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
        worst = Math.max(worst, Math.abs(c.data[i * 53 + j] - expected));
      }
    }
    expect(worst).toBeLessThan(2e-6);
    expect(c.data.subarray(5 * 53, 6 * 53).every((v) => v === 0)).toBe(true);
    expect(c.data[7]).toBeCloseTo(-1, 6);
    const self = metrics.cosineSimilarity(b, b);
    for (let j = 0; j < 53; j++) expect(Math.abs(self.data[j * 53 + j])).toBeLessThanOrEqual(1);
  });
});

describe('mmcs', () => {
  it('averages each true feature’s best signed cosine by default', () => {
    // t1: 1 (learned 1 and 4); t2: 0 (only its negation was learned); t3: 1/sqrt(2).
    expect(metrics.mmcs(learned, truth)).toBeCloseTo((1 + 0 + s) / 3, 6);
  });

  it('counts negated directions with absolute: true', () => {
    expect(metrics.mmcs(learned, truth, { absolute: true })).toBeCloseTo((1 + 1 + s) / 3, 6);
  });

  it("averages over the learned directions with direction: 'learned'", () => {
    // l1: 1; l2: 0 (signed) or 1 (absolute); l3: 1/sqrt(2); l4: 1.
    expect(metrics.mmcs(learned, truth, { direction: 'learned' })).toBeCloseTo((1 + 0 + s + 1) / 4, 6);
    expect(metrics.mmcs(learned, truth, { direction: 'learned', absolute: true })).toBeCloseTo((1 + 1 + s + 1) / 4, 6);
    expect(metrics.mmcs(learned, truth, { direction: 'truth' })).toBeCloseTo((1 + 0 + s) / 3, 6);
  });

  it('is 1 for a permuted, rescaled copy of the truth and far from 1 for random directions', () => {
    const t = randomMatrix(20, 16, 3);
    const copy = new Float32Array(t.data.length);
    for (let i = 0; i < 20; i++) copy.set(t.data.subarray(((i * 7) % 20) * 16, ((i * 7) % 20) * 16 + 16).map((v) => 3 * v), i * 16);
    expect(metrics.mmcs({ rows: 20, cols: 16, data: copy }, t)).toBeCloseTo(1, 6);
    expect(metrics.mmcs(randomMatrix(20, 16, 4), t)).toBeLessThan(0.75);
  });
});

describe('mcc', () => {
  it('pairs directions one to one and averages |cos| over the pairs', () => {
    // Best matching: t1-l1 (or l4), t2-l2 (|cos| 1), t3-l3.
    expect(metrics.mcc(learned, truth)).toBeCloseTo((1 + 1 + s) / 3, 6);
  });

  it('does not let one learned direction stand for two true features, unlike mmcs', () => {
    const t = rows([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const l = rows([
      [1, 1, 0],
      [0, 0, 1],
    ]);
    expect(metrics.mmcs(l, t)).toBeCloseTo(s, 6);
    expect(metrics.mcc(l, t)).toBeCloseTo((s + 0) / 2, 6);
  });

  it('averages over min(learned, true) pairs when there are fewer learned directions', () => {
    const l = rows([[0, 0, 2, 0]]);
    expect(metrics.mcc(l, truth)).toBeCloseTo(1, 6);
    expect(metrics.mmcs(l, truth)).toBeCloseTo(1 / 3, 6);
  });

  it('equals the brute-force best matching of |cos| on random directions', () => {
    for (let trial = 0; trial < 20; trial++) {
      const t = randomMatrix(1 + (trial % 5), 6, 100 + trial);
      const l = randomMatrix(1 + ((trial * 3) % 6), 6, 200 + trial);
      const c = metrics.cosineSimilarity(t, l);
      const weights = Float64Array.from(c.data, Math.abs);
      const best = bruteForceBest(weights, t.rows, l.rows);
      expect(metrics.mcc(l, t)).toBeCloseTo(best / Math.min(t.rows, l.rows), 6);
    }
  });
});

describe('recoveredFraction', () => {
  it('counts true features whose best cosine reaches the threshold', () => {
    expect(metrics.recoveredFraction(learned, truth)).toBeCloseTo(1 / 3, 12);
    expect(metrics.recoveredFraction(learned, truth, 0.9, { absolute: true })).toBeCloseTo(2 / 3, 12);
    expect(metrics.recoveredFraction(learned, truth, 0.7)).toBeCloseTo(2 / 3, 12);
    expect(metrics.recoveredFraction(learned, truth, 0.7, { absolute: true })).toBe(1);
    expect(metrics.recoveredFraction(learned, truth, -1)).toBe(1);
  });
});

/** The best total weight of a one-to-one matching of min(rows, cols) pairs, by trying them all. */
function bruteForceBest(w: Float64Array, rows: number, cols: number): number {
  let best = -Infinity;
  const used = new Uint8Array(Math.max(rows, cols));
  const transposed = rows > cols;
  const [small, large] = transposed ? [cols, rows] : [rows, cols];
  const weight = (i: number, j: number) => (transposed ? w[j * cols + i] : w[i * cols + j]);
  const search = (i: number, total: number): void => {
    if (i === small) {
      best = Math.max(best, total);
      return;
    }
    for (let j = 0; j < large; j++) {
      if (used[j]) continue;
      used[j] = 1;
      search(i + 1, total + weight(i, j));
      used[j] = 0;
    }
  };
  search(0, 0);
  return best;
}

describe('maxWeightMatching (the Hungarian algorithm)', () => {
  function checkMatching(w: Float64Array, r: number, c: number): number {
    const match = maxWeightMatching(w, r, c);
    expect(match).toHaveLength(r);
    const seen = new Set<number>();
    let total = 0;
    let matched = 0;
    for (let i = 0; i < r; i++) {
      if (match[i] < 0) continue;
      expect(match[i]).toBeLessThan(c);
      expect(seen.has(match[i])).toBe(false);
      seen.add(match[i]);
      total += w[i * c + match[i]];
      matched++;
    }
    expect(matched).toBe(Math.min(r, c));
    return total;
  }

  it('finds the best total on random rectangular matrices, both ways round, with ties and negative weights', () => {
    const random = new Random(42);
    for (let trial = 0; trial < 300; trial++) {
      const r = 1 + random.below(6);
      const c = 1 + random.below(6);
      const ties = trial % 3 === 0;
      const w = new Float64Array(r * c);
      for (let i = 0; i < w.length; i++) w[i] = ties ? random.below(3) : random.uniform() * 2 - 1;
      expect(checkMatching(w, r, c)).toBeCloseTo(bruteForceBest(w, r, c), 10);
    }
  });

  it('recovers a planted permutation in a larger matrix', () => {
    const random = new Random(7);
    const r = 150;
    const c = 230;
    const planted = new Int32Array(c);
    for (let j = 0; j < c; j++) planted[j] = j;
    random.shuffle(planted);
    const w = new Float64Array(r * c);
    for (let i = 0; i < w.length; i++) w[i] = 0.5 * random.uniform();
    for (let i = 0; i < r; i++) w[i * c + planted[i]] = 1;
    expect(Array.from(maxWeightMatching(w, r, c))).toEqual(Array.from(planted.subarray(0, r)));
    const transposed = new Float64Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) transposed[j * r + i] = w[i * c + j];
    const back = maxWeightMatching(transposed, c, r);
    for (let i = 0; i < r; i++) expect(back[planted[i]]).toBe(i);
  });

  it('refuses non-finite weights instead of searching forever', () => {
    expect(() => maxWeightMatching(new Float64Array([NaN, NaN]), 1, 2)).toThrow(
      new RangeError('Expected finite weights for maxWeightMatching'),
    );
  });
});

describe('fvu and mse', () => {
  const x = rows([
    [1, 2],
    [3, 4],
  ]);

  it('are 0 for a perfect reconstruction and FVU is 1 for the mean row', () => {
    expect(metrics.fvu(x, x)).toBe(0);
    expect(metrics.mse(x, x)).toBe(0);
    expect(metrics.fvu(x, rows([[2, 3], [2, 3]]))).toBe(1);
  });

  it('divide the squared error by the variance around the mean row, or by the element count', () => {
    const xhat = rows([
      [1, 2],
      [3, 5],
    ]);
    // error 1; variance around the mean row (2, 3) is 1 + 1 + 1 + 1 = 4.
    expect(metrics.fvu(x, xhat)).toBe(0.25);
    expect(metrics.mse(x, xhat)).toBe(0.25);
    const y = randomMatrix(50, 7, 5);
    const yhat = randomMatrix(50, 7, 6, 0.1);
    let error = 0;
    for (let i = 0; i < y.data.length; i++) error += (y.data[i] - yhat.data[i]) ** 2;
    expect(metrics.mse(y, yhat)).toBeCloseTo(error / 350, 12);
  });
});

describe('l0, featureDensity and deadFraction', () => {
  const dense = rows([
    [0, 1.5, 0],
    [0, -2, 3],
  ]);
  // The same codes as CSR, with an explicitly stored zero that must not count.
  const sparse: SparseMatrix = {
    rows: 2,
    cols: 3,
    indptr: new Int32Array([0, 2, 4]),
    indices: new Int32Array([0, 1, 1, 2]),
    values: new Float32Array([0, 1.5, -2, 3]),
  };

  it.each([
    ['dense', dense],
    ['sparse', sparse],
  ] as const)('count non-zero codes (%s)', (_, codes) => {
    expect(metrics.l0(codes)).toBe(1.5);
    expect(Array.from(metrics.featureDensity(codes))).toEqual([0, 1, 0.5]);
    expect(metrics.deadFraction(codes)).toBeCloseTo(1 / 3, 12);
  });

  it('agree between the dense and sparse codes of a sparse autoencoder', async () => {
    const sae = new SparseAutoencoder({ dIn: 12, dHidden: 40, l1Coeff: 0.1, seed: 3 });
    const x = randomMatrix(64, 12, 8);
    const d = await sae.encode(x);
    const c = await sae.encode(x, { format: 'sparse' });
    sae.dispose();
    expect(metrics.l0(c)).toBe(metrics.l0(d));
    expect(metrics.featureDensity(c)).toEqual(metrics.featureDensity(d));
    expect(metrics.deadFraction(c)).toBe(metrics.deadFraction(d));
    expect(metrics.l0(d)).toBeGreaterThan(0);
  });
});

describe('validation', () => {
  const a = rows([[1, 2, 3]]);
  it('checks directions and options', () => {
    expect(() => metrics.mmcs(a, rows([[1, 2, 3, 4]]))).toThrow(
      new RangeError('Expected truth.cols to equal learned.cols (3) but received 4 of type number'),
    );
    expect(() => metrics.mcc(null as never, a)).toThrow(new TypeError('Expected Matrix { rows, cols, data } for learned but received null'));
    expect(() => metrics.mmcs(a, a, { direction: 'true' } as never)).toThrow(
      new RangeError("Expected one of 'truth', 'learned' for options.direction but received \"true\" of type string"),
    );
    expect(() => metrics.mmcs(a, a, { absolute: 1 } as never)).toThrow(new TypeError('Expected boolean for options.absolute but received 1 of type number'));
    expect(() => metrics.mmcs(a, a, { absolut: true } as never)).toThrow(
      new TypeError("Unknown option 'absolut' for mmcs; did you mean 'absolute'?"),
    );
    expect(() => metrics.recoveredFraction(a, a, 2)).toThrow(new RangeError('Expected number in [-1, 1] for threshold but received 2 of type number'));
    expect(() => metrics.cosineSimilarity(a, { rows: 0, cols: 3, data: new Float32Array(0) })).toThrow(
      new RangeError('Expected positive integer for b.rows but received 0 of type number'),
    );
    expect(() => metrics.mmcs(rows([[1, NaN, 3]]), a)).toThrow(
      new RangeError('Expected finite values in learned.data but found NaN at index 1 (row 0, column 1)'),
    );
  });

  it('checks reconstructions', () => {
    const x = rows([
      [1, 2],
      [3, 4],
    ]);
    expect(() => metrics.fvu(x, rows([[1, 2]]))).toThrow(new RangeError('Expected xhat.rows to equal x.rows (2) but received 1 of type number'));
    expect(() => metrics.mse(x, rows([[1, 2, 3], [4, 5, 6]]))).toThrow(
      new RangeError('Expected xhat.cols to equal x.cols (2) but received 3 of type number'),
    );
    expect(() => metrics.fvu(rows([[1, 2], [1, 2]]), x)).toThrow(
      new RangeError('Expected x with non-zero variance around its mean row (the denominator of fvu) but all rows of x are equal'),
    );
    expect(() => metrics.mse(x, rows([[1, 2], [3, Infinity]]))).toThrow(
      new RangeError('Expected finite values in xhat.data but found Infinity at index 3 (row 1, column 1)'),
    );
  });

  it('checks codes, dense and CSR', () => {
    const csr = (fields: Partial<SparseMatrix>): SparseMatrix => ({
      rows: 2,
      cols: 3,
      indptr: new Int32Array([0, 1, 2]),
      indices: new Int32Array([0, 2]),
      values: new Float32Array([1, 1]),
      ...fields,
    });
    expect(() => metrics.l0({ rows: 0, cols: 3, data: new Float32Array(0) })).toThrow(
      new RangeError('Expected positive integer for codes.rows but received 0 of type number'),
    );
    expect(() => metrics.l0(csr({ rows: 0, indptr: new Int32Array([0]) }))).toThrow(
      new RangeError('Expected positive integer for codes.rows but received 0 of type number'),
    );
    expect(() => metrics.deadFraction({ rows: 2, cols: 0, data: new Float32Array(0) })).toThrow(
      new RangeError('Expected positive integer for codes.cols but received 0 of type number'),
    );
    expect(() => metrics.l0(csr({ indptr: new Int32Array([0, 2, 1]) }))).toThrow(
      new RangeError('Expected codes.indptr to be non-decreasing but indptr[2] = 1 is less than indptr[1] = 2'),
    );
    expect(() => metrics.featureDensity(csr({ indices: new Int32Array([0, 3]) }))).toThrow(
      new RangeError('Expected codes.indices to be in [0, 3) but indices[1] is 3'),
    );
    expect(() => metrics.l0(csr({ indptr: new Int32Array([0, 2, 2]), indices: new Int32Array([2, 1]) }))).toThrow(
      new RangeError('Expected codes.indices to increase within each row but row 0 has 1 after 2'),
    );
    expect(() => metrics.l0(csr({ indptr: new Int32Array([0, 1, 3]) }))).toThrow(
      new RangeError('Expected codes.indptr[rows] = 3 to be at most the length of codes.indices and codes.values (2)'),
    );
    expect(() => metrics.l0(csr({ values: new Float32Array([1, NaN]) }))).toThrow(
      new RangeError('Expected finite values in codes.values but found NaN at index 1'),
    );
    expect(() => metrics.l0(csr({ indptr: [0, 1, 2] as never }))).toThrow(
      new TypeError('Expected Int32Array for codes.indptr but received an Array of length 3'),
    );
  });
});
