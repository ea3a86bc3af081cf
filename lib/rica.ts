import { availableParallelism } from 'node:os';

import { requireBackend } from './backends.js';
import { lbfgs } from './lbfgs.js';
import { checkMatrix, type Matrix } from './matrix.js';
import type { Device, DictionaryModel, FitOptions, TrainingData, TrainingRecord } from './model.js';
import { addon, type NativeRica, type NativeRicaStats } from './native.js';
import { NativeModel } from './native_model.js';
import { Random } from './random.js';
import { checkFitOptions, isIterable, prepareTraining, progressIntervalMs } from './training.js';
import * as is from './validate.js';

export type RicaOptimizer = 'lbfgs' | 'adam';

export interface RicaOptions {
  /** Input dimension d. */
  dIn: number;
  /** Number of features (rows of W). */
  dHidden: number;
  /** Weight of the sparsity penalty. */
  lambda: number;
  /** Smoothing of the L1 penalty g(u) = sqrt(u^2 + epsilon). Default 1e-2. */
  epsilon?: number;
  /** Use W's rows scaled to unit norm inside the cost, as the reference code does. Default true. */
  normalizeRows?: boolean;
  /** 'lbfgs' (default; the paper's; full batch) or 'adam' (minibatches, streams). */
  optimizer?: RicaOptimizer;
  /** Adam's learning rate (optimizer 'adam' only). Default 1e-3. */
  lr?: number;
  /** Seeds the initial W and, with Adam, the data order. Default 0. */
  seed?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N' (see SparseAutoencoderOptions.device). */
  device?: Device;
  /** CPU threads for this model's work. Default: all cores. */
  threads?: number;
}

/** The objective on a set of rows, as means over the rows. */
export interface RicaStats {
  /** lambda * sparsity + reconstruction */
  loss: number;
  /** sum over features of g(W x) */
  sparsity: number;
  /** 0.5 * ||W^T W x - x||^2 */
  reconstruction: number;
  /**
   * Features with |W x| > sqrt(epsilon), where g turns from quadratic to linear: the units the
   * penalty treats as active. RICA's codes are dense, so this is a soft count, not an exact L0.
   */
  l0: number;
}

export interface RicaRecord extends RicaStats, TrainingRecord {
  /** L-BFGS only: cost-and-gradient evaluations so far in this fit, line searches included. */
  evaluations?: number;
}

let cpuKernelsForNextModel: string | undefined;

const optionNames = ['dIn', 'dHidden', 'lambda', 'epsilon', 'normalizeRows', 'optimizer', 'lr', 'seed', 'device', 'threads'] as const;

/**
 * Reconstruction ICA (Le, Karpenko, Ngiam & Ng, "ICA with reconstruction cost for efficient
 * overcomplete feature learning", NeurIPS 2011):
 *
 *     minimise over W [dHidden, dIn]   mean over rows x of
 *         lambda * sum_j g((V x)_j) + 0.5 * ||V^T V x - x||^2,     g(u) = sqrt(u^2 + epsilon)
 *
 * with V = W's rows scaled to unit norm (normalizeRows, the default) or V = W. The
 * reconstruction term replaces ICA's hard orthonormality constraint by a soft one, which lets
 * the dictionary be overcomplete. The cost and its gradient are computed natively on matrix
 * products; the default optimizer is L-BFGS with a strong Wolfe line search, on the whole
 * data set, as in the paper. `dictionary()` is V and `encode(x)` is x V^T.
 *
 * With optimizer 'adam' the same objective is minimised by Adam on minibatches, so data can
 * be an (async) iterable of batches as for the SparseAutoencoder.
 */
export class Rica extends NativeModel<NativeRica> implements DictionaryModel {
  readonly dIn: number;
  readonly dHidden: number;
  readonly lambda: number;
  readonly epsilon: number;
  readonly normalizeRows: boolean;
  readonly optimizer: RicaOptimizer;
  readonly lr: number;
  readonly seed: number;
  readonly device: Device;
  readonly threads: number;

  readonly #random: Random;
  #lbfgsIterations = 0;

  constructor(options: RicaOptions) {
    const o = checkOptions(options);
    requireBackend(o.device, 'a Rica');
    super(
      'Rica',
      new addon.NativeRica({
        dIn: o.dIn,
        dHidden: o.dHidden,
        lambda: o.lambda,
        epsilon: o.epsilon,
        normalizeRows: o.normalizeRows,
        lr: o.lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        seed: o.seed,
        threads: o.threads,
        device: o.device,
        ...(cpuKernelsForNextModel !== undefined ? { cpuKernels: cpuKernelsForNextModel } : {}),
      }),
    );
    this.dIn = o.dIn;
    this.dHidden = o.dHidden;
    this.lambda = o.lambda;
    this.epsilon = o.epsilon;
    this.normalizeRows = o.normalizeRows;
    this.optimizer = o.optimizer;
    this.lr = o.lr;
    this.seed = o.seed;
    this.device = o.device;
    this.threads = o.threads;
    this.#random = new Random(this.seed + 0x5eed);
  }

  /** Optimizer steps applied so far: L-BFGS iterations or Adam steps. */
  get stepsTaken(): number {
    return this.disposed ? 0 : this.usable().stepsTaken + this.#lbfgsIterations;
  }

  /**
   * Minimises the objective on `data`. With L-BFGS (the default), `data` is a Matrix (every
   * evaluation uses all of its rows) and `steps` counts iterations; training stops earlier when
   * the gradient vanishes (max |g| <= 1e-5) or the objective stops changing, so there may be
   * fewer records than steps. With Adam, as SparseAutoencoder.fit: a Matrix cut into
   * reshuffled batches (`batchSize`, `epochs`) or an iterable of batches. Resolves to one
   * record per step with the objective at the point the step reached (L-BFGS) or on the batch
   * before the update (Adam). With L-BFGS, onProgress's samplesSeen counts rows evaluated
   * (evaluations x rows), line-search trials included.
   */
  fit(data: TrainingData, options: FitOptions): Promise<RicaRecord[]> {
    return this.enqueue(() => {
      if (this.optimizer === 'adam') {
        const run = prepareTraining(
          {
            name: 'Rica.fit',
            dIn: this.dIn,
            random: this.#random,
            step: (values, rows) => this.usable().adamStep(values, rows),
            checkUsable: () => void this.usable(),
          },
          data,
          options,
        );
        return () => run();
      }
      return this.#prepareLbfgs(data, options);
    });
  }

  #prepareLbfgs(data: TrainingData, rawOptions: FitOptions): () => Promise<RicaRecord[]> {
    if (isIterable(data)) {
      throw new TypeError(
        "Rica.fit with optimizer 'lbfgs' needs the whole data set as a Matrix (every L-BFGS evaluation uses all rows); " +
          "for an iterable of batches create the model with { optimizer: 'adam' }",
      );
    }
    const options = checkFitOptions('Rica.fit', rawOptions);
    if (options.epochs !== undefined) {
      throw new TypeError("options.epochs does not apply to optimizer 'lbfgs'; give options.steps, the number of L-BFGS iterations");
    }
    if (options.batchSize !== undefined) {
      throw new TypeError(
        "options.batchSize does not apply to optimizer 'lbfgs', which uses every row of data; for minibatches create the model with { optimizer: 'adam' }",
      );
    }
    const source = checkMatrix('data', data, { value: this.dIn, label: 'dIn' }, 1);
    const rows = source.rows;
    const values = source.data.slice();
    addon.checkFinite(values, this.dIn, 'data.data');
    const totalSteps = options.steps as number;
    const { onProgress, signal } = options;

    return async () => {
      const statsAt = new WeakMap<Float64Array, NativeRicaStats>();
      // `values` is this fit's own copy, never changed: after the first evaluation the backend
      // keeps what it made of it (on a GPU, its copy there).
      let sameX = false;
      // One float32 copy of the point and one gradient buffer serve every evaluation (L-BFGS
      // awaits each before the next); `weightsOf` is the point whose copy `weights` holds.
      const count = this.dHidden * this.dIn;
      const weights = new Float32Array(count);
      const gradient = new Float32Array(count);
      let weightsOf: Float64Array | undefined;
      const objective = async (x: Float64Array) => {
        weightsOf = undefined;
        weights.set(x);
        // A line-search trial beyond float32's range is simply too far: the search backtracks.
        if (!allFinite(weights)) return { f: Infinity, g: new Float64Array(count) };
        const stats = await this.usable().costGradient(weights, values, rows, gradient, sameX);
        sameX = true;
        weightsOf = x;
        statsAt.set(x, stats);
        return { f: stats.loss, g: new Float64Array(gradient) };
      };
      const records: RicaRecord[] = [];
      const started = performance.now();
      let lastReport = -Infinity;
      const report = (record: RicaRecord) => {
        const now = performance.now();
        lastReport = now;
        const samplesSeen = (record.evaluations ?? 0) * rows;
        onProgress?.({
          step: record.step,
          totalSteps,
          samplesSeen,
          loss: record.loss,
          l0: record.l0,
          samplesPerSecond: samplesSeen / Math.max((now - started) / 1000, 1e-9),
        });
      };
      await lbfgs(objective, Float64Array.from(this.usable().getWeights()), {
        maxIterations: totalSteps,
        signal,
        threads: this.threads,
        onIteration: ({ iteration, x, evaluations }) => {
          // The model holds every accepted point, so an abort or an onProgress reader sees it.
          this.usable().setWeights(x === weightsOf ? weights : Float32Array.from(x));
          this.#lbfgsIterations++;
          const stats = statsAt.get(x) as NativeRicaStats;
          const record: RicaRecord = { step: iteration, ...stats, evaluations };
          records.push(record);
          if (onProgress !== undefined && (performance.now() - lastReport >= progressIntervalMs || iteration === totalSteps)) {
            report(record);
          }
        },
      });
      const last = records.at(-1);
      if (onProgress !== undefined && last !== undefined && last.step < totalSteps) report(last);
      return records;
    };
  }

  /** Codes x V^T for each row of x: [rows, dHidden]. */
  encode(x: Matrix): Promise<Matrix> {
    return this.enqueue(() => {
      const input = checkMatrix('x', x, { value: this.dIn, label: 'dIn' });
      const data = input.data.slice();
      return async (native) => {
        const out = new Float32Array(input.rows * this.dHidden);
        await native.encode(data, input.rows, out);
        return { rows: input.rows, cols: this.dHidden, data: out };
      };
    });
  }

  /**
   * The objective on the rows of x at the current weights, and its gradient with respect to
   * W ([dHidden, dIn]), computed natively off the main thread.
   */
  objective(x: Matrix): Promise<RicaStats & { gradient: Matrix }> {
    return this.enqueue(() => {
      const input = checkMatrix('x', x, { value: this.dIn, label: 'dIn' }, 1);
      const data = input.data.slice();
      return async (native) => {
        const gradient = new Float32Array(this.dHidden * this.dIn);
        const stats = await native.costGradient(native.getWeights(), data, input.rows, gradient, false);
        return { ...stats, gradient: { rows: this.dHidden, cols: this.dIn, data: gradient } };
      };
    });
  }

  /** V [dHidden, dIn]: the feature directions the cost uses (W's rows at unit norm when normalizeRows), a copy. */
  dictionary(): Matrix {
    return { rows: this.dHidden, cols: this.dIn, data: this.usable().dictionary() };
  }

  /** W [dHidden, dIn], the parameters as the optimizer holds them, a copy. */
  weights(): Matrix {
    return { rows: this.dHidden, cols: this.dIn, data: this.usable().getWeights() };
  }

  /** @internal Overwrites W (tests). */
  _setWeights(weights: Float32Array): void {
    this.usable().setWeights(weights);
  }

  /** @internal A model on a chosen CPU kernel set ("generic", "avx2"), for tests. */
  static _withCpuKernels(options: RicaOptions, cpuKernels: string): Rica {
    cpuKernelsForNextModel = cpuKernels;
    try {
      return new Rica(options);
    } finally {
      cpuKernelsForNextModel = undefined;
    }
  }
}

/** A plain loop, not `every(Number.isFinite)` (a call per element: about 8 times slower). */
function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

function checkOptions(options: RicaOptions): Required<RicaOptions> {
  if (!is.isObject(options)) throw is.typeError('options', 'object', options);
  is.knownKeys('Rica', options, optionNames);
  const checked: Required<RicaOptions> = {
    dIn: is.integer('dIn', options.dIn, 1, 2 ** 31 - 1),
    dHidden: is.integer('dHidden', options.dHidden, 1, 2 ** 31 - 1),
    lambda: is.nonNegativeNumber('lambda', options.lambda),
    epsilon: options.epsilon === undefined ? 1e-2 : is.positiveNumber('epsilon', options.epsilon),
    normalizeRows: options.normalizeRows === undefined ? true : is.boolean('normalizeRows', options.normalizeRows),
    optimizer: options.optimizer === undefined ? 'lbfgs' : is.oneOf('optimizer', options.optimizer, ['lbfgs', 'adam'] as const),
    lr: options.lr === undefined ? 1e-3 : is.positiveNumber('lr', options.lr),
    seed: options.seed === undefined ? 0 : is.integer('seed', options.seed, 0),
    device: options.device === undefined ? 'cpu' : is.device('device', options.device),
    threads: options.threads === undefined ? availableParallelism() : is.integer('threads', options.threads, 1, 1024),
  };
  if (checked.optimizer === 'lbfgs' && options.lr !== undefined) {
    throw new TypeError("lr applies only to optimizer 'adam'; L-BFGS chooses its step lengths by line search");
  }
  return checked;
}
