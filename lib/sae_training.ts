// What SparseAutoencoder training adds to the shared loop: learning-rate and L1 schedules,
// dead-feature resampling settings, and decoder-bias initialisation from data.
import * as is from './validate.js';

export interface SaeFitExtras {
  /** Steps over which the learning rate ramps linearly from lr/lrWarmupSteps up to lr. Default 0 (none). */
  lrWarmupSteps?: number;
  /**
   * Fraction of the run over whose last steps the learning rate decays linearly to zero.
   * Default 0 (none); Anthropic's April 2024 recipe uses 0.2.
   */
  lrDecayFraction?: number;
  /**
   * Steps over which the L1 coefficient ramps linearly up to l1Coeff (SAELens's
   * l1_warm_up_steps). Default 0 (none); Anthropic's recipe ramps over the first 5% of steps.
   */
  l1WarmupSteps?: number;
  /**
   * The model's step count at which the run ends, for the schedules above (default: the
   * model's step count now plus this fit's steps). Give it when one run is split over several
   * fit calls, as the CLI does between checkpoints.
   */
  scheduleEndStep?: number;
  /**
   * Anthropic's resampling of dead features (as saprmarks/dictionary_learning does it): every
   * `every` steps, features that have not fired in the last `window` samples get new
   * directions drawn from the current batch, with probability proportional to each row's
   * squared reconstruction error. See SparseAutoencoder.resample.
   */
  resample?: { every: number; window: number };
}

export const saeFitExtraNames = ['lrWarmupSteps', 'lrDecayFraction', 'l1WarmupSteps', 'scheduleEndStep', 'resample'] as const;

export interface Schedule {
  /** Multipliers of lr and l1Coeff for the step that will bring the model to `stepNumber` steps. */
  lrFactor(stepNumber: number): number;
  l1Factor(stepNumber: number): number;
}

export function checkSaeFitExtras(options: Record<string, unknown>): SaeFitExtras {
  const extras: SaeFitExtras = {};
  if (options.lrWarmupSteps !== undefined) extras.lrWarmupSteps = is.integer('options.lrWarmupSteps', options.lrWarmupSteps, 0);
  if (options.lrDecayFraction !== undefined) extras.lrDecayFraction = is.numberInRange('options.lrDecayFraction', options.lrDecayFraction, 0, 1);
  if (options.l1WarmupSteps !== undefined) extras.l1WarmupSteps = is.integer('options.l1WarmupSteps', options.l1WarmupSteps, 0);
  if (options.scheduleEndStep !== undefined) extras.scheduleEndStep = is.integer('options.scheduleEndStep', options.scheduleEndStep, 1);
  if (options.resample !== undefined) {
    const r = options.resample;
    if (!is.isObject(r)) throw is.typeError('options.resample', '{ every, window }', r);
    is.knownKeys('options.resample', r, ['every', 'window']);
    extras.resample = { every: is.integer('options.resample.every', r.every, 1), window: is.integer('options.resample.window', r.window, 1) };
  }
  return extras;
}

export function makeSchedule(extras: SaeFitExtras, endStep: number): Schedule {
  const warmupLr = extras.lrWarmupSteps ?? 0;
  const warmupL1 = extras.l1WarmupSteps ?? 0;
  const decayStart = endStep * (1 - (extras.lrDecayFraction ?? 0));
  return {
    lrFactor(n) {
      let factor = warmupLr > 0 ? Math.min(1, n / warmupLr) : 1;
      if (n > decayStart && endStep > decayStart) factor *= Math.max(0, (endStep - n) / (endStep - decayStart));
      return factor;
    },
    l1Factor(n) {
      return warmupL1 > 0 ? Math.min(1, n / warmupL1) : 1;
    },
  };
}

export type DecoderBiasInit = 'zeros' | 'mean' | 'geometric-median';

/** The per-coordinate mean of the rows of data [rows, cols]. */
export function columnMean(data: Float32Array, rows: number, cols: number): Float64Array {
  const mean = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c] += data[r * cols + c];
  for (let c = 0; c < cols; c++) mean[c] /= rows;
  return mean;
}

/**
 * The geometric median of the rows (the point minimising the sum of Euclidean distances to
 * them) by Weiszfeld's iterations from the mean, as openai/sparse_autoencoder and
 * dictionary_learning initialise b_dec. A row that coincides with the estimate is skipped in
 * that iteration (Vardi & Zhang's fix).
 */
export function geometricMedian(data: Float32Array, rows: number, cols: number, maxIterations = 100, tolerance = 1e-7): Float64Array {
  let estimate = columnMean(data, rows, cols);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    const next = new Float64Array(cols);
    let weights = 0;
    for (let r = 0; r < rows; r++) {
      let distance = 0;
      for (let c = 0; c < cols; c++) distance += (data[r * cols + c] - estimate[c]) ** 2;
      distance = Math.sqrt(distance);
      if (distance < 1e-12) continue;
      const w = 1 / distance;
      weights += w;
      for (let c = 0; c < cols; c++) next[c] += w * data[r * cols + c];
    }
    if (weights === 0) break;
    let moved = 0;
    let size = 0;
    for (let c = 0; c < cols; c++) {
      next[c] /= weights;
      moved += (next[c] - estimate[c]) ** 2;
      size += next[c] ** 2;
    }
    estimate = next;
    if (Math.sqrt(moved) <= tolerance * Math.max(1, Math.sqrt(size))) break;
  }
  return estimate;
}
