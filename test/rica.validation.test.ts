// Rica rejects bad arguments with a TypeError (wrong type) or RangeError (bad value) whose
// message names the parameter, the expectation and what was received; L-BFGS's needs (the
// whole data set, iterations rather than epochs) are explained where they are not met.
import { describe, expect, it } from 'vitest';

import { backends } from '../lib/index.js';
import type { NativeRica } from '../lib/native.js';
import { Rica, type RicaOptions } from '../lib/rica.js';
import { randomMatrix } from './fixtures.js';

const base = { dIn: 4, dHidden: 6, lambda: 0.1 };
const exactly = (message: string) => new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

describe('new Rica', () => {
  it.each([
    [{ dIn: 1.5 }, RangeError, 'Expected integer in [1, 2147483647] for dIn but received 1.5 of type number'],
    [{ dHidden: '6' }, TypeError, 'Expected number for dHidden but received "6" of type string'],
    [{ lambda: undefined }, TypeError, 'Expected number for lambda but received undefined'],
    [{ lambda: -1 }, RangeError, 'Expected non-negative finite number for lambda but received -1 of type number'],
    [{ epsilon: 0 }, RangeError, 'Expected positive finite number for epsilon but received 0 of type number'],
    [{ normalizeRows: 1 }, TypeError, 'Expected boolean for normalizeRows but received 1 of type number'],
    [{ optimizer: 'sgd' }, RangeError, "Expected one of 'lbfgs', 'adam' for optimizer but received \"sgd\" of type string"],
    [{ lr: 0.1 }, TypeError, "lr applies only to optimizer 'adam'; L-BFGS chooses its step lengths by line search"],
    [{ optimizer: 'adam', lr: 0 }, RangeError, 'Expected positive finite number for lr but received 0 of type number'],
    [{ seed: -1 }, RangeError, 'Expected non-negative integer for seed but received -1 of type number'],
    [{ device: 'gpu' }, RangeError, "Expected 'cpu', 'cuda' or 'cuda:N' (N a GPU index) for device but received \"gpu\" of type string"],
    [{ threads: 0 }, RangeError, 'Expected integer in [1, 1024] for threads but received 0 of type number'],
    [{ lamda: 0.1 }, TypeError, "Unknown option 'lamda' for Rica; did you mean 'lambda'?"],
  ])('%o -> %s', (overrides, type, message) => {
    const make = () => new Rica({ ...base, ...overrides } as never);
    expect(make).toThrow(type);
    expect(make).toThrow(exactly(message));
  });

  it('options must be an object', () => {
    expect(() => new Rica(undefined as never)).toThrow(new TypeError('Expected object for options but received undefined'));
  });

  it('refuses a model that does not fit in memory, saying how much it needs', () => {
    expect(() => new Rica({ dIn: 2_000_000_000, dHidden: 2_000_000_000, lambda: 0.1 })).toThrow(
      /^A Rica with dIn 2000000000 and dHidden 2000000000 \(parameters and optimizer state\) needs [\d.]+ [KMGTPE]iB of memory but only [\d.]+ [KMGTPE]?i?B is available$/,
    );
  });

  it("device 'cuda' without a CUDA build throws BACKEND_UNAVAILABLE", () => {
    const cuda = backends().find((b) => b.name === 'cuda')!;
    if (cuda.available) return;
    expect(() => new Rica({ ...base, device: 'cuda' })).toThrow(expect.objectContaining({ code: 'BACKEND_UNAVAILABLE' }));
  });

  it('has the documented defaults', () => {
    const rica = new Rica(base);
    expect([rica.epsilon, rica.normalizeRows, rica.optimizer, rica.seed, rica.device]).toEqual([1e-2, true, 'lbfgs', 0, 'cpu']);
    rica.dispose();
  });
});

describe('Rica.fit', () => {
  const lbfgsModel = new Rica(base);
  const adamModel = new Rica({ ...base, optimizer: 'adam' });
  const data = randomMatrix(8, 4, 1);

  it.each([
    [
      'an iterable with L-BFGS',
      [data][Symbol.iterator](),
      { steps: 1 },
      TypeError,
      "Rica.fit with optimizer 'lbfgs' needs the whole data set as a Matrix (every L-BFGS evaluation uses all rows); for an iterable of batches create the model with { optimizer: 'adam' }",
    ],
    [
      'an async iterable with L-BFGS',
      (async function* () {
        yield data;
      })(),
      { steps: 1 },
      TypeError,
      "Rica.fit with optimizer 'lbfgs' needs the whole data set as a Matrix (every L-BFGS evaluation uses all rows); for an iterable of batches create the model with { optimizer: 'adam' }",
    ],
    ['epochs with L-BFGS', data, { epochs: 2 }, TypeError, "options.epochs does not apply to optimizer 'lbfgs'; give options.steps, the number of L-BFGS iterations"],
    [
      'batchSize with L-BFGS',
      data,
      { steps: 2, batchSize: 4 },
      TypeError,
      "options.batchSize does not apply to optimizer 'lbfgs', which uses every row of data; for minibatches create the model with { optimizer: 'adam' }",
    ],
    ['no steps', data, {}, TypeError, 'Expected exactly one of options.steps and options.epochs for Rica.fit'],
    ['zero steps', data, { steps: 0 }, RangeError, 'Expected positive integer for options.steps but received 0 of type number'],
    ['an unknown option', data, { step: 3 }, TypeError, "Unknown option 'step' for Rica.fit; did you mean 'steps'?"],
    ['the wrong width', randomMatrix(8, 3, 1), { steps: 1 }, RangeError, 'Expected data.cols to equal dIn (4) but received 3 of type number'],
    ['no rows', { rows: 0, cols: 4, data: new Float32Array(0) }, { steps: 1 }, RangeError, 'Expected positive integer for data.rows but received 0 of type number'],
    [
      'a NaN',
      { rows: 1, cols: 4, data: Float32Array.from([0, NaN, 0, 0]) },
      { steps: 1 },
      RangeError,
      'Expected finite values in data.data but found NaN at index 1 (row 0, column 1)',
    ],
  ])('refuses %s', async (_, input, options, type, message) => {
    const before = lbfgsModel.weights();
    const fitting = lbfgsModel.fit(input as never, options as never);
    await expect(fitting).rejects.toThrow(type);
    await expect(fitting).rejects.toThrow(exactly(message));
    expect(lbfgsModel.weights()).toEqual(before);
  });

  it('with Adam, follows the shared training loop rules', async () => {
    await expect(adamModel.fit([data], { epochs: 1 })).rejects.toThrow(
      new TypeError('options.epochs applies only to Matrix data; give options.steps for an iterable in Rica.fit'),
    );
    await expect(adamModel.fit({ rows: 1, cols: 4, data: Float32Array.from([0, 0, Infinity, 0]) }, { steps: 1 })).rejects.toThrow(
      new RangeError('Expected finite values in data.data but found Infinity at index 2 (row 0, column 2)'),
    );
  });
});

describe('Rica methods', () => {
  it.each([
    [{ rows: 2, cols: 5, data: new Float32Array(10) }, RangeError, 'Expected x.cols to equal dIn (4) but received 5 of type number'],
    [{ rows: 1, cols: 4, data: Float32Array.from([1, 1, 1, NaN]) }, RangeError, 'Expected finite values in x.data but found NaN at index 3 (row 0, column 3)'],
    [{ rows: 1, cols: 4, data: [1, 2, 3, 4] }, TypeError, 'Expected Float32Array for x.data but received an Array of length 4'],
  ])('encode and objective check x: %o', async (x, type, message) => {
    const rica = new Rica(base);
    for (const call of [() => rica.encode(x as never), () => rica.objective(x as never)]) {
      await expect(call()).rejects.toThrow(type);
      await expect(call()).rejects.toThrow(exactly(message));
    }
    rica.dispose();
  });

  it('objective needs at least one row', async () => {
    const rica = new Rica(base);
    await expect(rica.objective({ rows: 0, cols: 4, data: new Float32Array(0) })).rejects.toThrow(
      new RangeError('Expected positive integer for x.rows but received 0 of type number'),
    );
    rica.dispose();
  });

  it('synchronous reads throw BUSY while a native job runs', async () => {
    const rica = new Rica({ dIn: 64, dHidden: 64, lambda: 0.1 });
    const running = rica.objective(randomMatrix(20_000, 64, 2));
    expect(() => rica.dictionary()).toThrow(expect.objectContaining({ code: 'BUSY', message: 'Rica is busy: a step is running; wait for it to finish' }));
    await running;
    expect(rica.dictionary().rows).toBe(64);
    rica.dispose();
  });

  it('every method refuses a disposed model', async () => {
    const rica = new Rica(base);
    rica.dispose();
    const disposed = { code: 'ERR_DISPOSED', message: 'Rica is disposed' };
    expect(() => rica.dictionary()).toThrow(expect.objectContaining(disposed));
    expect(() => rica.weights()).toThrow(expect.objectContaining(disposed));
    await expect(rica.fit(randomMatrix(2, 4, 1), { steps: 1 })).rejects.toMatchObject(disposed);
    await expect(rica.encode(randomMatrix(2, 4, 1))).rejects.toMatchObject(disposed);
    expect(rica.stepsTaken).toBe(0);
    rica.dispose();
  });
});

describe('RicaOptions', () => {
  it('is what the constructor takes', () => {
    const options: RicaOptions = { dIn: 3, dHidden: 2, lambda: 0, optimizer: 'adam', lr: 0.1 };
    const rica = new Rica(options);
    expect(rica.lr).toBe(0.1);
    rica.dispose();
  });
});

// The native costGradient's sameX (L-BFGS's evaluations of one data set): the backend skips the
// finite check of x only where x is the very array, and rows the very count, it last checked.
describe('NativeRica costGradient with sameX', () => {
  const nativeOf = (rica: Rica) => (rica as unknown as { usable(): NativeRica }).usable();
  const evaluate = (native: NativeRica, x: Float32Array, rows: number, sameX: boolean) => {
    const gradient = new Float32Array(base.dIn * base.dHidden);
    return native.costGradient(native.getWeights(), x, rows, gradient, sameX).then((stats) => ({ stats, gradient }));
  };

  it('gives the same results as a fresh call on the same array', async () => {
    const rica = new Rica(base);
    const native = nativeOf(rica);
    const x = randomMatrix(5, 4, 3).data;
    const fresh = await evaluate(native, x, 5, false);
    expect(await evaluate(native, x, 5, true)).toEqual(fresh);
    rica.dispose();
  });

  it('checks another array, or other rows of the same one, even with sameX', async () => {
    const rica = new Rica(base);
    const native = nativeOf(rica);
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, NaN, 0, 0, 0]);
    await evaluate(native, x, 2, false);
    const nonFinite = new RangeError('Expected finite values in x.data but found NaN at index 8 (row 2, column 0)');
    await expect(evaluate(native, x, 3, true)).rejects.toThrow(nonFinite);
    await evaluate(native, x, 2, false);
    const other = Float32Array.from([1, 2, 3, 4, NaN, 6, 7, 8]);
    await expect(evaluate(native, other, 2, true)).rejects.toThrow(
      new RangeError('Expected finite values in x.data but found NaN at index 4 (row 1, column 0)'),
    );
    rica.dispose();
  });

  it('takes sameX as a boolean only', () => {
    const rica = new Rica(base);
    const native = nativeOf(rica);
    const weights = native.getWeights();
    const call = () => native.costGradient(weights, new Float32Array(4), 1, new Float32Array(weights.length), 1 as never);
    expect(call).toThrow(new TypeError('Expected boolean for sameX'));
    rica.dispose();
  });
});
