// backends(): what this installation was built with and what can run here, and the
// BACKEND_UNAVAILABLE error a model on an unusable device throws, with why and what to do.
import { describe, expect, it } from 'vitest';

import { backendAdvice } from '../lib/backends.js';
import { backends, BackendUnavailableError, FistaCoder, FistaDictionary, Rica, SparseAutoencoder } from '../lib/index.js';
import { addon } from '../lib/native.js';

const cuda = backends().find((b) => b.name === 'cuda')!;

describe('backends()', () => {
  it('reports the CUDA backend as built when the install was asked for it (SAEKIT_CUDA=1, as CI sets)', () => {
    // A CUDA build that failed and fell back to the CPU would report built: false here.
    if (process.env.SAEKIT_CUDA === '1') expect(cuda.built).toBe(true);
    if (process.env.SAEKIT_CUDA === '0') expect(cuda.built).toBe(false);
  });

  it('says why CUDA cannot run, as a cause and a sentence, or names the GPU when it can', () => {
    if (cuda.available) {
      expect(cuda.gpu).toMatch(/\(compute capability \d+\.\d+\)$/);
      expect(cuda.reason).toBeUndefined();
      return;
    }
    expect(['not-built', 'no-driver', 'driver-too-old', 'no-device', 'unsupported-gpu', 'error']).toContain(cuda.cause);
    expect(cuda.built).toBe(cuda.cause !== 'not-built');
    expect(cuda.reason).toMatch(/\S/);
  });

  it('keeps the CPU entry as it was', () => {
    expect(backends()[0]).toEqual({ name: 'cpu', built: true, available: true });
  });
});

describe("device 'cuda' where CUDA cannot run", () => {
  it.skipIf(cuda.available)('throws BACKEND_UNAVAILABLE with the reason and the advice for its cause', () => {
    let error: unknown;
    try {
      new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0.1, device: 'cuda' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as BackendUnavailableError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as Error).message).toBe(`Cannot create a SparseAutoencoder on device 'cuda': ${cuda.reason}; ${backendAdvice(cuda.cause)}`);
  });

  it.skipIf(cuda.available).each([
    ['a Rica', () => new Rica({ dIn: 4, dHidden: 4, lambda: 0.1, device: 'cuda' })],
    ['a FistaCoder', () => new FistaCoder({ dictionary: { rows: 2, cols: 2, data: new Float32Array([1, 0, 0, 1]) }, lambda: 0.1, device: 'cuda' })],
    ['a FistaDictionary', () => new FistaDictionary({ dIn: 4, dHidden: 4, lambda: 0.1, device: 'cuda' })],
  ])('throws BACKEND_UNAVAILABLE for %s with the reason and the advice', (what, create) => {
    expect(create).toThrow(
      expect.objectContaining({
        code: 'BACKEND_UNAVAILABLE',
        message: `Cannot create ${what} on device 'cuda': ${cuda.reason}; ${backendAdvice(cuda.cause)}`,
      }),
    );
  });

  it('advises for each cause what to do', () => {
    expect(backendAdvice('not-built')).toMatch(/^reinstall saekit where the CUDA toolkit \(nvcc\) and cmake are on PATH/);
    expect(backendAdvice('no-driver')).toBe('install the NVIDIA driver on a machine with an NVIDIA GPU, or use device: "cpu"');
    expect(backendAdvice('driver-too-old')).toMatch(/^update the NVIDIA driver/);
    expect(backendAdvice('no-device')).toMatch(/^run on a machine with an NVIDIA GPU/);
    expect(backendAdvice('unsupported-gpu')).toMatch(/compute capability 8\.0 or newer.*SAEKIT_CUDA_ARCHS/);
    expect(backendAdvice('error')).toBe('use device: "cpu"');
    expect(backendAdvice(undefined)).toBe('use device: "cpu"');
    for (const cause of ['not-built', 'no-driver', 'driver-too-old', 'no-device', 'unsupported-gpu'] as const) {
      expect(backendAdvice(cause)).toMatch(/or use device: "cpu"$/);
    }
  });
});

describe("device 'cuda' reaches the native model", () => {
  // With a GPU the parity tests see where models run; this checks, on any machine, that each
  // model hands its device to the native constructor (a model that dropped it would run on the
  // CPU while reporting 'cuda'). The addon's constructor is replaced by one that records its
  // configuration, and backends() says CUDA is available.
  const identity = { rows: 2, cols: 2, data: new Float32Array([1, 0, 0, 1]) };
  it.each([
    ['SparseAutoencoder', 'NativeSparseAutoencoder', () => new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0.1, device: 'cuda' })],
    ['Rica', 'NativeRica', () => new Rica({ dIn: 4, dHidden: 4, lambda: 0.1, device: 'cuda' })],
    ['FistaCoder', 'NativeFista', () => new FistaCoder({ dictionary: identity, lambda: 0.1, device: 'cuda' })],
    ['FistaDictionary', 'NativeFista', () => new FistaDictionary({ dIn: 4, dHidden: 4, lambda: 0.1, device: 'cuda' })],
  ] as const)('%s passes device: "cuda" to %s', (_, constructorName, create) => {
    const native = addon as unknown as Record<string, unknown>;
    const saved = { construct: native[constructorName], backends: native.backends };
    let config: { device?: string } | undefined;
    native[constructorName] = function record(options: { device?: string }) {
      config = options;
      throw new Error('recorded');
    };
    native.backends = () => [
      { name: 'cpu', built: true, available: true },
      { name: 'cuda', built: true, available: true, gpu: 'test double' },
    ];
    try {
      expect(create).toThrow('recorded');
    } finally {
      native[constructorName] = saved.construct;
      native.backends = saved.backends;
    }
    expect(config?.device).toBe('cuda');
  });
});
