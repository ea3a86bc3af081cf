export { SparseAutoencoder } from './sparse_autoencoder.js';
export type { SparseAutoencoderOptions, SparseAutoencoderSettings, StepStats, StepRecord, SteeringEdit } from './sparse_autoencoder.js';
export { ToyDataset } from './toy_dataset.js';
export type { ToyCorrelation, ToyCorrelationOptions, ToyDatasetOptions, ToyMagnitude } from './toy_dataset.js';
export { backends, BackendUnavailableError } from './backends.js';
export type { BackendInfo, BackendUnavailableCause } from './backends.js';
export type { Matrix, SparseMatrix } from './matrix.js';
export type { Device, DictionaryModel, FitOptions, Progress, TrainingData, TrainingRecord } from './model.js';
export * as metrics from './metrics.js';
export { evaluate } from './evaluate.js';
export type { EvaluationReport } from './evaluate.js';
export { loadNpy, saveNpy } from './npy.js';
export { npyBatches, NpyBatches } from './npy_batches.js';
export type { NpyBatchesOptions } from './npy_batches.js';
export { Rica } from './rica.js';
export type { RicaOptimizer, RicaOptions, RicaRecord, RicaStats } from './rica.js';
export { lbfgs } from './lbfgs.js';
export type { Evaluation, LbfgsIteration, LbfgsOptions, LbfgsResult, LbfgsStopReason, Objective } from './lbfgs.js';
export * as patches from './patches.js';
export { FistaCoder, FistaDictionary } from './fista.js';
export type {
  FistaCoderOptions,
  FistaDictionaryOptions,
  FistaEncodeOptions,
  FistaResult,
  FistaSolverOptions,
  FistaStepRecord,
  FistaStepStats,
} from './fista.js';
