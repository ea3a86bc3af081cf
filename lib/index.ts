export { SparseAutoencoder } from './sparse_autoencoder.js';
export type { SparseAutoencoderOptions, StepStats, StepRecord } from './sparse_autoencoder.js';
export { ToyDataset } from './toy_dataset.js';
export type { ToyCorrelation, ToyCorrelationOptions, ToyDatasetOptions, ToyMagnitude } from './toy_dataset.js';
export { backends, BackendUnavailableError } from './backends.js';
export type { BackendInfo } from './backends.js';
export type { Matrix, SparseMatrix } from './matrix.js';
export type { Device, DictionaryModel, FitOptions, Progress, TrainingData, TrainingRecord } from './model.js';
export * as metrics from './metrics.js';
