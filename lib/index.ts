export { SparseAutoencoder } from './sparse_autoencoder.js';
export type { SparseAutoencoderOptions, StepStats, StepRecord } from './sparse_autoencoder.js';
export { ToyDataset } from './toy_dataset.js';
export type { ToyDatasetOptions } from './toy_dataset.js';
export { backends, BackendUnavailableError } from './backends.js';
export type { BackendInfo } from './backends.js';
export type { Matrix, SparseMatrix } from './matrix.js';
export type { Device, DictionaryModel, FitOptions, Progress, TrainingData, TrainingRecord } from './model.js';
export * as metrics from './metrics.js';
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
