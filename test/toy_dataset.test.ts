// The toy setting: probabilities, the empirical statistics of the native sample stream
// (activity, decay, copula correlation, noise, magnitudes), determinism of the stream, and
// exact validation messages.
import { describe, expect, it } from 'vitest';

import { ToyDataset, type ToyDatasetOptions } from '../lib/index.js';
import { addon } from '../lib/native.js';
import { activationProbabilities } from '../lib/toy_dataset.js';

/** How often each feature is active, and the number active in each row. */
function activity(codes: { rows: number; cols: number; data: Float32Array }): { frequency: Float64Array; counts: Float64Array } {
  const frequency = new Float64Array(codes.cols);
  const counts = new Float64Array(codes.rows);
  for (let r = 0; r < codes.rows; r++) {
    for (let j = 0; j < codes.cols; j++) {
      if (codes.data[r * codes.cols + j] !== 0) {
        frequency[j]++;
        counts[r]++;
      }
    }
  }
  for (let j = 0; j < codes.cols; j++) frequency[j] /= codes.rows;
  return { frequency, counts };
}

function meanAndVariance(values: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i] - mean) ** 2;
  return { mean, variance: squares / (values.length - 1) };
}

/** Phi(x) to about 1e-14: Taylor series of erf near 0, Laplace's continued fraction in the tails. */
function normalCdf(x: number): number {
  if (x < -3 || x > 3) {
    const a = Math.abs(x);
    let fraction = a;
    for (let k = 80; k >= 1; k--) fraction = a + k / fraction;
    const tail = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI) / fraction;
    return x < 0 ? tail : 1 - tail;
  }
  const z = x / Math.SQRT2;
  let term = z;
  let sum = z;
  for (let n = 1; n < 200; n++) {
    term *= (-z * z) / n;
    sum += term / (2 * n + 1);
  }
  return 0.5 + sum / Math.sqrt(Math.PI);
}

function bitEqual(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

describe('activation probabilities', () => {
  it('are uniform, expectedActive / numFeatures, without decay', () => {
    const toy = new ToyDataset({ dim: 4, numFeatures: 8, expectedActive: 3 });
    expect(Array.from(toy.probabilities)).toEqual(new Array(8).fill(3 / 8));
  });

  it('fall by the factor decay from one feature to the next and sum to expectedActive', () => {
    const p = new ToyDataset({ dim: 4, numFeatures: 512, expectedActive: 5, decay: 0.99 }).probabilities;
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(5, 12);
    for (let i = 1; i < p.length; i++) expect(p[i] / p[i - 1]).toBeCloseTo(0.99, 12);
    // HoagyC/sparse_coding's p_i = 5/512 * 0.99^i would give about 0.97 active per sample.
    let reference = 0;
    for (let i = 0; i < 512; i++) reference += (5 / 512) * 0.99 ** i;
    expect(reference).toBeCloseTo(0.971, 3);
  });

  it('cap at 1 and spread the excess over the rest (water-filling), keeping the sum', () => {
    const p = activationProbabilities(10, 3, 0.5);
    expect(p[0]).toBe(1);
    expect(p[1]).toBe(1);
    expect(p[2]).toBeLessThan(1);
    // The uncapped rest share 3 - 2 = 1 in proportion to 0.5^i.
    const tail = (1 - 0.5 ** 8) / (1 - 0.5);
    expect(p[2]).toBeCloseTo(1 / tail, 14);
    for (let i = 3; i < 10; i++) expect(p[i] / p[i - 1]).toBeCloseTo(0.5, 12);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 13);
  });

  it('are all 1 when expectedActive = numFeatures and all 0 when it is 0', () => {
    expect(Array.from(activationProbabilities(5, 5, 0.3))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(activationProbabilities(5, 5, 1))).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(activationProbabilities(5, 0, 0.3))).toEqual([0, 0, 0, 0, 0]);
    const { x, codes } = new ToyDataset({ dim: 3, numFeatures: 5, expectedActive: 0 }).sample(10);
    expect(x.data.every((v) => v === 0) && codes.data.every((v) => v === 0)).toBe(true);
  });

  it('thresholds of the correlated mode are the normal quantiles of the probabilities', () => {
    // Reference values from scipy.special.ndtri.
    const q = addon.normalQuantile(new Float64Array([0.975, 1e-10, 0.3, 5 / 512, 1e-300, 0, 0.5, 1]));
    const expected = [1.959963984540054, -6.361340902404056, -0.5244005127080409, -2.3352330400688133, -37.0470962993612];
    expected.forEach((value, i) => expect(Math.abs(q[i] - value) / Math.abs(value)).toBeLessThan(1e-14));
    expect([q[5], q[6], q[7]]).toEqual([-Infinity, 0, Infinity]);
    const toy = new ToyDataset({ dim: 4, numFeatures: 6, expectedActive: 2, decay: 0.8, correlated: true });
    const thresholds = toy.correlation?.thresholds as Float64Array;
    for (let i = 0; i < 6; i++) expect(normalCdf(thresholds[i])).toBeCloseTo(toy.probabilities[i], 12);
  });
});

describe('the sample stream', () => {
  it('has features of unit norm, and codes that give x exactly without noise', () => {
    const toy = new ToyDataset({ dim: 16, numFeatures: 40, expectedActive: 4, seed: 2 });
    const { features } = toy;
    for (let f = 0; f < 40; f++) {
      let norm = 0;
      for (let i = 0; i < 16; i++) norm += features.data[f * 16 + i] ** 2;
      expect(norm).toBeCloseTo(1, 6);
    }
    const { x, codes } = toy.sample(50);
    for (let r = 0; r < 50; r++) {
      for (let i = 0; i < 16; i++) {
        let value = 0;
        for (let f = 0; f < 40; f++) value += codes.data[r * 40 + f] * features.data[f * 16 + i];
        expect(x.data[r * 16 + i]).toBeCloseTo(value, 5);
      }
    }
  });

  it('activates expectedActive features per sample on average, each at its own rate (independent, uniform)', () => {
    const samples = 20_000;
    const toy = new ToyDataset({ dim: 8, numFeatures: 64, expectedActive: 3, seed: 5 });
    const { frequency, counts } = activity(toy.sample(samples).codes);
    const p = 3 / 64;
    // The count is a sum of independent Bernoullis: its standard error is sqrt(sum p(1-p) / N).
    const standardError = Math.sqrt((64 * p * (1 - p)) / samples);
    expect(Math.abs(meanAndVariance(counts).mean - 3)).toBeLessThan(5 * standardError);
    // Per-feature rates: a chi-square statistic with 64 degrees of freedom (mean 64, sd 11.3).
    let chiSquare = 0;
    for (const f of frequency) chiSquare += (f - p) ** 2 / ((p * (1 - p)) / samples);
    expect(chiSquare).toBeLessThan(64 + 6 * Math.sqrt(2 * 64));
  });

  it('follows decay: feature rates fall by the factor decay, capped ones are always on, and the mean holds', () => {
    const samples = 20_000;
    const toy = new ToyDataset({ dim: 8, numFeatures: 40, expectedActive: 4, decay: 0.7, seed: 6 });
    const p = toy.probabilities;
    expect(p[0]).toBe(1); // sum 0.7^i over 40 features is 3.33 < 4: the first is capped
    const { frequency, counts } = activity(toy.sample(samples).codes);
    expect(frequency[0]).toBe(1);
    let variance = 0;
    let chiSquare = 0;
    let degrees = 0;
    for (let i = 0; i < 40; i++) {
      variance += p[i] * (1 - p[i]);
      if (p[i] > 0 && p[i] < 1) {
        chiSquare += (frequency[i] - p[i]) ** 2 / ((p[i] * (1 - p[i])) / samples);
        degrees++;
      }
    }
    expect(Math.abs(meanAndVariance(counts).mean - 4)).toBeLessThan(5 * Math.sqrt(variance / samples));
    expect(chiSquare).toBeLessThan(degrees + 6 * Math.sqrt(2 * degrees));
    // Ratios of neighbouring rates, with the delta-method standard error of a ratio of rates.
    for (let i = 2; i < 8; i++) {
      const ratio = frequency[i] / frequency[i - 1];
      const se = 0.7 * Math.sqrt((1 - p[i]) / (p[i] * samples) + (1 - p[i - 1]) / (p[i - 1] * samples));
      expect(Math.abs(ratio - 0.7)).toBeLessThan(5 * se);
      expect(frequency[i]).toBeLessThan(frequency[i - 1]);
    }
  });

  it('follows a slow decay too (long runs of similar rates, sampled by geometric jumps and thinning)', () => {
    const samples = 20_000;
    const n = 200;
    const toy = new ToyDataset({ dim: 4, numFeatures: n, expectedActive: 4, decay: 0.98, seed: 15 });
    const p = toy.probabilities;
    const { frequency, counts } = activity(toy.sample(samples).codes);
    let variance = 0;
    let chiSquare = 0;
    for (let i = 0; i < n; i++) {
      variance += p[i] * (1 - p[i]);
      chiSquare += (frequency[i] - p[i]) ** 2 / ((p[i] * (1 - p[i])) / samples);
    }
    expect(Math.abs(meanAndVariance(counts).mean - 4)).toBeLessThan(5 * Math.sqrt(variance / samples));
    expect(chiSquare).toBeLessThan(n + 6 * Math.sqrt(2 * n));
    // The first and last 50 features: their total rates fall by 0.98^150.
    const head = frequency.subarray(0, 50).reduce((a, b) => a + b, 0);
    const tail = frequency.subarray(150).reduce((a, b) => a + b, 0);
    expect(tail / head).toBeGreaterThan(0.98 ** 150 * 0.7);
    expect(tail / head).toBeLessThan(0.98 ** 150 * 1.3);
  });

  it('keeps every marginal rate under correlation (the Gaussian copula) and the mean count', () => {
    const samples = 50_000;
    const toy = new ToyDataset({ dim: 4, numFeatures: 30, expectedActive: 3, decay: 0.9, correlated: true, seed: 7 });
    const { frequency, counts } = activity(toy.sample(samples).codes);
    for (let i = 0; i < 30; i++) {
      const p = toy.probabilities[i];
      expect(Math.abs(frequency[i] - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / samples));
    }
    // Correlation changes the count's spread, not its mean: use its own standard error.
    const { mean, variance } = meanAndVariance(counts);
    expect(Math.abs(mean - 3)).toBeLessThan(5 * Math.sqrt(variance / samples));
  });

  it('keeps every marginal rate with loadings of different norms (the generator given them directly)', () => {
    const n = 16;
    const samples = 100_000;
    const probabilities = new Float64Array(n).map((_, i) => 0.05 + 0.01 * (i % 3));
    const loadings = new Float32Array(n).map((_, i) => (i % 2 === 0 ? 0.2 : -0.95) * (i % 4 < 2 ? 1 : -1));
    const spec = {
      dim: 2,
      numFeatures: n,
      features: new Float32Array(2 * n).fill(0.5),
      probabilities,
      rank: 1,
      loadings,
      thresholds: addon.normalQuantile(probabilities),
      noise: 0,
      magnitude: 'constant' as const,
      seed: 3,
      threads: 2,
    };
    const codes = new Float32Array(samples * n);
    addon.toySample(spec, 0, samples, new Float32Array(samples * 2), codes);
    const { frequency } = activity({ rows: samples, cols: n, data: codes });
    for (let i = 0; i < n; i++) {
      const p = probabilities[i];
      expect(Math.abs(frequency[i] - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / samples));
    }
  });

  it('draws the correlated latents per sample, not per batch: successive samples are independent', () => {
    const samples = 50_000;
    const toy = new ToyDataset({ dim: 4, numFeatures: 30, expectedActive: 3, correlated: { rank: 2, strength: 0.9 }, seed: 14 });
    const { counts } = activity(toy.sample(samples).codes);
    const { mean, variance } = meanAndVariance(counts);
    // Shared latents would make the counts of neighbouring rows move together.
    let lagged = 0;
    for (let r = 1; r < samples; r++) lagged += (counts[r] - mean) * (counts[r - 1] - mean);
    const autocorrelation = lagged / (samples - 1) / variance;
    expect(Math.abs(autocorrelation)).toBeLessThan(5 / Math.sqrt(samples));
    // The correlation does show within rows: the count varies far more than for independent features.
    expect(variance).toBeGreaterThan(2 * 3 * (1 - 3 / 30));
  });

  it('makes features co-fire as the latent correlation says (rank 1: exact bivariate probabilities)', () => {
    const samples = 200_000;
    const n = 12;
    const toy = new ToyDataset({ dim: 4, numFeatures: n, expectedActive: 1.5, correlated: { rank: 1, strength: 0.8 }, seed: 8 });
    const correlation = toy.correlation;
    if (correlation === null) throw new Error('expected a correlation structure');
    expect(correlation.rank).toBe(1);
    const a = correlation.loadings.data;
    const t = correlation.thresholds;
    const { codes } = toy.sample(samples);
    let positive = 0;
    let negative = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        expect(toy.latentCorrelation(i, j)).toBeCloseTo(a[i] * a[j], 12);
        expect(Math.abs(toy.latentCorrelation(i, j))).toBeCloseTo(0.8, 6);
        let both = 0;
        for (let r = 0; r < samples; r++) if (codes.data[r * n + i] !== 0 && codes.data[r * n + j] !== 0) both++;
        const observed = both / samples;
        // P(z_i < t_i, z_j < t_j) = integral of phi(e) Phi((t_i - a_i e) / s_i) Phi((t_j - a_j e) / s_j) de.
        const si = Math.sqrt(1 - a[i] * a[i]);
        const sj = Math.sqrt(1 - a[j] * a[j]);
        let expected = 0;
        const step = 0.002;
        for (let e = -9; e <= 9; e += step) {
          expected += (Math.exp(-0.5 * e * e) / Math.sqrt(2 * Math.PI)) * normalCdf((t[i] - a[i] * e) / si) * normalCdf((t[j] - a[j] * e) / sj) * step;
        }
        expect(Math.abs(observed - expected)).toBeLessThan(5 * Math.sqrt((expected * (1 - expected)) / samples));
        const independent = toy.probabilities[i] * toy.probabilities[j];
        if (a[i] * a[j] > 0) {
          positive++;
          expect(observed).toBeGreaterThan(2.5 * independent);
        } else {
          negative++;
          expect(observed).toBeLessThan(0.2 * independent);
        }
      }
    }
    expect(positive).toBeGreaterThan(0);
    expect(negative).toBeGreaterThan(0);
  });

  it('defaults to rank 4 and strength 0.5, and co-fires more for positively correlated pairs than negatively correlated ones', () => {
    const samples = 100_000;
    const n = 24;
    const toy = new ToyDataset({ dim: 4, numFeatures: n, expectedActive: 2, correlated: true, seed: 9 });
    const correlation = toy.correlation;
    if (correlation === null) throw new Error('expected a correlation structure');
    expect([correlation.rank, correlation.strength, correlation.loadings.rows, correlation.loadings.cols]).toEqual([4, 0.5, n, 4]);
    for (let i = 0; i < n; i++) {
      let norm2 = 0;
      for (let k = 0; k < 4; k++) norm2 += correlation.loadings.data[i * 4 + k] ** 2;
      expect(norm2).toBeCloseTo(0.5, 6);
    }
    const { codes } = toy.sample(samples);
    const p = 2 / n;
    const lifts: Array<{ rho: number; lift: number }> = [];
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let both = 0;
        for (let r = 0; r < samples; r++) if (codes.data[r * n + i] !== 0 && codes.data[r * n + j] !== 0) both++;
        lifts.push({ rho: toy.latentCorrelation(i, j), lift: both / samples / (p * p) });
      }
    }
    const strong = lifts.filter((l) => l.rho > 0.3);
    const opposed = lifts.filter((l) => l.rho < -0.3);
    expect(strong.length).toBeGreaterThan(5);
    expect(opposed.length).toBeGreaterThan(5);
    for (const l of strong) expect(l.lift).toBeGreaterThan(2);
    for (const l of opposed) expect(l.lift).toBeLessThan(0.5);
  });

  it('adds isotropic Gaussian noise of the given standard deviation to each coordinate', () => {
    const samples = 5000;
    const dim = 64;
    const toy = new ToyDataset({ dim, numFeatures: 32, expectedActive: 2, noise: 0.3, seed: 10 });
    const { x, codes } = toy.sample(samples);
    const residual = new Float64Array(samples * dim);
    for (let r = 0; r < samples; r++) {
      for (let i = 0; i < dim; i++) {
        let clean = 0;
        for (let f = 0; f < 32; f++) clean += codes.data[r * 32 + f] * toy.features.data[f * dim + i];
        residual[r * dim + i] = x.data[r * dim + i] - clean;
      }
    }
    const m = residual.length;
    const { mean, variance } = meanAndVariance(residual);
    expect(Math.abs(mean)).toBeLessThan((5 * 0.3) / Math.sqrt(m));
    // The sample variance of m normals has relative standard error sqrt(2 / m).
    expect(Math.abs(variance / 0.09 - 1)).toBeLessThan(5 * Math.sqrt(2 / m));
    // Normal shape: kurtosis 3 (standard error sqrt(24 / m)), and 4.55% beyond two sd.
    let fourth = 0;
    let beyond = 0;
    for (const v of residual) {
      fourth += ((v - mean) / Math.sqrt(variance)) ** 4;
      if (Math.abs(v) > 0.6) beyond++;
    }
    expect(Math.abs(fourth / m - 3)).toBeLessThan(5 * Math.sqrt(24 / m));
    expect(Math.abs(beyond / m - 0.0455)).toBeLessThan(5 * Math.sqrt((0.0455 * 0.9545) / m));
  });

  it.each([
    ['uniform', 0.5, 1 / 12],
    ['exponential', 1, 1],
    ['constant', 1, 0],
  ] as const)('draws %s magnitudes (mean %s, variance %s)', (magnitude, expectedMean, expectedVariance) => {
    const toy = new ToyDataset({ dim: 4, numFeatures: 16, expectedActive: 4, magnitude, seed: 11 });
    const values = toy.sample(10_000).codes.data.filter((v) => v !== 0);
    expect(values.length).toBeGreaterThan(30_000);
    const { mean, variance } = meanAndVariance(values);
    if (magnitude === 'constant') {
      expect(values.every((v) => v === 1)).toBe(true);
      return;
    }
    expect(values.every((v) => v > 0 && (magnitude === 'exponential' || v < 1))).toBe(true);
    expect(Math.abs(mean - expectedMean)).toBeLessThan(5 * Math.sqrt(expectedVariance / values.length));
    expect(Math.abs(variance / expectedVariance - 1)).toBeLessThan(0.05);
  });
});

describe('determinism of the stream', () => {
  const settings: ToyDatasetOptions = { dim: 24, numFeatures: 48, expectedActive: 5, decay: 0.95, correlated: true, noise: 0.1, seed: 12 };

  it('is the same for the same seed, whatever the thread count, and differs for another seed', () => {
    const reference = new ToyDataset({ ...settings, threads: 1 }).sample(300);
    for (const threads of [2, 3]) {
      const other = new ToyDataset({ ...settings, threads }).sample(300);
      expect(bitEqual(other.x.data, reference.x.data)).toBe(true);
      expect(bitEqual(other.codes.data, reference.codes.data)).toBe(true);
    }
    const reseeded = new ToyDataset({ ...settings, seed: 13 }).sample(300);
    expect(bitEqual(reseeded.x.data, reference.x.data)).toBe(false);
  });

  it('is one sequence: sample and batches continue each other in call order', async () => {
    const whole = new ToyDataset(settings).sample(100).x.data;
    const toy = new ToyDataset(settings);
    const first = toy.sample(30);
    expect(first.x.data).toEqual(whole.subarray(0, 30 * 24));
    expect(toy.position).toBe(30);
    const batches = toy.batches(50);
    const batch = await batches.next();
    expect(batch.done).toBe(false);
    expect(bitEqual(batch.value.data, whole.subarray(30 * 24, 80 * 24))).toBe(true);
    expect(toy.sample(20).x.data).toEqual(whole.subarray(80 * 24, 100 * 24));
    expect(toy.position).toBe(100);
  });

  it('generates batches off the main thread', async () => {
    const toy = new ToyDataset({ dim: 256, numFeatures: 512, expectedActive: 5, noise: 0.1, threads: 1 });
    const batches = toy.batches(16_384);
    let ticked = false;
    setImmediate(() => {
      ticked = true;
    });
    const batch = await batches.next();
    expect(ticked).toBe(true);
    expect(batch.value.rows).toBe(16_384);
  });
});

describe('validation', () => {
  const base = { dim: 4, numFeatures: 8, expectedActive: 2 };
  it.each([
    [{ decay: 0 }, RangeError, 'Expected number in (0, 1] for decay but received 0 of type number'],
    [{ decay: 1.5 }, RangeError, 'Expected number in (0, 1] for decay but received 1.5 of type number'],
    [{ decay: '0.9' }, TypeError, 'Expected number for decay but received "0.9" of type string'],
    [{ correlated: 'yes' }, TypeError, 'Expected boolean or object { rank?, strength? } for correlated but received "yes" of type string'],
    [{ correlated: { rank: 0 } }, RangeError, 'Expected integer in [1, 8] for correlated.rank but received 0 of type number'],
    [{ correlated: { rank: 9 } }, RangeError, 'Expected integer in [1, 8] for correlated.rank but received 9 of type number'],
    [{ correlated: { strength: 1 } }, RangeError, 'Expected number in [0, 0.99] for correlated.strength but received 1 of type number'],
    [{ correlated: { rnak: 2 } }, TypeError, "Unknown option 'rnak' for ToyDataset correlated; did you mean 'rank'?"],
    [{ noise: -1 }, RangeError, 'Expected non-negative finite number for noise but received -1 of type number'],
    [{ noise: Infinity }, RangeError, 'Expected non-negative finite number for noise but received Infinity of type number'],
    [{ magnitude: 'gaussian' }, RangeError, "Expected one of 'uniform', 'exponential', 'constant' for magnitude but received \"gaussian\" of type string"],
    [{ threads: 0 }, RangeError, 'Expected integer in [1, 1024] for threads but received 0 of type number'],
    [{ seeds: 1 }, TypeError, "Unknown option 'seeds' for ToyDataset; did you mean 'seed'?"],
    [{ expectedActive: 9 }, RangeError, 'Expected number in [0, 8] for expectedActive but received 9 of type number'],
  ])('new ToyDataset(%o) throws %s', (overrides, type, message) => {
    const create = () => new ToyDataset({ ...base, ...overrides } as never);
    expect(create).toThrow(type);
    expect(create).toThrow(message);
  });

  it('checks the arguments of sample, batches and latentCorrelation when they are called', () => {
    const toy = new ToyDataset(base);
    expect(() => toy.sample(1.5)).toThrow(new RangeError('Expected non-negative integer for n but received 1.5 of type number'));
    expect(() => toy.batches(0)).toThrow(new RangeError('Expected positive integer for batchSize but received 0 of type number'));
    expect(() => toy.latentCorrelation(8, 0)).toThrow(new RangeError('Expected integer in [0, 7] for i but received 8 of type number'));
    expect(toy.latentCorrelation(3, 3)).toBe(1);
    expect(toy.latentCorrelation(3, 4)).toBe(0);
    expect(toy.position).toBe(0);
  });

  it('the native generator re-checks what it is given and throws instead of crashing', () => {
    const spec = {
      dim: 2,
      numFeatures: 2,
      features: new Float32Array(4),
      probabilities: new Float64Array([0.5, 0.5]),
      rank: 0,
      loadings: null,
      thresholds: null,
      noise: 0,
      magnitude: 'uniform' as const,
      seed: 0,
      threads: 1,
    };
    const x = new Float32Array(2);
    expect(() => addon.toySample({ ...spec, features: new Float32Array(3) }, 0, 1, x, null)).toThrow(
      new RangeError('Expected 4 elements in features but received 3'),
    );
    expect(() => addon.toySample({ ...spec, probabilities: new Float64Array([0.5, 1.5]) }, 0, 1, x, null)).toThrow(RangeError);
    expect(() => addon.toySample({ ...spec, magnitude: 'x' as never }, 0, 1, x, null)).toThrow(RangeError);
    expect(() => addon.toySample(spec, 0, 2, x, null)).toThrow(new RangeError('Expected at least 4 elements in x but received 2'));
    const correlated = { ...spec, rank: 1, loadings: new Float32Array([0.5, 1]), thresholds: new Float64Array([0, 0]) };
    expect(() => addon.toySample(correlated, 0, 1, x, null)).toThrow(/Expected loadings rows of norm below 1 but row 1/);
    expect(() => addon.toySample(null as never, 0, 1, x, null)).toThrow(new TypeError('Expected object for spec'));
  });
});
