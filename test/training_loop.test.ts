// The training loop every model shares (lib/training.ts), with a recording target in place of a
// model: which batch each step gets, what it is told of the next one, and how far ahead of the
// steps the data source is drawn.
import { describe, expect, it } from 'vitest';

import type { Matrix } from '../lib/index.js';
import { addon } from '../lib/native.js';
import { Random } from '../lib/random.js';
import { prepareTraining, type StepContext } from '../lib/training.js';

interface Seen {
  step: number;
  data: Float32Array;
  values: number[];
  rowIds?: Int32Array;
  next?: { data: Float32Array; rows: number };
  drawnBefore: number;
}

/** A target that records its steps; each step settles after a turn of the event loop. */
function recorder(stagesNextBatch: boolean, drawn: () => number = () => 0) {
  const seen: Seen[] = [];
  const target = {
    name: 'test target',
    dIn: 2,
    random: new Random(1),
    stagesNextBatch,
    checkUsable: () => {},
    step: async (data: Float32Array, rows: number, context: StepContext) => {
      seen.push({ step: context.step, data, values: Array.from(data), rowIds: context.rowIds, next: context.next, drawnBefore: drawn() });
      await new Promise((resolve) => setImmediate(resolve));
      return { loss: rows, l0: 0 };
    },
  };
  return { seen, target };
}

/** A generator of `count` batches that reuses one buffer, counting how many it has yielded. */
function reusingSource(count: number) {
  const state = { yielded: 0 };
  const buffer = new Float32Array(4);
  function* batches(): Generator<Matrix> {
    for (let i = 0; i < count; i++) {
      buffer.fill(i + 1);
      state.yielded++;
      yield { rows: 2, cols: 2, data: buffer };
    }
  }
  return { state, batches };
}

describe('the training loop', () => {
  it('tells a target that stages batches which array the next step gets, from the first step', async () => {
    const { seen, target } = recorder(true);
    const data: Matrix = { rows: 10, cols: 2, data: Float32Array.from({ length: 20 }, (_, i) => i) };
    await prepareTraining(target, data, { epochs: 2, batchSize: 4 })();
    expect(seen.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < seen.length - 1; i++) {
      expect(seen[i].next?.data, `step ${i + 1}`).toBe(seen[i + 1].data);
      expect(seen[i].next?.rows, `step ${i + 1}`).toBe(seen[i + 1].data.length / 2);
    }
    expect(seen.at(-1)!.next).toBeUndefined();
  });

  it('tells other targets nothing of the next batch and draws only one step ahead', async () => {
    const { state, batches } = reusingSource(5);
    const { seen, target } = recorder(false, () => state.yielded);
    await prepareTraining(target, batches(), { steps: 5 })();
    expect(seen.every((s) => s.next === undefined)).toBe(true);
    expect(seen.map((s) => s.drawnBefore)).toEqual([1, 2, 3, 4, 5]);
  });

  it('draws two steps ahead for a target that stages, copying batches before the source reuses their buffer', async () => {
    const { state, batches } = reusingSource(5);
    const { seen, target } = recorder(true, () => state.yielded);
    await prepareTraining(target, batches(), { steps: 5 })();
    expect(seen.map((s) => s.values)).toEqual([1, 2, 3, 4, 5].map((v) => [v, v, v, v]));
    expect(seen.map((s) => s.drawnBefore)).toEqual([2, 3, 4, 5, 5]);
    expect(seen.slice(0, 4).every((s, i) => s.next?.data === seen[i + 1].data)).toBe(true);
  });

  it('stages the batches of an async source once they have arrived, in order', async () => {
    async function* batches(): AsyncGenerator<Matrix> {
      for (let i = 0; i < 6; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield { rows: 1, cols: 2, data: new Float32Array([i, -i]) };
      }
    }
    const { seen, target } = recorder(true);
    await prepareTraining(target, batches(), { steps: 6 })();
    expect(seen.map((s) => s.values[0])).toEqual([0, 1, 2, 3, 4, 5]);
    for (let i = 0; i < seen.length - 1; i++) {
      if (seen[i].next !== undefined) expect(seen[i].next!.data, `step ${i + 1}`).toBe(seen[i + 1].data);
    }
  });

  it('throws a bad batch drawn ahead at its own step, after the steps before it', async () => {
    function* batches(): Generator<unknown> {
      yield { rows: 1, cols: 2, data: new Float32Array(2) };
      yield { rows: 1, cols: 2, data: new Float32Array(2) };
      yield { rows: 1, cols: 3, data: new Float32Array(3) };
      yield { rows: 1, cols: 2, data: new Float32Array(2) };
    }
    const { seen, target } = recorder(true);
    await expect(prepareTraining(target, batches() as Iterable<Matrix>, { steps: 4 })()).rejects.toThrow(/data batch 3/);
    expect(seen.map((s) => s.step)).toEqual([1, 2]);
    expect(seen[1].next).toBeUndefined();
  });

  it('prepares each batch once, as it is drawn, before a step sees it or is told of it', async () => {
    const { batches } = reusingSource(4);
    const { seen, target } = recorder(true);
    const prepared: number[] = [];
    const prepareBatch = (data: Float32Array): void => {
      for (let i = 0; i < data.length; i++) data[i] *= 10;
      prepared.push(data[0]);
    };
    const preparing = { ...target, prepareBatch };
    await prepareTraining(preparing, batches(), { steps: 4 })();
    expect(prepared).toEqual([10, 20, 30, 40]);
    expect(seen.map((s) => s.values[0])).toEqual([10, 20, 30, 40]);
    expect(seen.slice(0, 3).map((s) => s.next?.data[0])).toEqual([20, 30, 40]);
  });

  it("refills a Matrix's batch buffers only after the steps given them, and what they staged, have settled", async () => {
    for (const stages of [false, true]) {
      const intact: string[] = [];
      const buffers = new Set<Float32Array>();
      const target = {
        name: 'test target',
        dIn: 3,
        random: new Random(2),
        stagesNextBatch: stages,
        checkUsable: () => {},
        step: async (data: Float32Array, rows: number, context: StepContext) => {
          buffers.add(data);
          const before = [Array.from(data), context.next === undefined ? [] : Array.from(context.next.data)];
          await new Promise((resolve) => setImmediate(resolve));
          await new Promise((resolve) => setImmediate(resolve));
          const after = [Array.from(data), context.next === undefined ? [] : Array.from(context.next.data)];
          intact.push(JSON.stringify(before) === JSON.stringify(after) ? 'intact' : `changed at step ${context.step}`);
          return { loss: rows, l0: 0 };
        },
      };
      const data: Matrix = { rows: 20, cols: 3, data: Float32Array.from({ length: 60 }, (_, i) => i) };
      await prepareTraining(target, data, { steps: 15, batchSize: 3 })();
      expect(intact, `stagesNextBatch ${stages}`).toEqual(Array(15).fill('intact'));
      // 6 full batches and a 2-row one an epoch, in 4 buffers (the short ones in a view of one)
      expect(new Set([...buffers].map((b) => b.buffer)).size, `stagesNextBatch ${stages}`).toBe(4);
    }
  });

  it('ends early, without a further draw, when the source ends', async () => {
    const { state, batches } = reusingSource(3);
    const { seen, target } = recorder(true, () => state.yielded);
    const records = await prepareTraining(target, batches(), { steps: 10 })();
    expect(records.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(seen.at(-1)!.next).toBeUndefined();
  });

  it('cuts a Matrix into batches of the rows its rowIds name, each row once an epoch, from a private copy', async () => {
    const { seen, target } = recorder(false);
    const dIn = 2;
    const data: Matrix = { rows: 10, cols: dIn, data: Float32Array.from({ length: 20 }, (_, i) => 100 + i) };
    const expected = data.data.slice();
    const run = prepareTraining({ ...target, dIn }, data, { epochs: 2, batchSize: 4 });
    data.data.fill(-1);
    await run();
    expect(seen.map((s) => s.rowIds?.length)).toEqual([4, 4, 2, 4, 4, 2]);
    for (const epoch of [seen.slice(0, 3), seen.slice(3)]) {
      const ids = epoch.flatMap((s) => Array.from(s.rowIds!));
      expect([...ids].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const s of epoch) {
        const rows = Array.from(s.rowIds!, (id) => Array.from(expected.subarray(id * dIn, id * dIn + dIn)));
        expect(s.values).toEqual(rows.flat());
      }
    }
    // Reshuffled: the two epochs visit the rows in different orders.
    expect(seen.slice(0, 3).flatMap((s) => Array.from(s.rowIds!))).not.toEqual(seen.slice(3).flatMap((s) => Array.from(s.rowIds!)));
  });
});

describe('addon.gatherRows', () => {
  const source = Float32Array.from({ length: 12 }, (_, i) => i);

  it('copies the named rows in order, repeats included', () => {
    const out = new Float32Array(8).fill(NaN);
    addon.gatherRows(source, 3, Int32Array.of(3, 0), out.subarray(0, 6));
    expect(Array.from(out)).toEqual([9, 10, 11, 0, 1, 2, NaN, NaN]);
    addon.gatherRows(source, 4, Int32Array.of(1, 1), out);
    expect(Array.from(out)).toEqual([4, 5, 6, 7, 4, 5, 6, 7]);
  });

  it('refuses row ids outside the source, and an output too small, before writing anything', () => {
    const out = new Float32Array(6).fill(7);
    expect(() => addon.gatherRows(source, 3, Int32Array.of(0, 4), out)).toThrow(RangeError);
    expect(() => addon.gatherRows(source, 3, Int32Array.of(-1), out)).toThrow(/rowIds in \[0, 4\), got -1 at 0/);
    expect(Array.from(out)).toEqual([7, 7, 7, 7, 7, 7]);
    expect(() => addon.gatherRows(source, 3, Int32Array.of(0, 1, 2), out)).toThrow(/out/);
    expect(() => addon.gatherRows(source, 3, [0] as never, out)).toThrow(TypeError);
    expect(() => addon.gatherRows(source, 0, Int32Array.of(0), out)).toThrow(/cols/);
  });
});
