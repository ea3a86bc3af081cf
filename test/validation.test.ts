// Every public entry point rejects bad arguments with a TypeError (wrong type) or RangeError
// (bad value) whose message names the parameter, the expectation and what was received.
import { describe, expect, it } from 'vitest';

import { backends, metrics, SparseAutoencoder, ToyDataset } from '../lib/index.js';

const base = { dIn: 4, dHidden: 6, l1Coeff: 0.1 };
const ok = { rows: 2, cols: 4, data: new Float32Array(8) };

function create(overrides: Record<string, unknown>): () => SparseAutoencoder {
  return () => new SparseAutoencoder({ ...base, ...overrides } as never);
}

describe('new SparseAutoencoder', () => {
  it.each([
    [{ dIn: 1.5 }, RangeError, 'Expected integer in [1, 2147483647] for dIn but received 1.5 of type number'],
    [{ dIn: '4' }, TypeError, 'Expected number for dIn but received "4" of type string'],
    [{ dIn: 0 }, RangeError, 'Expected integer in [1, 2147483647] for dIn but received 0 of type number'],
    [{ dHidden: -3 }, RangeError, 'Expected integer in [1, 2147483647] for dHidden but received -3 of type number'],
    [{ dHidden: undefined }, TypeError, 'Expected number for dHidden but received undefined'],
    [{ l1Coeff: undefined }, TypeError, 'Expected number for l1Coeff but received undefined'],
    [{ l1Coeff: -0.1 }, RangeError, 'Expected non-negative finite number for l1Coeff but received -0.1 of type number'],
    [{ l1Coeff: NaN }, RangeError, 'Expected non-negative finite number for l1Coeff but received NaN of type number'],
    [{ lr: 0 }, RangeError, 'Expected positive finite number for lr but received 0 of type number'],
    [{ lr: Infinity }, RangeError, 'Expected positive finite number for lr but received Infinity of type number'],
    [{ beta1: 1 }, RangeError, 'Expected number in [0, 1) for beta1 but received 1 of type number'],
    [{ beta2: -0.5 }, RangeError, 'Expected number in [0, 1) for beta2 but received -0.5 of type number'],
    [{ eps: 0 }, RangeError, 'Expected positive finite number for eps but received 0 of type number'],
    [{ seed: -1 }, RangeError, 'Expected non-negative integer for seed but received -1 of type number'],
    [{ seed: 0.5 }, RangeError, 'Expected non-negative integer for seed but received 0.5 of type number'],
    [{ tied: 'yes' }, TypeError, 'Expected boolean for tied but received "yes" of type string'],
    [{ device: 'gpu' }, RangeError, "Expected 'cpu', 'cuda' or 'cuda:N' (N a GPU index) for device but received \"gpu\" of type string"],
    [{ precision: 'fp16' }, RangeError, "Expected one of 'tf32', 'fp32' for precision but received \"fp16\" of type string"],
    [{ precision: 32 }, TypeError, "Expected one of 'tf32', 'fp32' for precision but received 32 of type number"],
    [{ threads: 0 }, RangeError, 'Expected integer in [1, 1024] for threads but received 0 of type number'],
    [{ l1coeff: 0.1 }, TypeError, "Unknown option 'l1coeff' for SparseAutoencoder; did you mean 'l1Coeff'?"],
    [{ learningRate: 0.1 }, TypeError, "Unknown option 'learningRate' for SparseAutoencoder"],
  ])('%o -> %s', (overrides, type, message) => {
    const make = create(overrides);
    expect(make).toThrow(type);
    expect(make).toThrow(message);
    expect(make).toThrowError(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
  });

  it('options must be an object', () => {
    expect(() => new SparseAutoencoder(undefined as never)).toThrow(new TypeError('Expected object for options but received undefined'));
    expect(() => new SparseAutoencoder([] as never)).toThrow(new TypeError('Expected object for options but received an Array of length 0'));
  });

  it('refuses a model that does not fit in memory, saying how much it needs', () => {
    let error: unknown;
    try {
      new SparseAutoencoder({ dIn: 2_000_000_000, dHidden: 2_000_000_000, l1Coeff: 0.1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(
      /^A SparseAutoencoder with dIn 2000000000 and dHidden 2000000000 \(parameters and optimizer state\) needs [\d.]+ [KMGTPE]iB of memory but only [\d.]+ [KMGTPE]?i?B is available$/,
    );
  });

  it("device 'cuda' without a CUDA build throws BACKEND_UNAVAILABLE saying why", () => {
    const cuda = backends().find((b) => b.name === 'cuda')!;
    if (cuda.available) return;
    expect(() => new SparseAutoencoder({ ...base, device: 'cuda' })).toThrow(
      expect.objectContaining({ code: 'BACKEND_UNAVAILABLE', message: expect.stringContaining(cuda.reason!) }),
    );
  });
});

describe('batches and matrices', () => {
  const sae = new SparseAutoencoder(base);
  it.each([
    [undefined, TypeError, 'Expected Matrix { rows, cols, data } for batch but received undefined'],
    [{ rows: 2, cols: 4, data: new Float64Array(8) }, TypeError, 'Expected Float32Array for batch.data but received Float64Array of length 8'],
    [{ rows: 2, cols: 4, data: [1, 2] }, TypeError, 'Expected Float32Array for batch.data but received an Array of length 2'],
    [{ rows: 2, cols: 4, data: new Float32Array(7) }, RangeError, 'Expected batch.data.length to equal batch.rows * batch.cols = 8 but received 7'],
    [{ rows: 2, cols: 3, data: new Float32Array(6) }, RangeError, 'Expected batch.cols to equal dIn (4) but received 3 of type number'],
    [{ rows: 0, cols: 4, data: new Float32Array(0) }, RangeError, 'Expected positive integer for batch.rows but received 0 of type number'],
    [{ rows: 1.5, cols: 4, data: new Float32Array(6) }, RangeError, 'Expected positive integer for batch.rows but received 1.5 of type number'],
    [{ rows: 1, cols: 4, data: new Float32Array([0, NaN, 0, 0]) }, RangeError, 'Expected finite values in batch.data but found NaN at index 1 (row 0, column 1)'],
    [{ rows: 2, cols: 4, data: new Float32Array([0, 0, 0, 0, 0, 0, 0, -Infinity]) }, RangeError, 'Expected finite values in batch.data but found -Infinity at index 7 (row 1, column 3)'],
  ])('trainStep(%o) rejects with %s', async (batch, type, message) => {
    const step = sae.trainStep(batch as never);
    await expect(step).rejects.toThrow(type);
    await expect(step).rejects.toThrow(message);
  });

  it('a rejected step leaves the model unchanged', async () => {
    const before = sae.decoderWeights();
    await expect(sae.trainStep({ rows: 1, cols: 4, data: new Float32Array([1, 2, Infinity, 3]) })).rejects.toThrow(RangeError);
    expect(sae.decoderWeights()).toEqual(before);
    expect(sae.stepsTaken).toBe(0);
  });

  it.each([
    [{ rows: 2, cols: 5, data: new Float32Array(10) }, 'Expected x.cols to equal dIn (4) but received 5 of type number'],
    [{ rows: 1, cols: 4, data: new Float32Array([1, 1, 1, NaN]) }, 'Expected finite values in x.data but found NaN at index 3 (row 0, column 3)'],
  ])('encode and reconstruct check x: %o', async (x, message) => {
    await expect(sae.encode(x)).rejects.toThrow(message);
    await expect(sae.encode(x, { format: 'sparse' })).rejects.toThrow(message);
    await expect(sae.reconstruct(x)).rejects.toThrow(message);
  });

  it('encode checks its options', async () => {
    await expect(sae.encode(ok, { format: 'csr' } as never)).rejects.toThrow(
      new RangeError("Expected one of 'dense', 'sparse' for options.format but received \"csr\" of type string"),
    );
    await expect(sae.encode(ok, { fromat: 'sparse' } as never)).rejects.toThrow(
      new TypeError("Unknown option 'fromat' for SparseAutoencoder.encode; did you mean 'format'?"),
    );
  });

  it('decode checks dense and sparse codes', async () => {
    await expect(sae.decode({ rows: 1, cols: 5, data: new Float32Array(5) })).rejects.toThrow(
      new RangeError('Expected codes.cols to equal dHidden (6) but received 5 of type number'),
    );
    const sparse = (fields: Record<string, unknown>) => ({
      rows: 2,
      cols: 6,
      indptr: new Int32Array([0, 1, 2]),
      indices: new Int32Array([0, 5]),
      values: new Float32Array([1, 2]),
      ...fields,
    });
    await expect(sae.decode(sparse({ indptr: [0, 1, 2] }) as never)).rejects.toThrow(
      new TypeError('Expected Int32Array for codes.indptr but received an Array of length 3'),
    );
    await expect(sae.decode(sparse({ indptr: new Int32Array([0, 2]) }) as never)).rejects.toThrow(
      new RangeError('Expected codes.indptr.length to equal codes.rows + 1 = 3 but received 2'),
    );
    await expect(sae.decode(sparse({ values: new Float32Array(1) }) as never)).rejects.toThrow(
      new RangeError('Expected codes.indices.length to equal codes.values.length (1) but received 2'),
    );
    await expect(sae.decode(sparse({ indices: new Int32Array([0, 6]) }) as never)).rejects.toThrow(
      new RangeError('Expected codes.indices to be in [0, 6) but indices[1] is 6'),
    );
    await expect(sae.decode(sparse({ indptr: new Int32Array([0, 2, 1]) }) as never)).rejects.toThrow(
      new RangeError('Expected codes.indptr to be non-decreasing but indptr[2] = 1 is less than indptr[1] = 2'),
    );
    await expect(sae.decode(sparse({ indptr: new Int32Array([0, 1, 3]) }) as never)).rejects.toThrow(
      new RangeError('Expected codes.indptr[rows] = 3 to be at most the length of codes.indices and codes.values (2)'),
    );
    await expect(sae.decode(sparse({ values: new Float32Array([1, NaN]) }) as never)).rejects.toThrow(
      new RangeError('Expected finite values in codes.values but found NaN at index 1'),
    );
    const decoded = await sae.decode(sparse({}) as never);
    expect([decoded.rows, decoded.cols]).toEqual([2, 4]);
  });
});

describe('fit options', () => {
  const sae = new SparseAutoencoder(base);
  it.each([
    [{}, TypeError, 'Expected exactly one of options.steps and options.epochs for SparseAutoencoder.fit'],
    [{ steps: 1, epochs: 1 }, TypeError, 'Expected exactly one of options.steps and options.epochs for SparseAutoencoder.fit'],
    [{ steps: 0 }, RangeError, 'Expected positive integer for options.steps but received 0 of type number'],
    [{ epochs: 2.5 }, RangeError, 'Expected positive integer for options.epochs but received 2.5 of type number'],
    [{ steps: 1, batchSize: -4 }, RangeError, 'Expected positive integer for options.batchSize but received -4 of type number'],
    [{ steps: 1, onProgress: 3 }, TypeError, 'Expected function for options.onProgress but received 3 of type number'],
    [{ steps: 1, signal: {} }, TypeError, 'Expected AbortSignal for options.signal but received an object'],
    [{ step: 1 }, TypeError, "Unknown option 'step' for SparseAutoencoder.fit; did you mean 'steps'?"],
  ])('fit(matrix, %o) rejects with %s', async (options, type, message) => {
    const fitting = sae.fit(ok, options as never);
    await expect(fitting).rejects.toThrow(type);
    await expect(fitting).rejects.toThrow(message);
  });

  it('rejects epochs and batchSize for an iterable, and bad batches from it', async () => {
    await expect(sae.fit([ok], { epochs: 1 })).rejects.toThrow(
      new TypeError('options.epochs applies only to Matrix data; give options.steps for an iterable in SparseAutoencoder.fit'),
    );
    await expect(sae.fit([ok], { steps: 1, batchSize: 2 })).rejects.toThrow(
      new TypeError("options.batchSize applies only to Matrix data; an iterable's batches are used as they come in SparseAutoencoder.fit"),
    );
    await expect(sae.fit([ok, { rows: 1, cols: 3, data: new Float32Array(3) }], { steps: 2 })).rejects.toThrow(
      new RangeError('Expected data batch 2.cols to equal dIn (4) but received 3 of type number'),
    );
  });

  it('checks the whole training matrix for NaN before the first step', async () => {
    const sae = new SparseAutoencoder(base);
    const data = new Float32Array(40);
    data[37] = NaN;
    await expect(sae.fit({ rows: 10, cols: 4, data }, { steps: 1 })).rejects.toThrow(
      new RangeError('Expected finite values in data.data but found NaN at index 37 (row 9, column 1)'),
    );
    expect(sae.stepsTaken).toBe(0);
  });
});

describe('ToyDataset and metrics', () => {
  it.each([
    [{ dim: 0, numFeatures: 4, expectedActive: 1 }, RangeError, 'Expected integer in [1, 2147483647] for dim but received 0 of type number'],
    [{ dim: 4, numFeatures: 4, expectedActive: 5 }, RangeError, 'Expected number in [0, 4] for expectedActive but received 5 of type number'],
    [{ dim: 4, numFeatures: 4, expectedActive: 1, seed: 'a' }, TypeError, 'Expected number for seed but received "a" of type string'],
  ])('new ToyDataset(%o) throws %s', (options, type, message) => {
    expect(() => new ToyDataset(options as never)).toThrow(type);
    expect(() => new ToyDataset(options as never)).toThrow(message);
  });

  it('sample checks n', () => {
    const toy = new ToyDataset({ dim: 4, numFeatures: 8, expectedActive: 1 });
    expect(() => toy.sample(-1)).toThrow(new RangeError('Expected non-negative integer for n but received -1 of type number'));
  });

  it('mmcs checks its matrices', () => {
    const a = { rows: 2, cols: 3, data: new Float32Array(6) };
    expect(() => metrics.mmcs(a, { rows: 2, cols: 4, data: new Float32Array(8) })).toThrow(
      new RangeError('Expected truth.cols to equal learned.cols (3) but received 4 of type number'),
    );
    expect(() => metrics.mmcs(null as never, a)).toThrow(new TypeError('Expected Matrix { rows, cols, data } for learned but received null'));
  });
});
