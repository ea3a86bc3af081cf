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
}

export interface NativeRica {
  readonly stepsTaken: number;
  readonly busy: boolean;
  readonly device: string;
  /** Cost on x at `weights` [dHidden, dIn] (not the model's own); its gradient into `gradient`. */
  costGradient(weights: Float32Array, x: Float32Array, rows: number, gradient: Float32Array): Promise<NativeRicaStats>;
  adamStep(batch: Float32Array, rows: number): Promise<NativeRicaStats>;
  encode(x: Float32Array, rows: number, out: Float32Array): Promise<void>;
  getWeights(): Float32Array;
  setWeights(weights: Float32Array): void;
  dictionary(): Float32Array;
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
  NativeRica: new (config: NativeRicaConfig) => NativeRica;
  backends(): BackendInfo[];
  /** The kernel set models use by default on this CPU. */
  cpuKernels(): string;
  /** Every kernel set this CPU can run, portable first. */
  cpuKernelSets(): string[];
  saeStateBytes(dIn: number, dHidden: number, tied: boolean): number;
  availableMemory(): number;
  checkFinite(data: Float32Array, cols: number, name: string): void;
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
