import type { Matrix } from './matrix.js';

/** 'cuda' is the first GPU the CUDA runtime sees, 'cuda:N' the one at index N (see `backends()`). */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** What every training call reports per step; each model adds its own fields. */
export interface TrainingRecord {
  /** 1-based step number within this `fit` call. */
  step: number;
  loss: number;
  /** Mean number of active (non-zero) code units per row. */
  l0: number;
}

export interface Progress {
  step: number;
  totalSteps: number;
  samplesSeen: number;
  loss: number;
  l0: number;
  samplesPerSecond: number;
}

export interface FitOptions {
  /** Number of steps (batches) to train. Exactly one of `steps` and `epochs`. */
  steps?: number;
  /** Passes over a Matrix; not allowed with an iterable source. */
  epochs?: number;
  /** Rows per step when `data` is a Matrix (default 1024, at most the row count). */
  batchSize?: number;
  /** Called between steps, about five times a second and after the last step. */
  onProgress?: (progress: Progress) => void;
  /** Aborting stops training after the step in flight; `fit` then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type TrainingData = Matrix | AsyncIterable<Matrix> | Iterable<Matrix>;

/**
 * The shape shared by every learned model in saekit (SparseAutoencoder, and the FISTA and
 * RICA baselines), so that benchmarks, metrics and files treat them alike.
 */
export interface DictionaryModel {
  readonly dIn: number;
  readonly dHidden: number;
  readonly device: Device;
  fit(data: TrainingData, options: FitOptions): Promise<TrainingRecord[]>;
  /** Codes for each row of x: [x.rows, dHidden]. */
  encode(x: Matrix): Promise<Matrix>;
  /** [dHidden, dIn]: one learned feature direction per row, as a copy. */
  dictionary(): Matrix;
  /** Frees native memory; any later call throws. */
  dispose(): void;
}
