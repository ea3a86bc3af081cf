import { addon, type BackendInfo } from './native.js';
import type { Device } from './model.js';

export type { BackendInfo };

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

/** Throws BACKEND_UNAVAILABLE, saying why and what to do, unless `device` can run here. */
export function requireBackend(device: Device, what: string): void {
  const info = backends().find((b) => b.name === device);
  if (info?.available) return;
  const reason = info?.reason ?? 'unknown backend';
  const advice = info?.built
    ? 'check that an NVIDIA GPU and a recent driver are present, or use device: "cpu"'
    : 'reinstall saekit on a machine with the CUDA toolkit (nvcc) and cmake, or use device: "cpu"';
  throw new BackendUnavailableError(`Cannot create ${what} on device '${device}': ${reason}; ${advice}`);
}
