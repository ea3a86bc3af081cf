// Loads the compiled addon and describes what it exports. Nothing outside lib/ touches it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device } from './model.js';

export interface NativeStats {
  loss: number;
  mse: number;
  l1: number;
  l0: number;
  auxLoss: number;
}

export interface NativeGradients extends NativeStats {
  encoderWeights: Float32Array | null;
  encoderBias: Float32Array;
  decoderWeights: Float32Array;
  decoderBias: Float32Array;
}

export type ParameterName = 'encoderWeights' | 'encoderBias' | 'decoderWeights' | 'decoderBias';
/** A parameter's value, or Adam's first (adamM) or second (adamV) moment for it, in the same layout. */
export type ParameterSlot = 'value' | 'adamM' | 'adamV';

export interface NativeSaeConfig {
  dIn: number;
  dHidden: number;
  tied: boolean;
  applyBDecToInput: boolean;
  activation: 'relu' | 'topk' | 'batchtopk';
  k: number;
  thresholdBeta: number;
  thresholdStartStep: number;
  /** AuxK: 0 off. */
  auxK?: number;
  auxKCoeff?: number;
  auxKWindow?: number;
  l1Coeff: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  threads: number;
  /** Kernel set for tests ("generic", "avx2"); the best available when absent. */
  cpuKernels?: string;
  /** 'cpu' when absent; 'cuda' or 'cuda:N' for a GPU. */
  device?: Device;
  /** The encoder product's arithmetic on CUDA; 'tf32' when absent. */
  precision?: 'tf32' | 'fp32';
}

export interface NativeSae {
  readonly stepsTaken: number;
  readonly busy: boolean;
  readonly device: string;
  /** Native memory (GPU memory too, on CUDA) held now, as reported to V8; 0 once disposed. */
  readonly bytesHeld: number;
  /**
   * lr and l1Coeff, when given, replace the configured values for this step (schedules).
   * `next` ([nextRows, dIn]) is the batch the following trainStep will be given, the same
   * array, unchanged: a CUDA model copies it to the GPU while this step runs.
   */
  trainStep(
    data: Float32Array,
    rows: number,
    lr?: number,
    l1Coeff?: number,
    next?: Float32Array,
    nextRows?: number,
  ): Promise<NativeStats>;
  /**
   * Synchronously copies `data` times `scale` to where the next trainStep given this same
   * array reads it (a CUDA model's GPU; the CPU backend has nothing to stage and returns
   * false). True when staged and every value is finite. Only on an idle model.
   */
  stageBatch(data: Float32Array, rows: number, scale: number): boolean;
  gradients(data: Float32Array, rows: number): Promise<NativeGradients>;
  encode(data: Float32Array, rows: number, out: Float32Array): Promise<void>;
  encodeSparse(data: Float32Array, rows: number): Promise<{ indptr: Int32Array; indices: Int32Array; values: Float32Array }>;
  decode(codes: Float32Array, rows: number, out: Float32Array): Promise<void>;
  decodeSparse(indptr: Int32Array, indices: Int32Array, values: Float32Array, rows: number, out: Float32Array): Promise<void>;
  reconstruct(data: Float32Array, rows: number, out: Float32Array): Promise<void>;
  getParameter(name: ParameterName, slot?: ParameterSlot): Float32Array;
  setParameter(name: ParameterName, values: Float32Array, slot?: ParameterSlot): void;
  setStepsTaken(steps: number): void;
  /** Dead-feature tracking (samples seen; when each feature last fired, -1 never) and BatchTopK's threshold. */
  getTrainingState(): { samplesSeen: number; lastFired: Float64Array; threshold: number };
  setTrainingState(samplesSeen: number, lastFired: Float64Array, threshold: number): void;
  /** Resamples dead `features` from rows of x; resolves to how many were resampled. */
  resample(features: Int32Array, x: Float32Array, rows: number, seed: number): Promise<number>;
  dispose(): void;
}

export interface NativeRicaStats {
  loss: number;
  sparsity: number;
  reconstruction: number;
  l0: number;
}

export interface NativeRicaConfig {
  dIn: number;
  dHidden: number;
  lambda: number;
  epsilon: number;
  normalizeRows: boolean;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  threads: number;
  cpuKernels?: string;
  /** 'cpu' when absent; 'cuda' or 'cuda:N' for a GPU. */
  device?: Device;
}

export interface NativeRica {
  readonly stepsTaken: number;
  readonly busy: boolean;
  readonly device: string;
  /** Native memory (GPU memory too, on CUDA) held now, as reported to V8; 0 once disposed. */
  readonly bytesHeld: number;
  /**
   * Cost on x at `weights` [dHidden, dIn] (not the model's own); its gradient into `gradient`.
   * `sameX`: x is the array of the previous call, unchanged since, so the backend may skip its
   * finite check and (on a GPU) its copy of x, if x and rows are what it last did them for.
   */
  costGradient(weights: Float32Array, x: Float32Array, rows: number, gradient: Float32Array, sameX: boolean): Promise<NativeRicaStats>;
  adamStep(batch: Float32Array, rows: number): Promise<NativeRicaStats>;
  encode(x: Float32Array, rows: number, out: Float32Array): Promise<void>;
  getWeights(): Float32Array;
  setWeights(weights: Float32Array): void;
  dictionary(): Float32Array;
  dispose(): void;
}

export interface NativeFistaConfig {
  dIn: number;
  dHidden: number;
  lambda: number;
  maxIter: number;
  tol: number;
  gapTol: number;
  nonNegative: boolean;
  /** true for FistaDictionary (atoms drawn from the seed, statistics allocated). */
  learning: boolean;
  seed: number;
  threads: number;
  cpuKernels?: string;
  /** 'cpu' when absent; 'cuda' or 'cuda:N' for a GPU. */
  device?: Device;
}

export interface NativeFistaRowResults {
  iterations: Int32Array;
  objective: Float64Array;
  gap: Float64Array;
  kkt: Float64Array;
  converged: Uint8Array;
}

export interface NativeFistaStepStats {
  loss: number;
  mse: number;
  l1: number;
  l0: number;
  iterations: number;
  maxIterations: number;
  resampled: number;
}

export interface NativeFista {
  readonly stepsTaken: number;
  readonly busy: boolean;
  readonly device: string;
  encode(data: Float32Array, rows: number, init: Float32Array | null, out: Float32Array): Promise<NativeFistaRowResults>;
  learnStep(data: Float32Array, rows: number, rowIds: Int32Array | null): Promise<NativeFistaStepStats>;
  lipschitz(): Promise<number>;
  forgetCodes(): void;
  getDictionary(): Float32Array;
  dispose(): void;
}

export interface BackendInfo {
  name: 'cpu' | 'cuda';
  built: boolean;
  available: boolean;
  /** Why the backend cannot run here (absent when it can). */
  reason?: string;
  /** The same as a code: what `requireBackend` bases its advice on. */
  cause?: BackendUnavailableCause;
  /** The GPU device 'cuda' runs on, when available. */
  gpu?: string;
  /** Every GPU the CUDA runtime sees, when available: index N is device 'cuda:N'. */
  gpus?: string[];
}

/**
 * not-built: compiled without CUDA; no-driver / driver-too-old: the NVIDIA driver is missing
 * or older than the CUDA runtime saekit was built with; no-device: no GPU; unsupported-gpu:
 * the GPU's architecture was not compiled for; error: the runtime failed otherwise.
 */
export type BackendUnavailableCause = 'not-built' | 'no-driver' | 'driver-too-old' | 'no-device' | 'unsupported-gpu' | 'error';

/** What the native toy data generator reads; see native/core/toy.h. */
export interface NativeToySpec {
  dim: number;
  numFeatures: number;
  features: Float32Array;
  probabilities: Float64Array;
  rank: number;
  loadings: Float32Array | null;
  thresholds: Float64Array | null;
  noise: number;
  magnitude: 'uniform' | 'exponential' | 'constant';
  seed: number;
  threads: number;
}

export interface NativeAddon {
  NativeSparseAutoencoder: new (config: NativeSaeConfig) => NativeSae;
  NativeRica: new (config: NativeRicaConfig) => NativeRica;
  /** The dictionary [dHidden, dIn] is required unless config.learning. */
  NativeFista: new (config: NativeFistaConfig, dictionary?: Float32Array) => NativeFista;
  backends(): BackendInfo[];
  /** The kernel set models use by default on this CPU. */
  cpuKernels(): string;
  /** Every kernel set this CPU can run, portable first. */
  cpuKernelSets(): string[];
  availableMemory(): number;
  checkFinite(data: Float32Array, cols: number, name: string): void;
  /** Fills samples [first, first + count) of the toy stream: x [count, dim], codes [count, numFeatures]. */
  toySample(spec: NativeToySpec, first: number, count: number, x: Float32Array, codes: Float32Array | null): void;
  /** The same off the main thread, without codes. */
  toySampleAsync(spec: NativeToySpec, first: number, count: number, x: Float32Array): Promise<void>;
  /** Phi^-1 of each value. */
  normalQuantile(p: Float64Array): Float64Array;
  /** out [aRows, bRows] = cosines between the rows of a [aRows, cols] and b [bRows, cols]. */
  cosineSimilarity(
    a: Float32Array,
    aRows: number,
    b: Float32Array,
    bRows: number,
    cols: number,
    out: Float32Array,
    threads: number,
  ): void;
  /** Row i of out [rowIds.length, cols] = row rowIds[i] of source [rows, cols]. */
  gatherRows(source: Float32Array, cols: number, rowIds: Int32Array, out: Float32Array): void;
  /** The passes of lib/lbfgs.ts over its vectors (native/cpu/lbfgs.h), off the main thread. */
  lbfgsDirection(
    g: Float64Array,
    s: Float64Array[],
    y: Float64Array[],
    rho: Float64Array,
    gamma: number,
    direction: Float64Array,
    threads: number,
  ): Promise<number>;
  lbfgsSteepest(g: Float64Array, direction: Float64Array, threads: number): Promise<{ slope: number; l1: number }>;
  lbfgsStep(out: Float64Array, origin: Float64Array, alpha: number, p: Float64Array, threads: number): Promise<void>;
  lbfgsSlope(g: Float64Array, p: Float64Array, threads: number): Promise<{ slope: number; gMax: number }>;
  lbfgsPair(
    s: Float64Array,
    y: Float64Array,
    x0: Float64Array,
    x1: Float64Array,
    g0: Float64Array,
    g1: Float64Array,
    threads: number,
  ): Promise<{ sy: number; ss: number; yy: number }>;
  /** out [m, n] = op(a) b: a is [m, k], or [k, m] when transposeA; b is [k, n]. Off the main thread. */
  matmul(a: Float32Array, transposeA: boolean, b: Float32Array, m: number, k: number, n: number, out: Float32Array, threads: number): Promise<void>;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeAddon {
  const candidates = [
    process.env.SAEKIT_ADDON,
    join(packageRoot, 'build', 'Release', 'saekit.node'),
    join(packageRoot, 'build', 'Debug', 'saekit.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    throw new Error(
      `saekit's native addon is not built (looked for ${candidates.join(', ')}). ` +
        `Run "npm rebuild saekit" (needs python3, make and a C++17 compiler).`,
    );
  }
  return createRequire(import.meta.url)(path) as NativeAddon;
}

export const addon: NativeAddon = load();
