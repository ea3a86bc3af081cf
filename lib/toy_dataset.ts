import type { Matrix } from './matrix.js';
import { Random } from './random.js';
import * as is from './validate.js';

export interface ToyDatasetOptions {
  /** Dimension of the observed vectors. */
  dim: number;
  /** Number of true feature directions (may exceed dim: superposition). */
  numFeatures: number;
  /** Mean number of features active per sample: each is on with probability expectedActive / numFeatures. */
  expectedActive: number;
  /** Seeds the features and the sample stream. Default 0. */
  seed?: number;
}

/**
 * Synthetic data with known features, as in the "features in superposition" toy setting
 * (Sharkey, Braun & Millidge 2022): `numFeatures` unit directions drawn from a standard
 * normal in `dim` dimensions and normalised; each sample switches every feature on
 * independently with probability p = expectedActive / numFeatures, gives it a magnitude
 * uniform in [0, 1), and sums magnitude_i * feature_i.
 */
export class ToyDataset {
  readonly dim: number;
  readonly numFeatures: number;
  readonly expectedActive: number;
  readonly seed: number;
  /** [numFeatures, dim], unit rows. */
  readonly features: Matrix;
  readonly #random: Random;

  constructor(options: ToyDatasetOptions) {
    if (!is.isObject(options)) throw is.typeError('options', 'object', options);
    is.knownKeys('ToyDataset', options, ['dim', 'numFeatures', 'expectedActive', 'seed']);
    this.dim = is.integer('dim', options.dim, 1, 2 ** 31 - 1);
    this.numFeatures = is.integer('numFeatures', options.numFeatures, 1, 2 ** 31 - 1);
    this.expectedActive = is.numberInRange('expectedActive', options.expectedActive, 0, this.numFeatures);
    this.seed = options.seed === undefined ? 0 : is.integer('seed', options.seed, 0);
    const random = new Random(this.seed);
    const data = new Float32Array(this.numFeatures * this.dim);
    for (let f = 0; f < this.numFeatures; f++) {
      const row = data.subarray(f * this.dim, (f + 1) * this.dim);
      let norm = 0;
      for (let i = 0; i < this.dim; i++) {
        const v = random.normal();
        row[i] = v;
        norm += v * v;
      }
      const scale = 1 / Math.sqrt(norm);
      for (let i = 0; i < this.dim; i++) row[i] *= scale;
    }
    this.features = { rows: this.numFeatures, cols: this.dim, data };
    this.#random = new Random(this.seed + 1);
  }

  /** The next n samples of the stream: x [n, dim] = codes [n, numFeatures] * features. */
  sample(n: number): { x: Matrix; codes: Matrix } {
    is.integer('n', n, 0);
    const codes = new Float32Array(n * this.numFeatures);
    return { x: this.#generate(n, codes), codes: { rows: n, cols: this.numFeatures, data: codes } };
  }

  /** An endless stream of fresh batches [batchSize, dim] for `fit`. */
  async *batches(batchSize: number): AsyncGenerator<Matrix, never, undefined> {
    is.integer('batchSize', batchSize, 1);
    for (;;) yield this.#generate(batchSize, undefined);
  }

  #generate(n: number, codes: Float32Array | undefined): Matrix {
    const { dim, numFeatures } = this;
    const p = this.expectedActive / numFeatures;
    const x = new Float32Array(n * dim);
    const features = this.features.data;
    const random = this.#random;
    // Geometric gaps between active features: cost grows with the active count, not numFeatures.
    const logMiss = Math.log1p(-p);
    const gap = (): number => (p >= 1 ? 1 : 1 + Math.floor(Math.log(1 - random.uniform()) / logMiss));
    for (let s = 0; s < n; s++) {
      const row = s * dim;
      for (let f = gap() - 1; f < numFeatures; f += gap()) {
        const magnitude = random.uniform();
        if (codes !== undefined) codes[s * numFeatures + f] = magnitude;
        const feature = f * dim;
        for (let i = 0; i < dim; i++) x[row + i] += magnitude * features[feature + i];
      }
    }
    return { rows: n, cols: dim, data: x };
  }
}
