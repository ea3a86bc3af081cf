// backends(): what this installation was built with and what can run here, and the
// BACKEND_UNAVAILABLE error a model on an unusable device throws, with why and what to do.
import { describe, expect, it } from 'vitest';

import { backendAdvice } from '../lib/backends.js';
import { backends, BackendUnavailableError, FistaCoder, FistaDictionary, Rica, SparseAutoencoder, type Device } from '../lib/index.js';
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
      // Every GPU the runtime sees, 'cuda' (= 'cuda:0') first.
      expect(cuda.gpus?.[0]).toBe(cuda.gpu);
      for (const gpu of cuda.gpus!) expect(gpu).toMatch(/\(compute capability \d+\.\d+\)$/);
      expect(cuda.reason).toBeUndefined();
      return;
    }
    expect(cuda.gpus).toBeUndefined();
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

  it.skipIf(cuda.available)("says the same for 'cuda:N', naming the device asked for", () => {
    expect(() => new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0.1, device: 'cuda:1' })).toThrow(
      expect.objectContaining({
        code: 'BACKEND_UNAVAILABLE',
        message: `Cannot create a SparseAutoencoder on device 'cuda:1': ${cuda.reason}; ${backendAdvice(cuda.cause)}`,
      }),
    );
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

describe("device 'cuda' and 'cuda:N' reach the native model", () => {
  // With a GPU the parity tests see where models run; this checks, on any machine, that each
  // model hands its device to the native constructor (a model that dropped it would run on the
  // CPU, or on another GPU, while reporting the one asked for). The addon's constructor is
  // replaced by one that records its configuration, and backends() says two GPUs are available.
  const identity = { rows: 2, cols: 2, data: new Float32Array([1, 0, 0, 1]) };
  const models = [
    ['SparseAutoencoder', 'NativeSparseAutoencoder', (device: Device) => new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0.1, device })],
    ['Rica', 'NativeRica', (device: Device) => new Rica({ dIn: 4, dHidden: 4, lambda: 0.1, device })],
    ['FistaCoder', 'NativeFista', (device: Device) => new FistaCoder({ dictionary: identity, lambda: 0.1, device })],
    ['FistaDictionary', 'NativeFista', (device: Device) => new FistaDictionary({ dIn: 4, dHidden: 4, lambda: 0.1, device })],
  ] as const;

  // Runs `body` with the addon's `constructorName` recording its options and two test GPUs.
  function withTwoGpus(constructorName: string, body: () => void): { device?: string } | undefined {
    const native = addon as unknown as Record<string, unknown>;
    const saved = { construct: native[constructorName], backends: native.backends };
    let config: { device?: string } | undefined;
    native[constructorName] = function record(options: { device?: string }) {
      config = options;
      throw new Error('recorded');
    };
    native.backends = () => [
      { name: 'cpu', built: true, available: true },
      { name: 'cuda', built: true, available: true, gpu: 'test double 0', gpus: ['test double 0', 'test double 1'] },
    ];
    try {
      body();
    } finally {
      native[constructorName] = saved.construct;
      native.backends = saved.backends;
    }
    return config;
  }

  it.each(models.flatMap(([name, constructorName, create]) => (['cuda', 'cuda:0', 'cuda:1'] as const).map((device) => [name, device, constructorName, create] as const)))(
    '%s passes device: %j to the native constructor',
    (_, device, constructorName, create) => {
      const config = withTwoGpus(constructorName, () => expect(() => create(device)).toThrow('recorded'));
      expect(config?.device).toBe(device);
    },
  );

  it.each(models)("%s refuses a GPU index the runtime does not see, before the native constructor", (name, constructorName, create) => {
    const config = withTwoGpus(constructorName, () =>
      expect(() => create('cuda:2')).toThrow(
        expect.objectContaining({
          code: 'BACKEND_UNAVAILABLE',
          message:
            `Cannot create a ${name} on device 'cuda:2': the CUDA runtime sees 2 GPUs, 'cuda:0' to 'cuda:1'; choose one of those, ` +
            'or check CUDA_VISIBLE_DEVICES (which decides which GPUs are seen, and numbers them from 0)',
        }),
      ),
    );
    expect(config).toBeUndefined();
  });

  it.each(models)('%s checks the device name', (_, constructorName, create) => {
    const expected = "Expected 'cpu', 'cuda' or 'cuda:N' (N a GPU index) for device";
    withTwoGpus(constructorName, () => {
      for (const bad of ['gpu', 'CUDA', 'cuda:', 'cuda:01', 'cuda:-1', 'cuda:1.5', 'cuda: 1', 'cuda:2147483648', 'cuda:0 ']) {
        expect(() => create(bad as Device), bad).toThrow(new RangeError(`${expected} but received ${JSON.stringify(bad)} of type string`));
      }
      expect(() => create(1 as unknown as Device)).toThrow(TypeError);
    });
  });
});

describe('the native constructors check the device too', () => {
  // The TypeScript layer checks first; a call straight into the addon must still be refused
  // with an error, not crash or fall back to the CPU.
  it.each(['gpu', 'cuda:01', 'cuda:x', 'cuda:99999999999'])('rejects device %j with a RangeError', (device) => {
    const Native = (addon as unknown as { NativeRica: new (options: object) => unknown }).NativeRica;
    expect(() => new Native({ dIn: 2, dHidden: 2, seed: 0, threads: 1, lambda: 0.1, epsilon: 0.01, normalizeRows: true, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, device })).toThrow(
      new RangeError("Expected device 'cpu', 'cuda' or 'cuda:N' (N a GPU index, below 2^31)"),
    );
  });
});
