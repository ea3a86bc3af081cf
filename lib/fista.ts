// Lasso sparse coding by FISTA (FistaCoder) and dictionary learning on top of it
// (FistaDictionary). The algorithms are described in native/core/fista.h; this file
// validates, copies and schedules.
import { availableParallelism } from 'node:os';

import { requireBackend } from './backends.js';
import { checkMatrix, type Matrix } from './matrix.js';
import type { Device, DictionaryModel, FitOptions, TrainingData, TrainingRecord } from './model.js';
import { addon, type NativeFista, type NativeFistaConfig } from './native.js';
import { NativeModel } from './native_model.js';
import { Random } from './random.js';
import { prepareTraining } from './training.js';
import * as is from './validate.js';

/** Solver settings shared by FistaCoder and FistaDictionary. */
export interface FistaSolverOptions {
  /** Weight of the L1 penalty: each row solves min_z 0.5 ||x - z D||^2 + lambda ||z||_1. */
  lambda: number;
  /** Most FISTA iterations per row. Default 200. */
  maxIter?: number;
  /**
   * A row stops when its KKT violation is at most tol * max(lambda, ||x D^T||_inf) (see
   * FistaResult.rowKkt). Default 1e-6.
   */
  tol?: number;
  /**
   * When positive, a row also stops when its duality gap is at most gapTol times the dual
   * objective, which guarantees (P(z) - P*) / P* <= gapTol. Default 0 (off).
   */
  gapTol?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N' (see SparseAutoencoderOptions.device). */
  device?: Device;
  /** CPU threads. Default: all cores (os.availableParallelism()). */
  threads?: number;
}

export interface FistaCoderOptions extends FistaSolverOptions {
  /** [m, d]: one atom per row. Used as given (atoms need not have unit norm). */
  dictionary: Matrix;
  /** Constrain the codes to z >= 0. Default false. */
  nonNegative?: boolean;
}

export interface FistaEncodeOptions {
  /** Start point [x.rows, m] (a warm start, e.g. the codes of a previous call). Default zero. */
  init?: Matrix;
}

export interface FistaResult {
  /** [rows, m]. */
  codes: Matrix;
  /** Most iterations any row took. */
  iterations: number;
  /** Mean over rows of 0.5 ||x - z D||^2 + lambda ||z||_1 (NaN for zero rows). */
  objective: number;
  /** Whether every row met tol (or gapTol) before maxIter. */
  converged: boolean;
  rowIterations: Int32Array;
  /** Per row: 0.5 ||x - z D||^2 + lambda ||z||_1, from the explicit residual in float64. */
  rowObjectives: Float64Array;
  /** Per row: the duality gap, an upper bound on the row's objective minus its optimum. */
  rowGaps: Float64Array;
  /**
   * Per row: the KKT violation divided by max(lambda, ||x D^T||_inf), with g = (z D - x) D^T:
   * the largest of |g_j + lambda sign(z_j)| over z_j != 0 and max(|g_j| - lambda, 0) over
   * z_j = 0 (max(-g_j - lambda, 0) with nonNegative).
   */
  rowKkt: Float64Array;
  /** Per row: 1 if it met tol (or gapTol), 0 if it ran out of iterations. */
  rowConverged: Uint8Array;
}

let cpuKernelsForNextModel: string | undefined;

const solverOptionNames = ['lambda', 'maxIter', 'tol', 'gapTol', 'device', 'threads'] as const;
const coderOptionNames = [...solverOptionNames, 'dictionary', 'nonNegative'] as const;
const dictionaryOptionNames = [...solverOptionNames, 'dIn', 'dHidden', 'nonNegative', 'seed'] as const;

type SolverSettings = Required<FistaSolverOptions>;

function checkSolverOptions(options: FistaSolverOptions): SolverSettings {
  return {
    lambda: is.nonNegativeNumber('lambda', options.lambda),
    maxIter: options.maxIter === undefined ? 200 : is.integer('maxIter', options.maxIter, 0, 2 ** 31 - 1),
    tol: options.tol === undefined ? 1e-6 : is.nonNegativeNumber('tol', options.tol),
    gapTol: options.gapTol === undefined ? 0 : is.nonNegativeNumber('gapTol', options.gapTol),
    device: options.device === undefined ? 'cpu' : is.device('device', options.device),
    threads: options.threads === undefined ? availableParallelism() : is.integer('threads', options.threads, 1, 1024),
  };
}

function nativeConfig(
  shape: { dIn: number; dHidden: number },
  s: SolverSettings,
  extra: { nonNegative: boolean; learning: boolean; seed: number },
): NativeFistaConfig {
  return {
    dIn: shape.dIn,
    dHidden: shape.dHidden,
    lambda: s.lambda,
    maxIter: s.maxIter,
    tol: s.tol,
    gapTol: s.gapTol,
    threads: s.threads,
    device: s.device,
    ...extra,
    ...(cpuKernelsForNextModel !== undefined ? { cpuKernels: cpuKernelsForNextModel } : {}),
  };
}

/**
 * Validates x and options.init and copies them now; the returned function runs the solve.
 */
function prepareEncode(
  what: string,
  dIn: number,
  dHidden: number,
  x: Matrix,
  options: FistaEncodeOptions | undefined,
): (native: NativeFista) => Promise<FistaResult> {
  const opts = is.options('options', options);
  is.knownKeys(what, opts, ['init']);
  const input = checkMatrix('x', x, { value: dIn, label: 'dIn' });
  let init: Float32Array | null = null;
  if (opts.init !== undefined) {
    const start = checkMatrix('options.init', opts.init, { value: dHidden, label: 'dHidden' });
    if (start.rows !== input.rows) {
      throw new RangeError(`Expected options.init.rows to equal x.rows (${input.rows}) but received ${is.describe(start.rows)}`);
    }
    init = start.data.slice();
  }
  const data = input.data.slice();
  const rows = input.rows;
  return async (native) => {
    const out = new Float32Array(rows * dHidden);
    const r = await native.encode(data, rows, init, out);
    let objective = 0;
    let iterations = 0;
    let converged = true;
    for (let i = 0; i < rows; i++) {
      objective += r.objective[i];
      iterations = Math.max(iterations, r.iterations[i]);
      converged &&= r.converged[i] === 1;
    }
    return {
      codes: { rows, cols: dHidden, data: out },
      iterations,
      objective: objective / rows,
      converged,
      rowIterations: r.iterations,
      rowObjectives: r.objective,
      rowGaps: r.gap,
      rowKkt: r.kkt,
      rowConverged: r.converged,
    };
  };
}

/**
 * Sparse codes for a fixed dictionary D [m, d]: for each row x, the lasso solution
 *
 *     min_z 0.5 ||x - z D||^2 + lambda ||z||_1          (z >= 0 with nonNegative)
 *
 * by monotone FISTA (Beck & Teboulle 2009b: the objective never increases) with step 1/L,
 * L the largest eigenvalue of D D^T by power iteration, in Gram form (G = D D^T is formed
 * once, on the first call, off the main thread), rows in parallel. Each row stops when its
 * KKT violation is at most `tol` times max(lambda, ||x D^T||_inf) (or its relative duality
 * gap is at most `gapTol`), or after `maxIter` iterations. Results are the same for any
 * number of threads.
 */
export class FistaCoder extends NativeModel<NativeFista> {
  /** d */
  readonly dIn: number;
  /** m, the number of atoms */
  readonly dHidden: number;
  readonly lambda: number;
  readonly maxIter: number;
  readonly tol: number;
  readonly gapTol: number;
  readonly nonNegative: boolean;
  readonly device: Device;
  readonly threads: number;

  constructor(options: FistaCoderOptions) {
    if (!is.isObject(options)) throw is.typeError('options', 'object', options);
    is.knownKeys('FistaCoder', options, coderOptionNames);
    const dictionary = checkMatrix('dictionary', options.dictionary, undefined, 1);
    is.integer('dictionary.cols', dictionary.cols, 1);
    const settings = checkSolverOptions(options);
    const nonNegative = options.nonNegative === undefined ? false : is.boolean('nonNegative', options.nonNegative);
    requireBackend(settings.device, 'a FistaCoder');
    addon.checkFinite(dictionary.data, dictionary.cols, 'dictionary.data');
    const shape = { dIn: dictionary.cols, dHidden: dictionary.rows };
    super('FistaCoder', new addon.NativeFista(nativeConfig(shape, settings, { nonNegative, learning: false, seed: 0 }), dictionary.data));
    this.dIn = shape.dIn;
    this.dHidden = shape.dHidden;
    this.lambda = settings.lambda;
    this.maxIter = settings.maxIter;
    this.tol = settings.tol;
    this.gapTol = settings.gapTol;
    this.nonNegative = nonNegative;
    this.device = settings.device;
    this.threads = settings.threads;
  }

  /** Codes for each row of x [rows, dIn], and how the solve went. */
  encode(x: Matrix, options?: FistaEncodeOptions): Promise<FistaResult> {
    return this.enqueue(() => prepareEncode('FistaCoder.encode', this.dIn, this.dHidden, x, options));
  }

  /** The L of the step 1/L: the largest eigenvalue of D D^T (times 1 + 1e-6). */
  lipschitz(): Promise<number> {
    return this.enqueue(() => (native) => native.lipschitz());
  }

  /** [m, d], a copy of the dictionary given. */
  dictionary(): Matrix {
    return { rows: this.dHidden, cols: this.dIn, data: this.usable().getDictionary() };
  }

  /** @internal A coder on a chosen CPU kernel set ("generic", "avx2"), for tests. */
  static _withCpuKernels(options: FistaCoderOptions, cpuKernels: string): FistaCoder {
    cpuKernelsForNextModel = cpuKernels;
    try {
      return new FistaCoder(options);
    } finally {
      cpuKernelsForNextModel = undefined;
    }
  }
}

export interface FistaDictionaryOptions extends FistaSolverOptions {
  /** Input dimension d. */
  dIn: number;
  /** Number of atoms m. */
  dHidden: number;
  /** Constrain the codes to z >= 0. Default true. */
  nonNegative?: boolean;
  /** Seeds the initial atoms, atom redraws and data order. Default 0. */
  seed?: number;
}

/** Statistics of one dictionary learning step, on the batch's codes before the update. */
export interface FistaStepStats {
  /** mean over rows of 0.5 ||x - z D||^2 + lambda ||z||_1 */
  loss: number;
  /** mean over rows and coordinates of (x - z D)^2 */
  mse: number;
  /** mean over rows of ||z||_1 */
  l1: number;
  /** mean over rows of the number of non-zero codes */
  l0: number;
  /** mean over rows of FISTA iterations */
  iterations: number;
  /** most FISTA iterations of any row */
  maxIterations: number;
  /** unused atoms redrawn from the batch in this step */
  resampled: number;
}

export type FistaStepRecord = FistaStepStats & TrainingRecord;

/**
 * Dictionary learning with FISTA codes: online dictionary learning (Mairal, Bach, Ponce &
 * Sapiro 2009), as scikit-learn's MiniBatchDictionaryLearning does it. Each step codes the
 * batch by FISTA (as FistaCoder does), adds the batch to the decayed statistics
 * A = sum z^T z and B = sum z^T x (scikit-learn's forgetting schedule), and updates every
 * atom by one pass of block coordinate descent, d_k += (B_k - A_k D) / A_kk, projected to
 * unit norm. Atoms no row uses (A_kk below 1e-6 of the batch's mean ||x||^2) are redrawn
 * from a random batch row plus 1% noise.
 *
 * Block coordinate descent rather than a projected gradient step: each atom update is the
 * exact minimiser of the surrogate over that atom, so there is no step size to tune, and
 * the statistics make every step use all data seen so far, not just the batch.
 *
 * With Matrix data, each row's solve starts from the codes that row got the last time it
 * was seen in this `fit` call (warm start); batches from an iterable start from zero.
 */
export class FistaDictionary extends NativeModel<NativeFista> implements DictionaryModel {
  readonly dIn: number;
  readonly dHidden: number;
  readonly lambda: number;
  readonly maxIter: number;
  readonly tol: number;
  readonly gapTol: number;
  readonly nonNegative: boolean;
  readonly seed: number;
  readonly device: Device;
  readonly threads: number;

  readonly #random: Random;

  constructor(options: FistaDictionaryOptions) {
    if (!is.isObject(options)) throw is.typeError('options', 'object', options);
    is.knownKeys('FistaDictionary', options, dictionaryOptionNames);
    const dIn = is.integer('dIn', options.dIn, 1, 2 ** 31 - 1);
    const dHidden = is.integer('dHidden', options.dHidden, 1, 2 ** 31 - 1);
    const settings = checkSolverOptions(options);
    const nonNegative = options.nonNegative === undefined ? true : is.boolean('nonNegative', options.nonNegative);
    const seed = options.seed === undefined ? 0 : is.integer('seed', options.seed, 0);
    requireBackend(settings.device, 'a FistaDictionary');
    super('FistaDictionary', new addon.NativeFista(nativeConfig({ dIn, dHidden }, settings, { nonNegative, learning: true, seed })));
    this.dIn = dIn;
    this.dHidden = dHidden;
    this.lambda = settings.lambda;
    this.maxIter = settings.maxIter;
    this.tol = settings.tol;
    this.gapTol = settings.gapTol;
    this.nonNegative = nonNegative;
    this.seed = seed;
    this.device = settings.device;
    this.threads = settings.threads;
    this.#random = new Random(seed + 0x5eed);
  }

  /** Number of dictionary updates so far. */
  get stepsTaken(): number {
    return this.disposed ? 0 : this.usable().stepsTaken;
  }

  /**
   * Learns from a Matrix (cut into batches of `batchSize` rows, reshuffled every epoch from
   * the seed) or from the batches an iterable yields, for `steps` steps or `epochs` passes.
   * Resolves to one record per step.
   */
  fit(data: TrainingData, options: FitOptions): Promise<FistaStepRecord[]> {
    return this.enqueue(() => {
      const run = prepareTraining(
        {
          name: 'FistaDictionary.fit',
          dIn: this.dIn,
          random: this.#random,
          step: (values, rows, { rowIds }) => this.usable().learnStep(values, rows, rowIds ?? null),
          checkUsable: () => void this.usable(),
        },
        data,
        options,
      );
      return (native) => {
        // Row ids name rows of this call's data only.
        native.forgetCodes();
        return run();
      };
    });
  }

  /** FISTA codes [rows, dHidden] of each row of x against the current dictionary. */
  async encode(x: Matrix): Promise<Matrix> {
    return (await this.enqueue(() => prepareEncode('FistaDictionary.encode', this.dIn, this.dHidden, x, undefined))).codes;
  }

  /** The L of the step 1/L for the current dictionary. */
  lipschitz(): Promise<number> {
    return this.enqueue(() => (native) => native.lipschitz());
  }

  /** [dHidden, dIn]: the atoms, unit rows, as a copy. */
  dictionary(): Matrix {
    return { rows: this.dHidden, cols: this.dIn, data: this.usable().getDictionary() };
  }
}
