// The SAELens checkpoint layout (jbloomAus/SAELens, sae_lens/saes/sae.py): a directory with
// sae_weights.safetensors (W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in],
// b_dec [d_in]) and cfg.json, plus our trainer_state.safetensors with Adam's moments so that
// training resumes exactly. Pure conversions between files and a snapshot of a model; the
// model class does the reading and writing of parameters.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { encodeSafetensors, parseSafetensors, type SafetensorsFile } from './safetensors.js';

export const weightsFile = 'sae_weights.safetensors';
export const configFile = 'cfg.json';
export const trainerStateFile = 'trainer_state.safetensors';
export const formatVersion = 1;

export type TensorName = 'W_enc' | 'b_enc' | 'W_dec' | 'b_dec';
export const tensorNames: readonly TensorName[] = ['W_enc', 'b_enc', 'W_dec', 'b_dec'];

export interface SaeSnapshot {
  dIn: number;
  dHidden: number;
  tied: boolean;
  applyBDecToInput: boolean;
  /** Inputs are multiplied by this before the SAE (1: raw activations). */
  inputScale: number;
  activation: 'relu' | 'topk' | 'batchtopk';
  k: number;
  /** BatchTopK: the inference threshold (-1 until estimated) and its EMA settings. */
  threshold: number;
  thresholdBeta: number;
  thresholdStartStep: number;
  /** AuxK's settings, when it is on. */
  auxk?: { k: number; coefficient: number; deadWindow: number };
  /** Dead-feature tracking: samples seen, and when each feature last fired (-1 never). */
  firing?: { samplesSeen: number; lastFired: Float64Array };
  hyperparameters: { l1Coeff: number; lr: number; beta1: number; beta2: number; eps: number; seed: number };
  stepsTaken: number;
  weights: Record<TensorName, Float32Array>;
  /** Adam's first and second moments per tensor (for a tied model, no W_enc entry). */
  optimizer?: { m: Partial<Record<TensorName, Float32Array>>; v: Partial<Record<TensorName, Float32Array>> };
  /** The cfg.json metadata object (model_name, hook_name, ... in SAELens). */
  metadata: Record<string, unknown>;
}

export class CheckpointError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CheckpointError';
    this.code = code;
  }
}

function shapeOf(name: TensorName, dIn: number, dHidden: number): number[] {
  switch (name) {
    case 'W_enc':
      return [dIn, dHidden];
    case 'b_enc':
      return [dHidden];
    case 'W_dec':
      return [dHidden, dIn];
    case 'b_dec':
      return [dIn];
  }
}

/**
 * The weights of the equivalent model on raw (unscaled) activations, which is what SAELens
 * expects in a file whose normalize_activations is "expected_average_only_in" (it folds the
 * scaling factor into the weights before saving): (s x - b_dec) W_enc = (x - b_dec / s)(s W_enc)
 * and (h W_dec + b_dec) / s = h (W_dec / s) + b_dec / s.
 */
function foldedWeights(s: SaeSnapshot): Record<TensorName, Float32Array> {
  if (s.inputScale === 1) return s.weights;
  const k = s.inputScale;
  return {
    W_enc: s.weights.W_enc.map((v) => v * k),
    b_enc: s.weights.b_enc,
    W_dec: s.weights.W_dec.map((v) => v / k),
    b_dec: s.weights.b_dec.map((v) => v / k),
  };
}

export function snapshotToFiles(s: SaeSnapshot, packageVersion: string): Record<string, Uint8Array> {
  // SAELens knows "topk" (with k); BatchTopK has no inference form there, so it is ours.
  const architecture = s.activation === 'relu' ? 'standard' : s.activation;
  const cfg = {
    architecture,
    ...(s.activation === 'topk' ? { k: s.k, activation_fn_kwargs: { k: s.k } } : {}),
    d_in: s.dIn,
    d_sae: s.dHidden,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: s.applyBDecToInput,
    normalize_activations: s.inputScale === 1 ? 'none' : 'expected_average_only_in',
    metadata: s.metadata,
    saekit: {
      format_version: formatVersion,
      package_version: packageVersion,
      tied: s.tied,
      l1_coefficient: s.hyperparameters.l1Coeff,
      lr: s.hyperparameters.lr,
      beta1: s.hyperparameters.beta1,
      beta2: s.hyperparameters.beta2,
      eps: s.hyperparameters.eps,
      seed: s.hyperparameters.seed,
      steps_taken: s.stepsTaken,
      input_scale: s.inputScale,
      activation: s.activation,
      k: s.k,
      threshold: s.threshold,
      threshold_beta: s.thresholdBeta,
      threshold_start_step: s.thresholdStartStep,
      ...(s.auxk !== undefined ? { auxk: { k: s.auxk.k, coefficient: s.auxk.coefficient, dead_window: s.auxk.deadWindow } } : {}),
    },
  };
  const folded = foldedWeights(s);
  const weights = Object.fromEntries(tensorNames.map((name) => [name, { shape: shapeOf(name, s.dIn, s.dHidden), data: folded[name] }]));
  const files: Record<string, Uint8Array> = {
    [configFile]: new TextEncoder().encode(`${JSON.stringify(cfg, null, 2)}\n`),
    [weightsFile]: encodeSafetensors(weights, { format: 'pt' }),
  };
  if (s.optimizer !== undefined) {
    const state: Record<string, { shape: number[]; data: Float32Array | Float64Array }> = {};
    if (s.firing !== undefined) state.last_fired = { shape: [s.dHidden], data: s.firing.lastFired };
    for (const name of tensorNames) {
      const m = s.optimizer.m[name];
      const v = s.optimizer.v[name];
      if (m === undefined || v === undefined) continue;
      state[`${name}.adam_m`] = { shape: shapeOf(name, s.dIn, s.dHidden), data: m };
      state[`${name}.adam_v`] = { shape: shapeOf(name, s.dIn, s.dHidden), data: v };
      // With folded weights in sae_weights, the exact training-space values live here.
      if (s.inputScale !== 1) state[`${name}.value`] = { shape: shapeOf(name, s.dIn, s.dHidden), data: s.weights[name] };
    }
    files[trainerStateFile] = encodeSafetensors(state, {
      steps_taken: String(s.stepsTaken),
      optimizer: 'adam',
      ...(s.firing !== undefined ? { samples_seen: String(s.firing.samplesSeen) } : {}),
    });
  }
  return files;
}

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}

function tensorFrom(file: SafetensorsFile, source: string, name: string, shape: number[]): Float32Array {
  const data = rawTensorFrom(file, source, name, shape);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

function rawTensorFrom(file: SafetensorsFile, source: string, name: string, shape: number[]): Float32Array | Float64Array {
  const tensor = file.tensors.get(name);
  if (tensor === undefined) {
    throw new CheckpointError('CHECKPOINT_MISSING_TENSOR', `${source}: missing tensor ${name} (it has ${[...file.tensors.keys()].join(', ') || 'none'})`);
  }
  if (tensor.shape.length !== shape.length || tensor.shape.some((n, i) => n !== shape[i])) {
    throw new CheckpointError(
      'CHECKPOINT_SHAPE_MISMATCH',
      `${source}: tensor ${name} has shape [${tensor.shape.join(', ')}] but cfg.json's d_in and d_sae require [${shape.join(', ')}]`,
    );
  }
  return tensor.data;
}

function positiveInteger(cfg: Record<string, unknown>, key: string, source: string): number {
  const value = cfg[key];
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new CheckpointError('CHECKPOINT_CONFIG', `${source}: expected a positive integer for ${key} but found ${JSON.stringify(value)}`);
  }
  return value as number;
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** Reads the checkpoint files in `dir` (already resolved against interrupted saves). */
export async function readSnapshot(dir: string): Promise<SaeSnapshot> {
  const cfgPath = join(dir, configFile);
  const cfgBytes = await readOptional(cfgPath);
  if (cfgBytes === undefined) throw new CheckpointError('CHECKPOINT_MISSING_FILE', `${cfgPath}: missing (not a SAELens/saekit checkpoint directory)`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(new TextDecoder().decode(cfgBytes)) as Record<string, unknown>;
  } catch (error) {
    throw new CheckpointError('CHECKPOINT_CONFIG', `${cfgPath}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new CheckpointError('CHECKPOINT_CONFIG', `${cfgPath}: not a JSON object`);
  const architecture = cfg.architecture ?? 'standard';
  if (architecture !== 'standard' && architecture !== 'topk' && architecture !== 'batchtopk') {
    throw new CheckpointError(
      'UNSUPPORTED_ARCHITECTURE',
      `${cfgPath}: architecture ${JSON.stringify(architecture)} is not supported by saekit (only "standard", "topk" and "batchtopk")`,
    );
  }
  // "expected_average_only_in" files hold weights with the scaling folded in (they act on raw
  // activations); normalisations applied at run time would change the function.
  const normalize = cfg.normalize_activations ?? 'none';
  if (normalize !== 'none' && normalize !== null && normalize !== 'expected_average_only_in') {
    throw new CheckpointError(
      'UNSUPPORTED_NORMALIZATION',
      `${cfgPath}: normalize_activations ${JSON.stringify(normalize)} is not supported ("none" and "expected_average_only_in" are); the model's function would change`,
    );
  }
  const dIn = positiveInteger(cfg, 'd_in', cfgPath);
  const dHidden = positiveInteger(cfg, 'd_sae', cfgPath);
  const ours = (typeof cfg.saekit === 'object' && cfg.saekit !== null ? cfg.saekit : {}) as Record<string, unknown>;
  if (typeof ours.format_version === 'number' && ours.format_version > formatVersion) {
    throw new CheckpointError('CHECKPOINT_VERSION', `${cfgPath}: saved by a newer saekit (format_version ${ours.format_version}; this one reads up to ${formatVersion})`);
  }
  const number = (value: unknown, fallback: number) => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);

  const weightsPath = join(dir, weightsFile);
  const weightBytes = await readOptional(weightsPath);
  if (weightBytes === undefined) throw new CheckpointError('CHECKPOINT_MISSING_FILE', `${weightsPath}: missing`);
  const file = parseSafetensors(weightBytes, weightsPath);
  const weights = Object.fromEntries(
    tensorNames.map((name) => [name, tensorFrom(file, weightsPath, name, shapeOf(name, dIn, dHidden))]),
  ) as Record<TensorName, Float32Array>;
  const tied = ours.tied === true;
  const activation = architecture === 'standard' ? 'relu' : (architecture as 'topk' | 'batchtopk');
  const kwargs = (typeof cfg.activation_fn_kwargs === 'object' && cfg.activation_fn_kwargs !== null ? cfg.activation_fn_kwargs : {}) as Record<string, unknown>;
  const k = activation === 'relu' ? 0 : number(cfg.k, number(kwargs.k, number(ours.k, 0)));
  if (activation !== 'relu' && !(Number.isSafeInteger(k) && k >= 1 && k <= dHidden)) {
    throw new CheckpointError('CHECKPOINT_CONFIG', `${cfgPath}: architecture "${architecture}" needs k in [1, d_sae] but found ${JSON.stringify(cfg.k ?? kwargs.k ?? ours.k)}`);
  }
  let inputScale = number(ours.input_scale, 1);
  if (!(inputScale > 0)) throw new CheckpointError('CHECKPOINT_CONFIG', `${cfgPath}: expected a positive saekit.input_scale but found ${JSON.stringify(ours.input_scale)}`);

  let optimizer: SaeSnapshot['optimizer'];
  let firing: SaeSnapshot['firing'];
  let stepsTaken = number(ours.steps_taken, 0);
  const statePath = join(dir, trainerStateFile);
  const stateBytes = await readOptional(statePath);
  if (stateBytes !== undefined) {
    const state = parseSafetensors(stateBytes, statePath);
    optimizer = { m: {}, v: {} };
    for (const name of tensorNames) {
      if (tied && name === 'W_enc') continue;
      optimizer.m[name] = tensorFrom(state, statePath, `${name}.adam_m`, shapeOf(name, dIn, dHidden));
      optimizer.v[name] = tensorFrom(state, statePath, `${name}.adam_v`, shapeOf(name, dIn, dHidden));
    }
    stepsTaken = Number(state.metadata.steps_taken ?? stepsTaken);
    if (state.tensors.has('last_fired')) {
      const lastFired = rawTensorFrom(state, statePath, 'last_fired', [dHidden]);
      firing = { samplesSeen: Number(state.metadata.samples_seen ?? 0), lastFired: Float64Array.from(lastFired) };
    }
    if (inputScale !== 1) {
      for (const name of tensorNames) {
        if (!(tied && name === 'W_enc')) weights[name] = tensorFrom(state, statePath, `${name}.value`, shapeOf(name, dIn, dHidden));
      }
      if (tied) weights.W_enc = transpose(weights.W_dec, dHidden, dIn);
    }
  } else if (inputScale !== 1) {
    // Only the folded weights: the raw-activation model, exactly.
    inputScale = 1;
  }
  return {
    dIn,
    dHidden,
    tied,
    applyBDecToInput: cfg.apply_b_dec_to_input !== false,
    inputScale,
    activation,
    k,
    threshold: number(ours.threshold, -1),
    thresholdBeta: number(ours.threshold_beta, 0.999),
    thresholdStartStep: number(ours.threshold_start_step, 1000),
    ...(typeof ours.auxk === 'object' && ours.auxk !== null
      ? (() => {
          const a = ours.auxk as Record<string, unknown>;
          return { auxk: { k: number(a.k, 1), coefficient: number(a.coefficient, 1 / 32), deadWindow: number(a.dead_window, 10_000_000) } };
        })()
      : {}),
    firing,
    hyperparameters: {
      // SAELens training configs call it l1_coefficient too; inference-only files may not have it.
      l1Coeff: number(ours.l1_coefficient, number(cfg.l1_coefficient, 0)),
      lr: number(ours.lr, 1e-3),
      beta1: number(ours.beta1, 0.9),
      beta2: number(ours.beta2, 0.999),
      eps: number(ours.eps, 1e-8),
      seed: number(ours.seed, 0),
    },
    stepsTaken,
    weights,
    optimizer,
    metadata: typeof cfg.metadata === 'object' && cfg.metadata !== null ? (cfg.metadata as Record<string, unknown>) : {},
  };
}
