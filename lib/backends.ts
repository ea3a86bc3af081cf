import { addon, type BackendInfo, type BackendUnavailableCause } from './native.js';
import type { Device } from './model.js';
import { gpuIndex } from './validate.js';

export type { BackendInfo, BackendUnavailableCause };

/** Which compute backends this installation was built with, and which can run here (and why not). */
export function backends(): BackendInfo[] {
  return addon.backends();
}

export class BackendUnavailableError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

const advice: Record<BackendUnavailableCause, string> = {
  'not-built': 'reinstall saekit where the CUDA toolkit (nvcc) and cmake are on PATH (with SAEKIT_CUDA=1 a failed CUDA build is an error instead of a fall-back), or use device: "cpu"',
  'no-driver': 'install the NVIDIA driver on a machine with an NVIDIA GPU, or use device: "cpu"',
  'driver-too-old': 'update the NVIDIA driver to one that supports the CUDA version saekit was built with, or use device: "cpu"',
  'no-device': 'run on a machine with an NVIDIA GPU (and check CUDA_VISIBLE_DEVICES), or use device: "cpu"',
  'unsupported-gpu': "saekit's CUDA kernels need compute capability 8.0 or newer; on such a GPU reinstall saekit with SAEKIT_CUDA_ARCHS including its compute capability (e.g. SAEKIT_CUDA_ARCHS=80,86,89,90), or use device: \"cpu\"",
  error: 'use device: "cpu"',
};

/** The advice BACKEND_UNAVAILABLE gives for each cause. */
export function backendAdvice(cause: BackendUnavailableCause | undefined): string {
  return advice[cause ?? 'error'] ?? advice.error;
}

/** Throws BACKEND_UNAVAILABLE, saying why and what to do, unless `device` can run here. */
export function requireBackend(device: Device, what: string): void {
  const name = device === 'cpu' ? 'cpu' : 'cuda';
  const info = backends().find((b) => b.name === name);
  const prefix = `Cannot create ${what} on device '${device}'`;
  if (!info?.available) {
    throw new BackendUnavailableError(`${prefix}: ${info?.reason ?? 'unknown backend'}; ${backendAdvice(info?.cause)}`);
  }
  const index = gpuIndex(device);
  const count = info.gpus?.length ?? 1;
  if (index !== undefined && index >= count) {
    const seen = count === 1 ? "one GPU, 'cuda:0'" : `${count} GPUs, 'cuda:0' to 'cuda:${count - 1}'`;
    throw new BackendUnavailableError(
      `${prefix}: the CUDA runtime sees ${seen}; choose one of those, or check CUDA_VISIBLE_DEVICES (which decides which GPUs are seen, and numbers them from 0)`,
    );
  }
}
