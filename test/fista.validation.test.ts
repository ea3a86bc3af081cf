// FistaCoder and FistaDictionary reject bad arguments with a TypeError (wrong type) or a
// RangeError (bad value) whose message names the parameter, the expectation and what was
// received, before any native work.
import { describe, expect, it } from 'vitest';

import { backends, FistaCoder, FistaDictionary } from '../lib/index.js';

const dictionary = { rows: 6, cols: 4, data: new Float32Array(24).fill(0.5) };
const x = { rows: 2, cols: 4, data: new Float32Array(8) };

function escape(message: string): RegExp {
  return new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

function expectThrows(make: () => unknown, type: ErrorConstructor, message: string): void {
  expect(make).toThrow(type);
  expect(make).toThrowError(escape(message));
}

describe('new FistaCoder', () => {
  const base = { dictionary, lambda: 0.1 };
  it.each([
    [{ dictionary: undefined }, TypeError, 'Expected Matrix { rows, cols, data } for dictionary but received undefined'],
    [{ dictionary: { rows: 2, cols: 4, data: new Float64Array(8) } }, TypeError, 'Expected Float32Array for dictionary.data but received Float64Array of length 8'],
    [{ dictionary: { rows: 2, cols: 4, data: new Float32Array(7) } }, RangeError, 'Expected dictionary.data.length to equal dictionary.rows * dictionary.cols = 8 but received 7'],
    [{ dictionary: { rows: 0, cols: 4, data: new Float32Array(0) } }, RangeError, 'Expected positive integer for dictionary.rows but received 0 of type number'],
    [{ dictionary: { rows: 3, cols: 0, data: new Float32Array(0) } }, RangeError, 'Expected positive integer for dictionary.cols but received 0 of type number'],
    [{ dictionary: { rows: 2, cols: 3, data: new Float32Array([0, 0, 0, 0, NaN, 0]) } }, RangeError, 'Expected finite values in dictionary.data but found NaN at index 4 (row 1, column 1)'],
    [{ lambda: undefined }, TypeError, 'Expected number for lambda but received undefined'],
    [{ lambda: -1 }, RangeError, 'Expected non-negative finite number for lambda but received -1 of type number'],
    [{ lambda: NaN }, RangeError, 'Expected non-negative finite number for lambda but received NaN of type number'],
    [{ maxIter: 1.5 }, RangeError, 'Expected integer in [0, 2147483647] for maxIter but received 1.5 of type number'],
    [{ maxIter: '10' }, TypeError, 'Expected number for maxIter but received "10" of type string'],
    [{ tol: -1e-6 }, RangeError, 'Expected non-negative finite number for tol but received -0.000001 of type number'],
    [{ gapTol: Infinity }, RangeError, 'Expected non-negative finite number for gapTol but received Infinity of type number'],
    [{ nonNegative: 'yes' }, TypeError, 'Expected boolean for nonNegative but received "yes" of type string'],
    [{ threads: 0 }, RangeError, 'Expected integer in [1, 1024] for threads but received 0 of type number'],
    [{ device: 'gpu' }, RangeError, "Expected 'cpu', 'cuda' or 'cuda:N' (N a GPU index) for device but received \"gpu\" of type string"],
    [{ lamda: 0.1 }, TypeError, "Unknown option 'lamda' for FistaCoder; did you mean 'lambda'?"],
    [{ maxIters: 10 }, TypeError, "Unknown option 'maxIters' for FistaCoder; did you mean 'maxIter'?"],
    [{ seed: 1 }, TypeError, "Unknown option 'seed' for FistaCoder"],
  ])('%o -> %s', (overrides, type, message) => {
    expectThrows(() => new FistaCoder({ ...base, ...overrides } as never), type, message);
  });

  it('options must be an object', () => {
    expectThrows(() => new FistaCoder(undefined as never), TypeError, 'Expected object for options but received undefined');
  });

  it('refuses a Gram matrix that does not fit in memory, saying how much it needs', () => {
    const atoms = 2_000_000;
    const make = () => new FistaCoder({ dictionary: { rows: atoms, cols: 1, data: new Float32Array(atoms) }, lambda: 0.1 });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(
      /^A FistaCoder with 2000000 atoms of dimension 1 \(dictionary and Gram matrix\) needs [\d.]+ TiB of memory but only [\d.]+ [KMGTPE]?i?B is available$/,
    );
  });

  it("device 'cuda' without a CUDA build throws BACKEND_UNAVAILABLE saying why", () => {
    const cuda = backends().find((b) => b.name === 'cuda')!;
    if (cuda.available) return;
    expect(() => new FistaCoder({ ...base, device: 'cuda' })).toThrow(
      expect.objectContaining({ code: 'BACKEND_UNAVAILABLE', message: expect.stringContaining('Cannot create a FistaCoder on device \'cuda\'') }),
    );
  });
});

describe('FistaCoder.encode', () => {
  const coder = new FistaCoder({ dictionary, lambda: 0.1 });
  it.each([
    [undefined, undefined, TypeError, 'Expected Matrix { rows, cols, data } for x but received undefined'],
    [{ rows: 2, cols: 5, data: new Float32Array(10) }, undefined, RangeError, 'Expected x.cols to equal dIn (4) but received 5 of type number'],
    [{ rows: 1, cols: 4, data: new Float32Array([0, 0, 0, NaN]) }, undefined, RangeError, 'Expected finite values in x.data but found NaN at index 3 (row 0, column 3)'],
    [x, 3, TypeError, 'Expected object for options but received 3 of type number'],
    [x, { inti: x }, TypeError, "Unknown option 'inti' for FistaCoder.encode; did you mean 'init'?"],
    [x, { init: { rows: 2, cols: 5, data: new Float32Array(10) } }, RangeError, 'Expected options.init.cols to equal dHidden (6) but received 5 of type number'],
    [x, { init: { rows: 3, cols: 6, data: new Float32Array(18) } }, RangeError, 'Expected options.init.rows to equal x.rows (2) but received 3 of type number'],
    [x, { init: [1, 2] }, TypeError, 'Expected Matrix { rows, cols, data } for options.init but received an Array of length 2'],
    [x, { init: { rows: 2, cols: 6, data: new Float32Array(12).fill(Infinity, 8, 9) } }, RangeError, 'Expected finite values in options.init.data but found Infinity at index 8 (row 1, column 2)'],
  ])('encode(%o, %o) rejects with %s', async (input, options, type, message) => {
    const encoding = coder.encode(input as never, options as never);
    await expect(encoding).rejects.toThrow(type);
    await expect(encoding).rejects.toThrowError(escape(message));
  });

  it('a rejected call leaves the coder usable', async () => {
    await expect(coder.encode({ rows: 1, cols: 4, data: new Float32Array([1, NaN, 0, 0]) })).rejects.toThrow(RangeError);
    const result = await coder.encode(x);
    expect(result.codes.rows).toBe(2);
  });
});

describe('new FistaDictionary', () => {
  const base = { dIn: 4, dHidden: 6, lambda: 0.1 };
  it.each([
    [{ dIn: 0 }, RangeError, 'Expected integer in [1, 2147483647] for dIn but received 0 of type number'],
    [{ dHidden: 1.5 }, RangeError, 'Expected integer in [1, 2147483647] for dHidden but received 1.5 of type number'],
    [{ dHidden: undefined }, TypeError, 'Expected number for dHidden but received undefined'],
    [{ lambda: -0.5 }, RangeError, 'Expected non-negative finite number for lambda but received -0.5 of type number'],
    [{ seed: -1 }, RangeError, 'Expected non-negative integer for seed but received -1 of type number'],
    [{ nonNegative: 1 }, TypeError, 'Expected boolean for nonNegative but received 1 of type number'],
    [{ maxIter: -1 }, RangeError, 'Expected integer in [0, 2147483647] for maxIter but received -1 of type number'],
    [{ dhidden: 6 }, TypeError, "Unknown option 'dhidden' for FistaDictionary; did you mean 'dHidden'?"],
    [{ dictionary }, TypeError, "Unknown option 'dictionary' for FistaDictionary"],
  ])('%o -> %s', (overrides, type, message) => {
    expectThrows(() => new FistaDictionary({ ...base, ...overrides } as never), type, message);
  });

  it('refuses a model that does not fit in memory, saying how much it needs', () => {
    const make = () => new FistaDictionary({ dIn: 4, dHidden: 2_000_000_000, lambda: 0.1 });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(
      /^A FistaDictionary with dIn 4 and dHidden 2000000000 \(dictionary, Gram matrix and statistics\) needs [\d.]+ EiB of memory but only [\d.]+ [KMGTPE]?i?B is available$/,
    );
  });

  it('fit and encode check their arguments', async () => {
    const model = new FistaDictionary(base);
    await expect(model.fit(x, {} as never)).rejects.toThrow(
      new TypeError('Expected exactly one of options.steps and options.epochs for FistaDictionary.fit'),
    );
    await expect(model.fit(x, { stpes: 1 } as never)).rejects.toThrow(
      new TypeError("Unknown option 'stpes' for FistaDictionary.fit; did you mean 'steps'?"),
    );
    await expect(model.fit({ rows: 2, cols: 3, data: new Float32Array(6) }, { steps: 1 })).rejects.toThrow(
      new RangeError('Expected data.cols to equal dIn (4) but received 3 of type number'),
    );
    await expect(model.fit([x, { rows: 1, cols: 4, data: new Float32Array([0, 0, Infinity, 0]) }], { steps: 2 })).rejects.toThrow(
      new RangeError('Expected finite values in batch.data but found Infinity at index 2 (row 0, column 2)'),
    );
    await expect(model.encode({ rows: 1, cols: 5, data: new Float32Array(5) })).rejects.toThrow(
      new RangeError('Expected x.cols to equal dIn (4) but received 5 of type number'),
    );
    // The first batch was applied before the bad one was seen; nothing after it.
    expect(model.stepsTaken).toBe(1);
    model.dispose();
  });
});
