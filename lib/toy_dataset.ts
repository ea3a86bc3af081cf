import { availableParallelism } from 'node:os';

import type { Matrix } from './matrix.js';
import { addon, type NativeToySpec } from './native.js';
import { Random } from './random.js';
import * as is from './validate.js';

export type ToyMagnitude = 'uniform' | 'exponential' | 'constant';

export interface ToyCorrelationOptions {
  /** Number of shared Gaussian factors r. Default 4 (at most numFeatures). */
  rank?: number;
  /** Share of each feature's latent variance that comes from the shared factors, in [0, 0.99]. Default 0.5. */
  strength?: number;
}

export interface ToyDatasetOptions {
  /** Dimension of the observed vectors. */
  dim: number;
  /** Number of true feature directions (may exceed dim: superposition). */
  numFeatures: number;
  /** Mean number of features active per sample, exactly (see `probabilities`); at most numFeatures. */
  expectedActive: number;
  /** Feature i's probability is proportional to decay^i (before capping at 1). In (0, 1]; default 1 (uniform). */
  decay?: number;
  /** Correlated activity through a Gaussian copula with low-rank structure: true for the defaults. Default false. */
  correlated?: boolean | ToyCorrelationOptions;
  /** Standard deviation of the isotropic Gaussian noise added to each coordinate of x. Default 0. */
  noise?: number;
  /** Distribution of an active feature's magnitude: U[0, 1) ('uniform', the default), Exp(1), or 1. */
  magnitude?: ToyMagnitude;
  /** Seeds the features, the correlation structure and the sample stream. Default 0. */
  seed?: number;
  /** CPU threads that generate samples. Default: all cores. The stream does not depend on it. */
  threads?: number;
}

/** The correlation structure of a correlated ToyDataset (see ToyDataset). */
export interface ToyCorrelation {
  rank: number;
  strength: number;
  /**
   * [numFeatures, rank]: row i is a_i = sqrt(strength) * u_i, u_i a random unit vector of R^rank.
   * The latents' correlation is corr(z_i, z_j) = a_i . a_j for i != j (see latentCorrelation).
   */
  loadings: Matrix;
  /** Phi^-1(probabilities[i]): feature i is on iff z_i < thresholds[i]. */
  thresholds: Float64Array;
}

const optionNames = [
  'dim',
  'numFeatures',
  'expectedActive',
  'decay',
  'correlated',
  'noise',
  'magnitude',
  'seed',
  'threads',
] as const;
const magnitudes: readonly ToyMagnitude[] = ['uniform', 'exponential', 'constant'];
const defaultRank = 4;
const defaultStrength = 0.5;
const maxStrength = 0.99;

/**
 * Synthetic data with known features: the "features in superposition" toy setting of Sharkey,
 * Braun & Millidge (2022) and HoagyC/sparse_coding (`sc_datasets/random_dataset.py`).
 *
 * `numFeatures` unit directions f_i are drawn from a standard normal in `dim` dimensions and
 * normalised (`features`). Each sample switches feature i on with probability p_i, gives each
 * active feature a magnitude m_i (U[0, 1) by default), and returns
 *
 *     x = sum over active i of m_i f_i + noise * N(0, I_dim)
 *
 * with the magnitudes as its codes (so x = codes * features exactly when noise is 0).
 *
 * Probabilities: p_i is proportional to decay^i and scaled so that sum_i p_i = expectedActive
 * exactly, which is then the mean number of active features per sample. Where a scaled p_i would
 * exceed 1 it is capped at 1 and the excess spread over the rest in proportion (water-filling):
 * the first k features are always on and p_i = (expectedActive - k) decay^i / sum_{j>=k} decay^j
 * for i >= k, with the smallest k that keeps every p_i <= 1. decay = 1 gives p_i =
 * expectedActive / numFeatures. (HoagyC/sparse_coding instead sets p_i = (n_nonzero /
 * numFeatures) * decay^i: with "5 nonzero", decay 0.99 and 512 features about 0.97 features are
 * active per sample, not 5. Here 5 means 5.)
 *
 * Correlated activity (`correlated`): a Gaussian copula, per sample. Each sample draws r shared
 * factors e ~ N(0, I_r) and for each feature its own eta_i ~ N(0, 1); the latent
 * z_i = a_i . e + sqrt(1 - |a_i|^2) eta_i is standard normal and feature i is on iff
 * z_i < Phi^-1(p_i), so every marginal probability is exactly p_i (and the mean count is still
 * expectedActive) while corr(z_i, z_j) = a_i . a_j. The loadings are a_i = sqrt(strength) u_i
 * with u_i uniform on the unit sphere of R^r: `strength` of each latent's variance is shared,
 * and latent correlations spread over [-strength, strength] with root mean square
 * strength / sqrt(r). The defaults (r = 4, strength 0.5) give an RMS latent correlation of 0.25,
 * which for rare features changes co-firing rates several-fold (at p = 5/512 a latent
 * correlation of 0.25 makes a pair co-fire 4.4 times as often as independent features, -0.25
 * makes it 0.1 times). The cost is O(numFeatures * r) per sample, not numFeatures^2.
 * HoagyC/sparse_coding's correlated mode draws one correlated Gaussian vector per batch and
 * scales the whole batch's probabilities by it (every row of a batch shares it, and it forces at
 * least one active feature per row); we draw the latents per sample and force nothing.
 *
 * Magnitudes (`magnitude`): 'uniform' U[0, 1) (the reference's choice; its data additionally
 * multiplies each magnitude by a second U[0, 1) that its codes leave out, which we do not copy),
 * 'exponential' Exp(1) (mean 1, heavy-ish tail), or 'constant' 1 (pure support recovery).
 *
 * The stream: sample k of the dataset's life is a fixed function of the seed and k, generated in
 * native code from its own random stream, in parallel, identical whatever `threads`. `sample(n)`
 * and `batches()` both take the next samples of this one stream, in call order. A batch of 1024
 * samples (256 dimensions, 512 features, 5 active) takes about 0.6 ms on one core, 2 ms with
 * noise and 3 ms with correlated activity (`node bench/toy_generation.mjs`), against 15 to 20 ms
 * for an SAE training step with 1024 features on two cores.
 */
export class ToyDataset {
  readonly dim: number;
  readonly numFeatures: number;
  readonly expectedActive: number;
  readonly decay: number;
  readonly noise: number;
  readonly magnitude: ToyMagnitude;
  readonly seed: number;
  readonly threads: number;
  /** [numFeatures, dim], unit rows. */
  readonly features: Matrix;
  /** p_i, the probability that feature i is active in a sample; sums to expectedActive. */
  readonly probabilities: Float64Array;
  /** The correlation structure, or null for independent activity. */
  readonly correlation: ToyCorrelation | null;
  // Private copies of everything generation reads, so that changes to the public fields
  // cannot alter (or race with) the stream.
  readonly #spec: NativeToySpec;
  #position = 0;

  constructor(options: ToyDatasetOptions) {
    if (!is.isObject(options)) throw is.typeError('options', 'object', options);
    is.knownKeys('ToyDataset', options, optionNames);
    this.dim = is.integer('dim', options.dim, 1, 2 ** 31 - 1);
    this.numFeatures = is.integer('numFeatures', options.numFeatures, 1, 2 ** 31 - 1);
    this.expectedActive = is.numberInRange('expectedActive', options.expectedActive, 0, this.numFeatures);
    this.decay = options.decay === undefined ? 1 : checkDecay(options.decay);
    const correlation = checkCorrelated(options.correlated, this.numFeatures);
    this.noise = options.noise === undefined ? 0 : is.nonNegativeNumber('noise', options.noise);
    this.magnitude = options.magnitude === undefined ? 'uniform' : is.oneOf('magnitude', options.magnitude, magnitudes);
    this.seed = options.seed === undefined ? 0 : is.integer('seed', options.seed, 0);
    this.threads = options.threads === undefined ? availableParallelism() : is.integer('threads', options.threads, 1, 1024);

    const random = new Random(this.seed);
    this.features = { rows: this.numFeatures, cols: this.dim, data: randomUnitRows(random, this.numFeatures, this.dim) };
    this.probabilities = activationProbabilities(this.numFeatures, this.expectedActive, this.decay);
    if (correlation === undefined) {
      this.correlation = null;
    } else {
      const { rank, strength } = correlation;
      const loadings = randomUnitRows(random, this.numFeatures, rank);
      const scale = Math.sqrt(strength);
      for (let i = 0; i < loadings.length; i++) loadings[i] *= scale;
      this.correlation = {
        rank,
        strength,
        loadings: { rows: this.numFeatures, cols: rank, data: loadings },
        thresholds: addon.normalQuantile(this.probabilities),
      };
    }
    this.#spec = {
      dim: this.dim,
      numFeatures: this.numFeatures,
      features: this.features.data.slice(),
      probabilities: this.probabilities.slice(),
      rank: this.correlation?.rank ?? 0,
      loadings: this.correlation?.loadings.data.slice() ?? null,
      thresholds: this.correlation?.thresholds.slice() ?? null,
      noise: this.noise,
      magnitude: this.magnitude,
      seed: this.seed,
      threads: this.threads,
    };
  }

  /** How many samples the stream has given so far (by sample and batches together). */
  get position(): number {
    return this.#position;
  }

  /**
   * corr(z_i, z_j) of the latents that decide activity: a_i . a_j for i != j, 1 for i = j, and 0
   * between different features of an uncorrelated dataset.
   */
  latentCorrelation(i: number, j: number): number {
    is.integer('i', i, 0, this.numFeatures - 1);
    is.integer('j', j, 0, this.numFeatures - 1);
    if (i === j) return 1;
    if (this.correlation === null) return 0;
    const { rank, loadings } = this.correlation;
    let dot = 0;
    for (let k = 0; k < rank; k++) dot += loadings.data[i * rank + k] * loadings.data[j * rank + k];
    return dot;
  }

  /**
   * The next n samples of the stream: x [n, dim] and codes [n, numFeatures] (each active
   * feature's magnitude, 0 elsewhere). Generated synchronously on `threads` threads: it holds
   * the event loop for about a millisecond per thousand samples in the setting above.
   */
  sample(n: number): { x: Matrix; codes: Matrix } {
    is.integer('n', n, 0);
    const x = new Float32Array(n * this.dim);
    const codes = new Float32Array(n * this.numFeatures);
    const first = this.#take(n);
    addon.toySample(this.#spec, first, n, x, codes);
    return { x: { rows: n, cols: this.dim, data: x }, codes: { rows: n, cols: this.numFeatures, data: codes } };
  }

  /**
   * An endless stream of fresh batches [batchSize, dim] for `fit`, generated off the main thread
   * (so a batch is made while the model trains on the previous one). Each batch takes its place
   * in the stream when it is requested, not when it is ready.
   */
  batches(batchSize: number): AsyncGenerator<Matrix, never, undefined> {
    is.integer('batchSize', batchSize, 1);
    return this.#batches(batchSize);
  }

  async *#batches(batchSize: number): AsyncGenerator<Matrix, never, undefined> {
    for (;;) {
      const x = new Float32Array(batchSize * this.dim);
      const first = this.#take(batchSize);
      await addon.toySampleAsync(this.#spec, first, batchSize, x);
      yield { rows: batchSize, cols: this.dim, data: x };
    }
  }

  #take(n: number): number {
    const first = this.#position;
    if (first + n > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`The stream of this ToyDataset is exhausted: ${first} samples were drawn`);
    }
    this.#position = first + n;
    return first;
  }
}

/**
 * p_i proportional to decay^i with sum_i p_i = expectedActive and every p_i <= 1: the first k
 * features are capped at 1 and the rest share expectedActive - k in proportion to decay^i, with
 * the smallest k for which that keeps p_k <= 1 (water-filling).
 */
export function activationProbabilities(numFeatures: number, expectedActive: number, decay: number): Float64Array {
  // tail[k] = sum_{j>=k} decay^(j-k): the tail's total weight relative to feature k's.
  const tail = new Float64Array(numFeatures + 1);
  for (let k = numFeatures - 1; k >= 0; k--) tail[k] = 1 + decay * tail[k + 1];
  let capped = 0;
  while (capped < numFeatures && expectedActive - capped > tail[capped]) capped++;
  const p = new Float64Array(numFeatures);
  p.fill(1, 0, capped);
  let weight = (expectedActive - capped) / (capped < numFeatures ? tail[capped] : 1);
  for (let i = capped; i < numFeatures; i++) {
    p[i] = Math.min(1, weight);
    weight *= decay;
  }
  return p;
}

function randomUnitRows(random: Random, rows: number, cols: number): Float32Array {
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    let norm = 0;
    for (let i = 0; i < cols; i++) {
      const v = random.normal();
      row[i] = v;
      norm += v * v;
    }
    const scale = 1 / Math.sqrt(norm);
    for (let i = 0; i < cols; i++) row[i] *= scale;
  }
  return data;
}

function checkDecay(value: unknown): number {
  const decay = is.number('decay', value);
  if (!(decay > 0 && decay <= 1)) throw is.rangeError('decay', 'number in (0, 1]', value);
  return decay;
}

function checkCorrelated(value: unknown, numFeatures: number): { rank: number; strength: number } | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { rank: Math.min(defaultRank, numFeatures), strength: defaultStrength };
  if (!is.isObject(value)) throw is.typeError('correlated', 'boolean or object { rank?, strength? }', value);
  is.knownKeys('ToyDataset correlated', value, ['rank', 'strength']);
  return {
    rank: value.rank === undefined ? Math.min(defaultRank, numFeatures) : is.integer('correlated.rank', value.rank, 1, numFeatures),
    strength:
      value.strength === undefined ? defaultStrength : is.numberInRange('correlated.strength', value.strength, 0, maxStrength),
  };
}
