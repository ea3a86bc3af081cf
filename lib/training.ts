// The training loop every model shares: batching and reshuffling a Matrix, consuming an
// iterable, progress reports, cancellation. Models supply only the step.
import { addon } from './native.js';
import { checkMatrix, type Matrix } from './matrix.js';
import type { FitOptions, TrainingData, TrainingRecord } from './model.js';
import type { Random } from './random.js';
import * as is from './validate.js';

const fitOptionNames = ['steps', 'epochs', 'batchSize', 'onProgress', 'signal'] as const;
export const progressIntervalMs = 200;
export const defaultBatchSize = 1024;
// Buffers a Matrix's batches are gathered into, in turn (plan's batches).
const batchBuffers = 4;

/** Where a step stands in its fit. */
export interface StepContext {
  /** 1-based step number within this fit, of totalSteps. */
  step: number;
  totalSteps: number;
  /**
   * For Matrix data, each batch row's index in that Matrix (the same in every epoch), so a
   * model can keep per-row state between visits; batches from an iterable have none.
   */
  rowIds?: Int32Array;
  /**
   * For targets with stagesNextBatch: the batch the next step will be given (the same array,
   * which nothing else changes), when it is already at hand, so that a model on a GPU can copy
   * it there while this step runs.
   */
  next?: { data: Float32Array; rows: number };
}

export interface TrainingTarget<S extends { loss: number; l0: number }> {
  /** Name used in messages, such as "SparseAutoencoder.fit". */
  name: string;
  dIn: number;
  /** Draws the order of rows each epoch. */
  random: Random;
  /** Fit options of this model beyond the shared ones (it validates them itself). */
  extraOptions?: readonly string[];
  /** One step on rows [rows, dIn] held in `data`, which the step may keep. */
  step(data: Float32Array, rows: number, context: StepContext): Promise<S>;
  /** Wants StepContext.next: the loop then draws batches a step further ahead. */
  stagesNextBatch?: boolean;
  /**
   * Called once on each batch's private data as it is drawn, before any step sees it (while
   * an earlier step runs): to scale it in place, say.
   */
  prepareBatch?(data: Float32Array): void;
  /** Throws if the model can no longer train (disposed). */
  checkUsable(): void;
}

/** A batch; `rowIds` only on batches cut from a Matrix. */
type Batch = Matrix & { rowIds?: Int32Array };

/** A batch drawn ahead of its step, checked and private; its error is thrown at its step. */
type Drawn = { kind: 'batch'; batch: Batch } | { kind: 'end' } | { kind: 'error'; error: unknown };

interface Plan {
  totalSteps: number;
  batches: () => AsyncIterator<Batch> | Iterator<Batch>;
  cleanup: (iterator: AsyncIterator<Batch> | Iterator<Batch>) => Promise<void>;
  fromMatrix: boolean;
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

export function isIterable(value: unknown): value is AsyncIterable<Matrix> | Iterable<Matrix> {
  return (
    typeof value === 'object' &&
    value !== null &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
  );
}

export function checkFitOptions(name: string, value: unknown, extraOptions: readonly string[] = []): FitOptions {
  const options = is.options(`${name} options`, value);
  is.knownKeys(name, options, [...fitOptionNames, ...extraOptions]);
  const { steps, epochs, batchSize, onProgress, signal } = options;
  if ((steps === undefined) === (epochs === undefined)) {
    throw new TypeError(`Expected exactly one of options.steps and options.epochs for ${name}`);
  }
  if (steps !== undefined) is.integer('options.steps', steps, 1);
  if (epochs !== undefined) is.integer('options.epochs', epochs, 1);
  if (batchSize !== undefined) is.integer('options.batchSize', batchSize, 1);
  if (onProgress !== undefined) is.func('options.onProgress', onProgress);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw is.typeError('options.signal', 'AbortSignal', signal);
  }
  return options as FitOptions;
}

function plan(name: string, data: TrainingData, options: FitOptions, dIn: number, random: Random): Plan {
  if (isIterable(data)) {
    if (options.epochs !== undefined) {
      throw new TypeError(`options.epochs applies only to Matrix data; give options.steps for an iterable in ${name}`);
    }
    if (options.batchSize !== undefined) {
      throw new TypeError(`options.batchSize applies only to Matrix data; an iterable's batches are used as they come in ${name}`);
    }
    return {
      totalSteps: options.steps as number,
      batches: () =>
        Symbol.asyncIterator in data
          ? (data as AsyncIterable<Matrix>)[Symbol.asyncIterator]()
          : (data as Iterable<Matrix>)[Symbol.iterator](),
      cleanup: async (iterator) => {
        await iterator.return?.();
      },
      fromMatrix: false,
    };
  }
  const source = checkMatrix('data', data, { value: dIn, label: 'dIn' }, 1);
  // A private copy: the caller may change or reuse its buffer while training runs.
  const rows = source.rows;
  const values = source.data.slice();
  addon.checkFinite(values, dIn, 'data.data');
  const batchSize = Math.min(options.batchSize ?? defaultBatchSize, rows);
  const batchesPerEpoch = Math.ceil(rows / batchSize);
  const totalSteps = options.steps ?? (options.epochs as number) * batchesPerEpoch;
  function* batches(): Iterator<Batch> {
    const order = new Int32Array(rows);
    // prepareTraining draws at most two batches beyond the step running, and is done with a
    // batch once its step has settled: so each buffer is refilled four draws later. A fresh
    // one per batch cost the main thread more than the gather itself (page faults, and
    // collections for the external memory).
    const buffers: Float32Array[] = [];
    let drawn = 0;
    for (;;) {
      for (let i = 0; i < rows; i++) order[i] = i;
      random.shuffle(order);
      for (let start = 0; start < rows; start += batchSize) {
        const count = Math.min(batchSize, rows - start);
        const rowIds = order.slice(start, start + count);
        const slot = drawn++ % batchBuffers;
        // Not zeroed: gatherRows writes every value, and zeroing would be one more pass over
        // the batch on the main thread.
        buffers[slot] ??= new Float32Array(Buffer.allocUnsafeSlow(batchSize * dIn * 4).buffer, 0, batchSize * dIn);
        const batch = count === batchSize ? buffers[slot] : buffers[slot].subarray(0, count * dIn);
        addon.gatherRows(values, dIn, rowIds, batch);
        yield { rows: count, cols: dIn, data: batch, rowIds };
      }
    }
  }
  return { totalSteps, batches, cleanup: async () => {}, fromMatrix: true };
}

/**
 * Checks the options and copies Matrix data now (so the caller may reuse its buffers at
 * once); the returned function runs the loop.
 */
export function prepareTraining<S extends { loss: number; l0: number }>(
  target: TrainingTarget<S>,
  data: TrainingData,
  rawOptions: unknown,
): () => Promise<Array<S & TrainingRecord>> {
  const options = checkFitOptions(target.name, rawOptions, target.extraOptions);
  target.checkUsable();
  const { totalSteps, batches, cleanup, fromMatrix } = plan(target.name, data, options, target.dIn, target.random);
  const { onProgress, signal } = options;

  return async () => {
    const records: Array<S & TrainingRecord> = [];
    const started = performance.now();
    let lastReport = -Infinity;
    let samplesSeen = 0;
    const report = (stats: S, step: number): void => {
      const now = performance.now();
      lastReport = now;
      onProgress?.({
        step,
        totalSteps,
        samplesSeen,
        loss: stats.loss,
        l0: stats.l0,
        samplesPerSecond: samplesSeen / Math.max((now - started) / 1000, 1e-9),
      });
    };
    const iterator = batches();
    // Batches are drawn while earlier steps run natively, so that producing data (a generator,
    // a file reader) overlaps with training: one step ahead, or two for a target that stages
    // the next batch. A draw starts once the one before has settled, so that a batch is
    // checked and copied before its source is asked for the next (which may reuse its buffer);
    // batches that come synchronously (a Matrix, a generator) are drawn at once.
    const ahead = target.stagesNextBatch === true ? 2 : 1;  // at most batchBuffers - 2
    type Entry = { drawn: Promise<Drawn>; ready?: Drawn };
    const pending: Entry[] = [];
    let lastDrawn: Entry | undefined;
    let drawnCount = 0;
    const take = (result: IteratorResult<Batch>, index: number): Drawn => {
      if (result.done === true) return { kind: 'end' };
      let batch = result.value;
      if (!fromMatrix) {
        // Batches from the caller's iterable are checked and copied; ours are already private.
        const checked = checkMatrix(`data batch ${index}`, batch, { value: target.dIn, label: 'dIn' }, 1);
        batch = { rows: checked.rows, cols: checked.cols, data: checked.data.slice() };
      }
      target.prepareBatch?.(batch.data);
      return { kind: 'batch', batch };
    };
    const failed = (error: unknown): Drawn => ({ kind: 'error', error });
    const takeSafely = (result: IteratorResult<Batch>, index: number): Drawn => {
      try {
        return take(result, index);
      } catch (error) {
        return failed(error);
      }
    };
    const drawNow = (index: number): Drawn | Promise<Drawn> => {
      let result: IteratorResult<Batch> | PromiseLike<IteratorResult<Batch>>;
      try {
        result = iterator.next();
      } catch (error) {
        return failed(error);
      }
      return isThenable(result) ? Promise.resolve(result).then((settled) => takeSafely(settled, index), failed) : takeSafely(result, index);
    };
    const drawAfter = (before: Drawn | undefined, index: number): Drawn | Promise<Drawn> =>
      before === undefined || before.kind === 'batch' ? drawNow(index) : { kind: 'end' };
    const drawThrough = (lastStep: number): void => {
      while (drawnCount < Math.min(lastStep, totalSteps)) {
        const index = ++drawnCount;
        const before = lastDrawn;
        const drawn =
          before === undefined || before.ready !== undefined
            ? drawAfter(before?.ready, index)
            : before.drawn.then((settled) => drawAfter(settled, index));
        const entry: Entry = drawn instanceof Promise ? { drawn } : { drawn: Promise.resolve(drawn), ready: drawn };
        if (entry.ready === undefined) void entry.drawn.then((settled) => (entry.ready = settled));
        lastDrawn = entry;
        pending.push(entry);
      }
    };
    drawThrough(ahead);
    try {
      for (let step = 1; step <= totalSteps; step++) {
        if (signal?.aborted) throw signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
        target.checkUsable();
        const drawn = await pending.shift()!.drawn;
        if (drawn.kind === 'end') break;
        if (drawn.kind === 'error') throw drawn.error;
        const { batch } = drawn;
        const following = pending[0]?.ready;
        const running = target.step(batch.data, batch.rows, {
          step,
          totalSteps,
          ...(batch.rowIds !== undefined ? { rowIds: batch.rowIds } : {}),
          ...(following?.kind === 'batch' ? { next: { data: following.batch.data, rows: following.batch.rows } } : {}),
        });
        drawThrough(step + ahead);
        const stats = await running;
        samplesSeen += batch.rows;
        records.push({ step, ...stats });
        if (onProgress !== undefined && (performance.now() - lastReport >= progressIntervalMs || step === totalSteps)) {
          report(stats, step);
        }
      }
      const last = records.at(-1);
      if (onProgress !== undefined && last !== undefined && last.step < totalSteps) report(last, last.step);
    } finally {
      await Promise.all(pending.map((entry) => entry.drawn));
      await cleanup(iterator);
    }
    return records;
  };
}
