// Loads the compiled addon and describes what it exports. Nothing outside lib/ touches it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeStats {
  loss: number;
  mse: number;
  l1: number;
  l0: number;
}

export interface NativeGradients extends NativeStats {
  encoderWeights: Float32Array | null;
  encoderBias: Float32Array;
  decoderWeights: Float32Array;
  decoderBias: Float32Array;
}

export type ParameterName = 'encoderWeights' | 'encoderBias' | 'decoderWeights' | 'decoderBias';

export interface NativeSaeConfig {
  dIn: number;
  dHidden: number;
  tied: boolean;
  l1Coeff: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  seed: number;
  threads: number;
  /** Kernel set for tests ("generic", "avx2"); the best available when absent. */
  cpuKernels?: string;
}

export interface NativeSae {
  readonly stepsTaken: number;
  readonly busy: boolean;
  readonly device: string;
  trainStep(data: Float32Array, rows: number): Promise<NativeStats>;
  gradients(data: Float32Array, rows: number): Promise<NativeGradients>;
  encode(data: Float32Array, rows: number, out: Float32Array): Promise<void>;
  encodeSparse(data: Float32Array, rows: number): Promise<{ indptr: Int32Array; indices: Int32Array; values: Float32Array }>;
  decode(codes: Float32Array, rows: number, out: Float32Array): Promise<void>;
  decodeSparse(indptr: Int32Array, indices: Int32Array, values: Float32Array, rows: number, out: Float32Array): Promise<void>;
  reconstruct(data: Float32Array, rows: number, out: Float32Array): Promise<void>;
  getParameter(name: ParameterName): Float32Array;
  setParameter(name: ParameterName, values: Float32Array): void;
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
  reason?: string;
}

export interface NativeAddon {
  NativeSparseAutoencoder: new (config: NativeSaeConfig) => NativeSae;
  /** The dictionary [dHidden, dIn] is required unless config.learning. */
  NativeFista: new (config: NativeFistaConfig, dictionary?: Float32Array) => NativeFista;
  backends(): BackendInfo[];
  /** The kernel set models use by default on this CPU. */
  cpuKernels(): string;
  /** Every kernel set this CPU can run, portable first. */
  cpuKernelSets(): string[];
  saeStateBytes(dIn: number, dHidden: number, tied: boolean): number;
  availableMemory(): number;
  checkFinite(data: Float32Array, cols: number, name: string): void;
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
