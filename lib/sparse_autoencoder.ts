import { availableParallelism } from 'node:os';

import { requireBackend } from './backends.js';
import { checkMatrix, checkSparseMatrix, isSparseMatrix, type Matrix, type SparseMatrix } from './matrix.js';
import type { Device, DictionaryModel, FitOptions, TrainingData, TrainingRecord } from './model.js';
import { addon, type NativeGradients, type NativeSae, type ParameterName, type ParameterSlot } from './native.js';
import { NativeModel } from './native_model.js';
import { Random } from './random.js';
import { resolveCheckpoint, writeDirectoryAtomic } from './checkpoint_dir.js';
import { CheckpointError, readSnapshot, snapshotToFiles, type SaeSnapshot, type TensorName } from './saelens_format.js';
import { NpyBatches } from './npy_batches.js';
import { checkSaeFitExtras, columnMean, geometricMedian, makeSchedule, saeFitExtraNames, type DecoderBiasInit, type SaeFitExtras } from './sae_training.js';
import { prepareTraining } from './training.js';
import { packageVersion } from './version.js';
import * as is from './validate.js';

/**
 * The options of a SparseAutoencoder: with the ReLU activation (the default) `l1Coeff` is
 * required; with TopK and BatchTopK `k` is, and the L1 term is off unless `l1Coeff` is given.
 */
export type SparseAutoencoderOptions = SparseAutoencoderSettings &
  ({ activation?: 'relu'; l1Coeff: number } | { activation: 'topk' | 'batchtopk'; k: number; l1Coeff?: number });

export interface SparseAutoencoderSettings {
  /** Input (activation) dimension d. */
  dIn: number;
  /** Dictionary size m: the number of hidden units, one feature direction each. */
  dHidden: number;
  /** One weight matrix: W_dec = W_enc^T. Default false. */
  tied?: boolean;
  /**
   * Subtract b_dec from the input before encoding (default true, the usual SAE). False gives
   * h = ReLU(x W_enc + b_enc), which some SAELens checkpoints use.
   */
  applyBDecToInput?: boolean;
  /**
   * Every input is multiplied by this before the SAE sees it, and reconstructions are divided
   * by it (default 1). Set automatically when `fit` reads an npyBatches stream with
   * normalize: 'expected-norm' (whose rows arrive already scaled).
   */
  inputScale?: number;
  /**
   * Weight of the L1 penalty on the codes (loss = mean ||x - xhat||^2 + l1Coeff * ||h||_1).
   * Required with the ReLU activation; with TopK and BatchTopK the default is 0 (no L1 term).
   */
  l1Coeff?: number;
  /**
   * 'relu' (default): h = ReLU(pre). 'topk': the k largest pre-activations of each row, then
   * ReLU (Gao et al. 2024, openai/sparse_autoencoder). 'batchtopk': in training the k * rows
   * largest of the whole batch, then ReLU; at inference the pre-activations above a threshold
   * tracked in training (Bussmann et al. 2024; dictionary_learning's batch_top_k.py).
   */
  activation?: 'relu' | 'topk' | 'batchtopk';
  /** Active units per row for 'topk', and on average for 'batchtopk'. */
  k?: number;
  /** 'batchtopk': EMA factor of the inference threshold (default 0.999, as dictionary_learning). */
  thresholdBeta?: number;
  /** 'batchtopk': steps before the threshold is tracked (default 1000, as dictionary_learning). */
  thresholdStartStep?: number;
  /**
   * The auxiliary loss for dead features (AuxK; Gao et al. 2024, computed as
   * dictionary_learning's TopK trainer does): each row's `k` largest ReLU'd pre-activations
   * among dead features (no activity in the last `deadWindow` training samples) reconstruct the
   * residual x - xhat (held fixed), and `coefficient` times that squared error over the
   * residual's variance across the batch joins the loss, so gradient reaches dead features.
   * Defaults: k = floor(dIn / 2), coefficient 1/32, deadWindow 10,000,000 (dictionary_learning's).
   * Off unless given.
   */
  auxk?: { k?: number; coefficient?: number; deadWindow?: number };
  /**
   * How b_dec is initialised, from the first training batch: 'zeros' (default), 'mean'
   * (sparsify) or 'geometric-median' (openai/sparse_autoencoder, dictionary_learning).
   */
  initDecoderBias?: DecoderBiasInit;
  /** Adam learning rate. Default 1e-3. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Seeds initialisation and data order. Default 0. */
  seed?: number;
  /**
   * 'cpu' (default), 'cuda' (an NVIDIA GPU; see `backends()` for whether this installation
   * can use one) or 'cuda:N' (the GPU at index N of `backends()`'s `gpus`). Both compute the
   * same model and training step.
   */
  device?: Device;
  /**
   * Arithmetic of the encoder product on 'cuda': 'tf32' (default) runs on the tensor cores,
   * rounding its inputs to TF32's 10-bit mantissa (relative error about 5e-4) and accumulating
   * in FP32; 'fp32' runs in FP32 on the ordinary CUDA cores, slower but as close to the CPU as
   * a different summation order allows. Everything after the encoder product is FP32 either
   * way. Ignored on 'cpu', which always computes in FP32.
   */
  precision?: 'tf32' | 'fp32';
  /** CPU threads for this model's work. Default: all cores (os.availableParallelism()). */
  threads?: number;
}

/** Statistics of one training step, computed on the batch before the update. */
export interface StepStats {
  /** mean over rows of ||x - xhat||^2 + l1Coeff * ||h||_1 */
  loss: number;
  /** mean over rows and coordinates of (x - xhat)^2, i.e. the loss's error term / dIn */
  mse: number;
  /** mean over rows of ||h||_1 */
  l1: number;
  /** mean over rows of the number of active units */
  l0: number;
  /** AuxK's term, included in loss (0 when AuxK is off or no feature is dead) */
  auxLoss: number;
}

export type StepRecord = StepStats & TrainingRecord;

/** One change to a feature's activation in `steer`: exactly one of scale, set or add. */
export type SteeringEdit =
  | { feature: number; scale: number; set?: undefined; add?: undefined }
  | { feature: number; set: number; scale?: undefined; add?: undefined }
  | { feature: number; add: number; scale?: undefined; set?: undefined };

let cpuKernelsForNextModel: string | undefined;

const optionNames = ['dIn', 'dHidden', 'tied', 'applyBDecToInput', 'inputScale', 'activation', 'k', 'thresholdBeta', 'thresholdStartStep', 'auxk', 'initDecoderBias', 'l1Coeff', 'lr', 'beta1', 'beta2', 'eps', 'seed', 'device', 'precision', 'threads'] as const;

/**
 * A sparse autoencoder trained with Adam in one fused native call per step:
 *
 *     h    = ReLU((x - b_dec) W_enc + b_enc)        W_enc [dIn, dHidden], b_enc [dHidden]
 *     xhat = h W_dec + b_dec                         W_dec [dHidden, dIn], b_dec [dIn]
 *     loss = mean over the batch of ||x - xhat||^2 + l1Coeff * ||h||_1
 *
 * The squared error is summed over a row's dIn coordinates. Decoder rows have unit norm:
 * before each Adam update the gradient component parallel to each row is removed, and after
 * it each row is renormalised. W_enc starts as W_dec's transpose; biases start at zero.
 *
 * Every asynchronous method copies its input when called and runs in a queue, one at a
 * time, in call order, off the main thread. The weight accessors are synchronous copies and
 * throw an Error with code 'BUSY' while a native step is running.
 */
export class SparseAutoencoder extends NativeModel<NativeSae> implements DictionaryModel {
  readonly dIn: number;
  readonly dHidden: number;
  readonly tied: boolean;
  readonly applyBDecToInput: boolean;
  readonly activation: 'relu' | 'topk' | 'batchtopk';
  /** 0 for 'relu'. */
  readonly k: number;
  readonly thresholdBeta: number;
  readonly thresholdStartStep: number;
  /** AuxK's settings, or undefined when it is off. */
  readonly auxk: AuxkSettings | undefined;
  readonly initDecoderBias: DecoderBiasInit;
  readonly l1Coeff: number;
  #inputScale: number;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly seed: number;
  readonly device: Device;
  readonly precision: 'tf32' | 'fp32';
  readonly threads: number;

  /**
   * Free-form metadata saved in cfg.json's `metadata` (SAELens keeps model_name, hook_name,
   * ... there); loaded back by `load`.
   */
  metadata: Record<string, unknown> = {};

  readonly #random: Random;
  #decoderBiasInitialised = false;

  constructor(options: SparseAutoencoderOptions) {
    const o = checkOptions(options);
    requireBackend(o.device, 'a SparseAutoencoder');
    super(
      'SparseAutoencoder',
      new addon.NativeSparseAutoencoder({
        dIn: o.dIn,
        dHidden: o.dHidden,
        tied: o.tied,
        applyBDecToInput: o.applyBDecToInput,
        activation: o.activation,
        k: o.k,
        thresholdBeta: o.thresholdBeta,
        thresholdStartStep: o.thresholdStartStep,
        ...(o.auxk !== undefined ? { auxK: o.auxk.k, auxKCoeff: o.auxk.coefficient, auxKWindow: o.auxk.deadWindow } : {}),
        l1Coeff: o.l1Coeff,
        lr: o.lr,
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        seed: o.seed,
        threads: o.threads,
        device: o.device,
        precision: o.precision,
        ...(cpuKernelsForNextModel !== undefined ? { cpuKernels: cpuKernelsForNextModel } : {}),
      }),
    );
    this.dIn = o.dIn;
    this.dHidden = o.dHidden;
    this.tied = o.tied;
    this.applyBDecToInput = o.applyBDecToInput;
    this.activation = o.activation;
    this.k = o.k;
    this.thresholdBeta = o.thresholdBeta;
    this.thresholdStartStep = o.thresholdStartStep;
    this.auxk = o.auxk;
    this.initDecoderBias = o.initDecoderBias;
    this.#inputScale = o.inputScale;
    this.l1Coeff = o.l1Coeff;
    this.lr = o.lr;
    this.beta1 = o.beta1;
    this.beta2 = o.beta2;
    this.eps = o.eps;
    this.seed = o.seed;
    this.device = o.device;
    this.precision = o.precision;
    this.threads = o.threads;
    this.#random = new Random(this.seed + 0x5eed);
  }

  /** The factor inputs are multiplied by before the SAE (see the option). */
  get inputScale(): number {
    return this.#inputScale;
  }

  /** Number of training steps applied so far. */
  get stepsTaken(): number {
    return this.disposed ? 0 : this.usable().stepsTaken;
  }

  /** One fused training step on `batch` ([rows >= 1, dIn]), off the main thread. */
  trainStep(batch: Matrix): Promise<StepStats> {
    return this.enqueue(() => {
      const b = checkMatrix('batch', batch, { value: this.dIn, label: 'dIn' }, 1);
      const native = this.usable();
      // An idle model's step starts before this returns, so a CUDA model can copy the batch
      // straight to the GPU here, on all cores: one copy where the step would make two (ours,
      // then its own to pinned memory). Anything else (a non-finite value, no room on the
      // GPU) goes the usual way, which also reports it.
      if (this.device !== 'cpu' && this.idle && !this.#decoderBiasPending(native) &&
          native.stageBatch(b.data, b.rows, this.#inputScale)) {
        return (usable) => usable.trainStep(b.data, b.rows);
      }
      const data = this.#scaledCopy(b.data);
      return (usable) => {
        this.#initialiseDecoderBias(usable, data, b.rows);
        return usable.trainStep(data, b.rows).finally(() => this.#reuse(data));
      };
    });
  }

  /**
   * Trains on a Matrix (cut into batches of `batchSize` rows, reshuffled every epoch from the
   * seed) or on the batches an iterable yields, for `steps` steps or `epochs` passes.
   * Resolves to one record per step. An iterable that ends early ends training early.
   */
  fit(data: TrainingData, options: FitOptions & SaeFitExtras): Promise<StepRecord[]> {
    return this.enqueue(() => {
      // A normalising npyBatches stream scales its rows itself; the model adopts its factor.
      const stream = data instanceof NpyBatches && data.normalize !== 'none' ? data : undefined;
      if (stream !== undefined && this.#inputScale !== 1) {
        throw new RangeError(
          `This SparseAutoencoder already has inputScale ${this.#inputScale}; read the data with normalize: 'none' (the model scales it) or train a new model`,
        );
      }
      const extras = checkSaeFitExtras(is.options('SparseAutoencoder.fit options', options));
      const scheduled = extras.lrWarmupSteps || extras.lrDecayFraction || extras.l1WarmupSteps;
      let schedule: ReturnType<typeof makeSchedule> | undefined;
      const run = prepareTraining(
        {
          name: 'SparseAutoencoder.fit',
          dIn: this.dIn,
          random: this.#random,
          extraOptions: saeFitExtraNames,
          // On a GPU each step copies the next batch there while it runs.
          stagesNextBatch: this.device !== 'cpu',
          // A normalising stream's batches come scaled.
          ...(stream === undefined ? { prepareBatch: (values: Float32Array) => scaleInPlace(values, this.#inputScale) } : {}),
          step: async (values, rows, { step, totalSteps, next }) => {
            const native = this.usable();
            if (stream !== undefined) this.#inputScale = stream.scale;
            this.#initialiseDecoderBias(native, values, rows);
            let lr: number | undefined;
            let l1Coeff: number | undefined;
            if (scheduled) {
              schedule ??= makeSchedule(extras, extras.scheduleEndStep ?? native.stepsTaken + totalSteps - step + 1);
              const n = native.stepsTaken + 1;
              lr = this.lr * schedule.lrFactor(n);
              l1Coeff = this.l1Coeff * schedule.l1Factor(n);
            }
            const stats = await native.trainStep(values, rows, lr, l1Coeff, next?.data, next?.rows);
            if (extras.resample !== undefined && step % extras.resample.every === 0) {
              const dead = this.#deadFeatures(native, extras.resample.window);
              if (dead.length > 0) await native.resample(dead, values, rows, this.seed * 7919 + native.stepsTaken);
            }
            return stats;
          },
          checkUsable: () => void this.usable(),
        },
        data,
        options,
      );
      return () => run();
    });
  }

  /**
   * The features that have not fired in the last `window` training samples (features that
   * have never fired count once `window` samples have been seen), in increasing order.
   * Tracked during training at the cost of one pass over the features per step.
   */
  deadFeatures(options: { window: number }): Int32Array {
    const opts = is.options('options', options);
    is.knownKeys('SparseAutoencoder.deadFeatures', opts, ['window']);
    return this.#deadFeatures(this.usable(), is.integer('options.window', opts.window, 1));
  }

  #deadFeatures(native: NativeSae, window: number): Int32Array {
    const { samplesSeen, lastFired } = native.getTrainingState();
    const dead: number[] = [];
    for (let j = 0; j < lastFired.length; j++) {
      const since = lastFired[j] < 0 ? samplesSeen : samplesSeen - lastFired[j];
      if (since >= window) dead.push(j);
    }
    return Int32Array.from(dead);
  }

  // b_dec from the first training batch, when initDecoderBias asks for it.
  #decoderBiasPending(native: NativeSae): boolean {
    return !(this.#decoderBiasInitialised || this.initDecoderBias === 'zeros' || native.stepsTaken > 0);
  }

  #initialiseDecoderBias(native: NativeSae, values: Float32Array, rows: number): void {
    if (!this.#decoderBiasPending(native)) return;
    this.#decoderBiasInitialised = true;
    const estimate = this.initDecoderBias === 'mean' ? columnMean(values, rows, this.dIn) : geometricMedian(values, rows, this.dIn);
    native.setParameter('decoderBias', Float32Array.from(estimate));
  }

  /** Codes h for each row of x: dense [rows, dHidden], or only the active units as CSR. */
  encode(x: Matrix): Promise<Matrix>;
  encode(x: Matrix, options: { format: 'sparse' }): Promise<SparseMatrix>;
  encode(x: Matrix, options?: { format?: 'dense' | 'sparse' }): Promise<Matrix | SparseMatrix>;
  encode(x: Matrix, options?: { format?: 'dense' | 'sparse' }): Promise<Matrix | SparseMatrix> {
    return this.enqueue<Matrix | SparseMatrix>(() => {
      const opts = is.options('options', options);
      is.knownKeys('SparseAutoencoder.encode', opts, ['format']);
      const format = opts.format === undefined ? 'dense' : is.oneOf('options.format', opts.format, ['dense', 'sparse'] as const);
      const input = checkMatrix('x', x, { value: this.dIn, label: 'dIn' });
      const data = this.#scaledCopy(input.data);
      const rows = input.rows;
      if (format === 'sparse') {
        return async (native) => ({ rows, cols: this.dHidden, ...(await native.encodeSparse(data, rows).finally(() => this.#reuse(data))) });
      }
      return async (native) => {
        const out = new Float32Array(rows * this.dHidden);
        await native.encode(data, rows, out).finally(() => this.#reuse(data));
        return { rows, cols: this.dHidden, data: out };
      };
    });
  }

  /** xhat = h W_dec + b_dec for dense codes [rows, dHidden] or sparse ones. */
  decode(codes: Matrix | SparseMatrix): Promise<Matrix> {
    return this.enqueue(() => {
      const cols = { value: this.dHidden, label: 'dHidden' };
      if (isSparseMatrix(codes)) {
        const c = checkSparseMatrix('codes', codes, cols);
        const [indptr, indices, values] = [c.indptr.slice(), c.indices.slice(), c.values.slice()];
        return async (native) => {
          const out = new Float32Array(c.rows * this.dIn);
          await native.decodeSparse(indptr, indices, values, c.rows, out);
          return { rows: c.rows, cols: this.dIn, data: scaleInPlace(out, 1 / this.#inputScale) };
        };
      }
      const c = checkMatrix('codes', codes, cols);
      const data = c.data.slice();
      return async (native) => {
        const out = new Float32Array(c.rows * this.dIn);
        await native.decode(data, c.rows, out);
        return { rows: c.rows, cols: this.dIn, data: scaleInPlace(out, 1 / this.#inputScale) };
      };
    });
  }

  /** decode(encode(x)) in one native call. */
  reconstruct(x: Matrix): Promise<Matrix> {
    return this.enqueue(() => {
      const input = checkMatrix('x', x, { value: this.dIn, label: 'dIn' });
      const data = this.#scaledCopy(input.data);
      return async (native) => {
        const out = new Float32Array(input.rows * this.dIn);
        await native.reconstruct(data, input.rows, out);
        return { rows: input.rows, cols: this.dIn, data: scaleInPlace(out, 1 / this.#inputScale) };
      };
    });
  }

  /**
   * Steering: encodes x, applies `edits` to the codes of every row, and returns
   * x + decode(edited codes) - decode(codes), i.e. the edited reconstruction plus the original
   * reconstruction error (x - xhat), so whatever the SAE does not explain passes through
   * unchanged. With no edits the result is x. Edits apply in order; each names a feature and
   * one of `scale` (multiply its activation: 0 ablates it), `set` (clamp it to a value) or
   * `add` (add to it).
   */
  steer(x: Matrix, edits: readonly SteeringEdit[] = []): Promise<Matrix> {
    return this.enqueue(() => {
      const input = checkMatrix('x', x, { value: this.dIn, label: 'dIn' });
      const data = this.#scaledCopy(input.data);
      const changes = checkEdits(edits, this.dHidden);
      return async (native) => {
        const { rows } = input;
        const codes = new Float32Array(rows * this.dHidden);
        await native.encode(data, rows, codes);
        const edited = codes.slice();
        for (let r = 0; r < rows; r++) {
          for (const edit of changes) {
            const k = r * this.dHidden + edit.feature;
            if (edit.scale !== undefined) edited[k] *= edit.scale;
            else if (edit.set !== undefined) edited[k] = edit.set;
            else edited[k] += edit.add as number;
          }
        }
        const before = new Float32Array(rows * this.dIn);
        const after = new Float32Array(rows * this.dIn);
        await native.decode(codes, rows, before);
        await native.decode(edited, rows, after);
        const out = input.data.slice();
        const unscale = 1 / this.#inputScale;
        for (let i = 0; i < out.length; i++) out[i] += (after[i] - before[i]) * unscale;
        return { rows, cols: this.dIn, data: out };
      };
    });
  }

  /** [dHidden, dIn]: each row one learned feature direction (the decoder weights), as a copy. */
  dictionary(): Matrix {
    return this.decoderWeights();
  }

  /** W_enc [dIn, dHidden], a copy (for a tied model, W_dec's transpose). */
  encoderWeights(): Matrix {
    return { rows: this.dIn, cols: this.dHidden, data: this.#parameter('encoderWeights') };
  }

  /** b_enc [dHidden], a copy. */
  encoderBias(): Float32Array {
    return this.#parameter('encoderBias');
  }

  /** W_dec [dHidden, dIn], a copy. */
  decoderWeights(): Matrix {
    return { rows: this.dHidden, cols: this.dIn, data: this.#parameter('decoderWeights') };
  }

  /** b_dec [dIn], a copy. */
  decoderBias(): Float32Array {
    return this.#parameter('decoderBias');
  }

  /**
   * Saves the model in the SAELens layout: `dir/sae_weights.safetensors` (float32 W_enc
   * [dIn, dHidden], b_enc, W_dec [dHidden, dIn], b_dec), `dir/cfg.json` (d_in, d_sae, dtype,
   * device, apply_b_dec_to_input, normalize_activations, architecture "standard",
   * metadata, and our own settings under "saekit"), and `dir/trainer_state.safetensors`
   * (Adam's moments and step count, so that training resumes exactly). Atomic as a whole:
   * the new files are written and flushed in a sibling directory that then replaces `dir`,
   * so a crash at any point leaves the previous checkpoint loadable (see checkpoint_dir.ts).
   * Runs in the model's queue, after the calls made before it.
   */
  save(dir: string): Promise<void> {
    return this.enqueue(() => {
      if (typeof dir !== 'string') throw is.typeError('dir', 'string', dir);
      if (dir.length === 0) throw is.rangeError('dir', 'non-empty string', dir);
      return async (native) => {
        const read = (name: ParameterName, slot: ParameterSlot) => native.getParameter(name, slot);
        const training = native.getTrainingState();
        const weights = {
          W_enc: read('encoderWeights', 'value'),
          b_enc: read('encoderBias', 'value'),
          W_dec: read('decoderWeights', 'value'),
          b_dec: read('decoderBias', 'value'),
        };
        const moments = (slot: ParameterSlot) => ({
          ...(this.tied ? {} : { W_enc: read('encoderWeights', slot) }),
          b_enc: read('encoderBias', slot),
          W_dec: read('decoderWeights', slot),
          b_dec: read('decoderBias', slot),
        });
        const snapshot: SaeSnapshot = {
          dIn: this.dIn,
          dHidden: this.dHidden,
          tied: this.tied,
          applyBDecToInput: this.applyBDecToInput,
          inputScale: this.#inputScale,
          activation: this.activation,
          k: this.k,
          threshold: training.threshold,
          thresholdBeta: this.thresholdBeta,
          thresholdStartStep: this.thresholdStartStep,
          ...(this.auxk !== undefined ? { auxk: this.auxk } : {}),
          firing: { samplesSeen: training.samplesSeen, lastFired: training.lastFired },
          hyperparameters: { l1Coeff: this.l1Coeff, lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, seed: this.seed },
          stepsTaken: native.stepsTaken,
          weights,
          optimizer: { m: moments('adamM'), v: moments('adamV') },
          metadata: this.metadata,
        };
        await writeDirectoryAtomic(dir, snapshotToFiles(snapshot, packageVersion));
      };
    });
  }

  /**
   * Loads a checkpoint written by `save`, by SAELens, or by anything writing that layout with
   * float32, float16, bfloat16 or float64 tensors. The model computes exactly what the file
   * describes: decoder rows are not renormalised (a warning says when they are not unit norm;
   * the constraint applies from the next training step), apply_b_dec_to_input is honoured,
   * and Adam's state is restored when the file has it. SAELens "topk" files load as TopK
   * models; other architectures (gated, jumprelu, ...) are refused with code
   * UNSUPPORTED_ARCHITECTURE. If a save was interrupted by
   * a crash, the swap it left half done is completed first.
   */
  static async load(dir: string, options: { device?: Device; precision?: 'tf32' | 'fp32'; threads?: number } = {}): Promise<SparseAutoencoder> {
    if (typeof dir !== 'string') throw is.typeError('dir', 'string', dir);
    if (dir.length === 0) throw is.rangeError('dir', 'non-empty string', dir);
    const opts = is.options('options', options);
    is.knownKeys('SparseAutoencoder.load', opts, ['device', 'precision', 'threads']);
    const s = await readSnapshot(await resolveCheckpoint(dir));
    const sae = new SparseAutoencoder({
      dIn: s.dIn,
      dHidden: s.dHidden,
      tied: s.tied,
      applyBDecToInput: s.applyBDecToInput,
      inputScale: s.inputScale,
      activation: s.activation,
      ...(s.activation !== 'relu' ? { k: s.k } : {}),
      thresholdBeta: s.thresholdBeta,
      thresholdStartStep: s.thresholdStartStep,
      ...(s.auxk !== undefined ? { auxk: s.auxk } : {}),
      ...s.hyperparameters,
      ...(opts as { device?: Device; precision?: 'tf32' | 'fp32'; threads?: number }),
    } as SparseAutoencoderOptions);
    try {
      if (s.tied) checkTiedWeights(s, dir);
      const write = (name: ParameterName, tensor: TensorName, slot: ParameterSlot, values: Float32Array | undefined) => {
        if (values !== undefined && !(s.tied && tensor === 'W_enc')) sae._setParameter(name, values, slot);
      };
      const names: Array<[ParameterName, TensorName]> = [
        ['encoderWeights', 'W_enc'],
        ['encoderBias', 'b_enc'],
        ['decoderWeights', 'W_dec'],
        ['decoderBias', 'b_dec'],
      ];
      for (const [name, tensor] of names) {
        write(name, tensor, 'value', s.weights[tensor]);
        write(name, tensor, 'adamM', s.optimizer?.m[tensor]);
        write(name, tensor, 'adamV', s.optimizer?.v[tensor]);
      }
      sae.usable().setStepsTaken(s.stepsTaken);
      const firing = s.firing ?? { samplesSeen: 0, lastFired: new Float64Array(s.dHidden).fill(-1) };
      sae.usable().setTrainingState(firing.samplesSeen, firing.lastFired, s.threshold);
      sae.#decoderBiasInitialised = s.stepsTaken > 0;
      sae.metadata = s.metadata;
      warnIfNotUnitNorm(s, dir);
    } catch (error) {
      sae.dispose();
      throw error;
    }
    return sae;
  }

  /** @internal A model on a chosen CPU kernel set ("generic", "avx2"), for tests. */
  static _withCpuKernels(options: SparseAutoencoderOptions, cpuKernels: string): SparseAutoencoder {
    cpuKernelsForNextModel = cpuKernels;
    try {
      return new SparseAutoencoder(options);
    } finally {
      cpuKernelsForNextModel = undefined;
    }
  }

  /** @internal One training step with a given lr and l1Coeff (tests of the schedules). */
  _trainStepWith(batch: Matrix, lr: number, l1Coeff: number): Promise<StepStats> {
    return this.enqueue(() => {
      const b = checkMatrix('batch', batch, { value: this.dIn, label: 'dIn' }, 1);
      const data = this.#scaledCopy(b.data);
      return (native) => native.trainStep(data, b.rows, lr, l1Coeff);
    });
  }

  /** @internal Gradients of the loss on `batch` without an update (tests only). */
  _gradients(batch: Matrix): Promise<NativeGradients> {
    return this.enqueue(() => {
      const b = checkMatrix('batch', batch, { value: this.dIn, label: 'dIn' }, 1);
      const data = b.data.slice();
      return (native) => native.gradients(data, b.rows);
    });
  }

  /** @internal Overwrites one parameter or one of its Adam moments (tests, and loading saved models). */
  _setParameter(name: ParameterName, values: Float32Array, slot: ParameterSlot = 'value'): void {
    this.usable().setParameter(name, values, slot);
  }

  // Calls copy their input when they are made (the caller may reuse its array at once), scaled
  // by inputScale. trainStep and encode hand their copy back (#reuse) once the native call is
  // done with it: for a GPT-2-sized SAE a batch is 12 MB, and allocating (and zeroing) that on
  // every call costs several times more than copying into a buffer we have.
  #spareInputs: Float32Array[] = [];

  #scaledCopy(values: Float32Array): Float32Array {
    const index = this.#spareInputs.findIndex((spare) => spare.length === values.length);
    const copy = index >= 0 ? this.#spareInputs.splice(index, 1)[0]! : new Float32Array(values.length);
    copy.set(values);
    return scaleInPlace(copy, this.#inputScale);
  }

  #reuse(values: Float32Array): void {
    this.#spareInputs.push(values);
    if (this.#spareInputs.length > 2) this.#spareInputs.shift();
  }

  #parameter(name: ParameterName): Float32Array {
    return this.usable().getParameter(name);
  }
}

function checkAuxk(value: unknown, dIn: number, dHidden: number): AuxkSettings | undefined {
  if (value === undefined) return undefined;
  if (!is.isObject(value)) throw is.typeError('auxk', '{ k?, coefficient?, deadWindow? }', value);
  is.knownKeys('auxk', value, ['k', 'coefficient', 'deadWindow']);
  return {
    k: value.k === undefined ? Math.max(1, Math.min(dHidden, Math.floor(dIn / 2))) : is.integer('auxk.k', value.k, 1, dHidden),
    coefficient: value.coefficient === undefined ? 1 / 32 : is.nonNegativeNumber('auxk.coefficient', value.coefficient),
    deadWindow: value.deadWindow === undefined ? 10_000_000 : is.integer('auxk.deadWindow', value.deadWindow, 1),
  };
}

function checkEdits(edits: unknown, dHidden: number): SteeringEdit[] {
  if (!Array.isArray(edits)) throw is.typeError('edits', 'array of { feature, scale | set | add }', edits);
  return edits.map((edit: unknown, i) => {
    const name = `edits[${i}]`;
    if (!is.isObject(edit)) throw is.typeError(name, '{ feature, scale | set | add }', edit);
    is.knownKeys(`steering edit ${name}`, edit, ['feature', 'scale', 'set', 'add']);
    const feature = is.integer(`${name}.feature`, edit.feature, 0, dHidden - 1);
    const given = (['scale', 'set', 'add'] as const).filter((key) => edit[key] !== undefined);
    if (given.length !== 1) {
      throw new TypeError(`Expected exactly one of scale, set and add in ${name} but received ${given.length === 0 ? 'none' : given.join(' and ')}`);
    }
    const key = given[0];
    return { feature, [key]: is.finiteNumber(`${name}.${key}`, edit[key]) } as unknown as SteeringEdit;
  });
}

function scaleInPlace(values: Float32Array, factor: number): Float32Array {
  if (factor !== 1) for (let i = 0; i < values.length; i++) values[i] *= factor;
  return values;
}

function checkTiedWeights(s: SaeSnapshot, dir: string): void {
  const { dIn, dHidden } = s;
  for (let i = 0; i < dIn; i++) {
    for (let j = 0; j < dHidden; j++) {
      if (s.weights.W_enc[i * dHidden + j] !== s.weights.W_dec[j * dIn + i]) {
        throw new CheckpointError(
          'CHECKPOINT_TIED_MISMATCH',
          `${dir}: cfg.json says the model is tied but W_enc[${i}, ${j}] differs from W_dec[${j}, ${i}]`,
        );
      }
    }
  }
}

function warnIfNotUnitNorm(s: SaeSnapshot, dir: string): void {
  let off = 0;
  let worst = 0;
  for (let j = 0; j < s.dHidden; j++) {
    let norm2 = 0;
    for (let i = 0; i < s.dIn; i++) norm2 += s.weights.W_dec[j * s.dIn + i] ** 2;
    const deviation = Math.abs(Math.sqrt(norm2) - 1);
    if (deviation > 1e-3) off++;
    worst = Math.max(worst, deviation);
  }
  if (off > 0) {
    process.emitWarning(
      `${dir}: ${off} of ${s.dHidden} decoder rows are not unit norm (largest deviation ${worst.toPrecision(3)}); ` +
        'they are kept as saved, and training renormalises them from its next step',
      { code: 'SAEKIT_DECODER_NORM' },
    );
  }
}

interface AuxkSettings {
  k: number;
  coefficient: number;
  deadWindow: number;
}

type ResolvedOptions = Omit<Required<SparseAutoencoderOptions>, 'auxk'> & { auxk: AuxkSettings | undefined };

function checkOptions(options: SparseAutoencoderOptions): ResolvedOptions {
  if (!is.isObject(options)) throw is.typeError('options', 'object', options);
  is.knownKeys('SparseAutoencoder', options, optionNames);
  const dIn = is.integer('dIn', options.dIn, 1, 2 ** 31 - 1);
  const dHidden = is.integer('dHidden', options.dHidden, 1, 2 ** 31 - 1);
  const activation = options.activation === undefined ? 'relu' : is.oneOf('activation', options.activation, ['relu', 'topk', 'batchtopk'] as const);
  return {
    dIn,
    dHidden,
    tied: options.tied === undefined ? false : is.boolean('tied', options.tied),
    applyBDecToInput: options.applyBDecToInput === undefined ? true : is.boolean('applyBDecToInput', options.applyBDecToInput),
    inputScale: options.inputScale === undefined ? 1 : is.positiveNumber('inputScale', options.inputScale),
    activation,
    k: activation === 'relu' ? (options.k === undefined ? 0 : is.integer('k', options.k, 1, dHidden)) : is.integer('k', options.k, 1, dHidden),
    thresholdBeta: options.thresholdBeta === undefined ? 0.999 : is.numberInRange('thresholdBeta', options.thresholdBeta, 0, 1, true),
    thresholdStartStep: options.thresholdStartStep === undefined ? 1000 : is.integer('thresholdStartStep', options.thresholdStartStep, 0),
    auxk: checkAuxk(options.auxk, dIn, dHidden),
    initDecoderBias: options.initDecoderBias === undefined ? 'zeros' : is.oneOf('initDecoderBias', options.initDecoderBias, ['zeros', 'mean', 'geometric-median'] as const),
    l1Coeff: activation !== 'relu' && options.l1Coeff === undefined ? 0 : is.nonNegativeNumber('l1Coeff', options.l1Coeff),
    lr: options.lr === undefined ? 1e-3 : is.positiveNumber('lr', options.lr),
    beta1: options.beta1 === undefined ? 0.9 : is.numberInRange('beta1', options.beta1, 0, 1, true),
    beta2: options.beta2 === undefined ? 0.999 : is.numberInRange('beta2', options.beta2, 0, 1, true),
    eps: options.eps === undefined ? 1e-8 : is.positiveNumber('eps', options.eps),
    seed: options.seed === undefined ? 0 : is.integer('seed', options.seed, 0),
    device: options.device === undefined ? 'cpu' : is.device('device', options.device),
    precision: options.precision === undefined ? 'tf32' : is.oneOf('precision', options.precision, ['tf32', 'fp32'] as const),
    threads: options.threads === undefined ? availableParallelism() : is.integer('threads', options.threads, 1, 1024),
  };
}
