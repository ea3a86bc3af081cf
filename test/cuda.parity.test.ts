// The CUDA backend against the CPU backend: every SparseAutoencoder operation on both, from
// the same seeded parameters and inputs, compared by relative error (max |a - b| / max |b|)
// with a tolerance per precision, the shape and options named in each failure (faiss's GPU
// tests and ggml's test-backend-ops work this way). Inputs are drawn so that no pre-activation
// sits within the precision's error of a decision (ReLU's zero, TopK's k-th value, BatchTopK's
// batch threshold): there the backends may rightly decide differently.
//
// Runs wherever backends() reports CUDA available; elsewhere the whole file is skipped and says
// why in one line.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';

import { backends, FistaCoder, FistaDictionary, Rica, SparseAutoencoder, ToyDataset, type Device, type Matrix, type RicaOptions, type SparseAutoencoderOptions } from '../lib/index.js';
import { addon, type NativeFista, type NativeRica, type NativeSae, type ParameterName, type ParameterSlot } from '../lib/native.js';
import { Random } from '../lib/random.js';
import { randomMatrix, randomProblem, relativeError } from './fixtures.js';
import { lasso, randomDictionary, row } from './fista_fixtures.js';
import * as fistaRef from './fista_reference.js';
import * as ref from './reference.js';
import { ricaProblem } from './rica_fixtures.js';
import * as ricaRef from './rica_reference.js';

const cuda = backends().find((b) => b.name === 'cuda')!;
if (!cuda.available) console.log(`test/cuda.parity.test.ts: skipped, CUDA is not available here (${cuda.reason})`);

type Precision = 'fp32' | 'tf32';
const tolerance: Record<Precision, number> = { fp32: 1e-4, tf32: 1e-2 };
// How far inputs keep from decisions: well beyond TF32's error on these shapes (about 1e-3).
const margin: Record<Precision, number> = { fp32: 0.002, tf32: 0.02 };

interface Case {
  label: string;
  shape: { dIn: number; dHidden: number; rows: number };
  options: Partial<SparseAutoencoderOptions>;
}

const configurations: Case[] = [
  { label: 'relu untied', shape: { dIn: 13, dHidden: 19, rows: 7 }, options: {} },
  { label: 'relu tied, two column tiles', shape: { dIn: 33, dHidden: 130, rows: 37 }, options: { tied: true } },
  { label: 'relu, encoder sees x', shape: { dIn: 40, dHidden: 300, rows: 150 }, options: { applyBDecToInput: false } },
  { label: 'relu, two coordinate spans', shape: { dIn: 1030, dHidden: 140, rows: 20 }, options: {} },
  { label: 'topk', shape: { dIn: 21, dHidden: 45, rows: 10 }, options: { activation: 'topk', k: 5 } },
  { label: 'topk tied', shape: { dIn: 64, dHidden: 260, rows: 33 }, options: { activation: 'topk', k: 7, tied: true } },
  { label: 'batchtopk', shape: { dIn: 16, dHidden: 24, rows: 6 }, options: { activation: 'batchtopk', k: 3, thresholdStartStep: 0 } },
];
const cases = (['fp32', 'tf32'] as const).flatMap((precision) => configurations.map((c) => ({ ...c, precision })));

function context(c: Case & { precision: Precision }): string {
  const { dIn, dHidden, rows } = c.shape;
  return `${c.label} (precision ${c.precision}, dIn ${dIn}, dHidden ${dHidden}, rows ${rows}, options ${JSON.stringify(c.options)})`;
}

function native(sae: SparseAutoencoder): NativeSae {
  return (sae as unknown as { usable(): NativeSae }).usable();
}

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const error = relativeError(actual, expected);
  expect(error, `${what}: relative error ${error.toExponential(2)} above ${tol}`).toBeLessThanOrEqual(tol);
}

function expectNear(what: string, actual: number, expected: number, tol: number): void {
  const error = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-30);
  expect(error, `${what}: ${actual} vs ${expected} (cpu)`).toBeLessThanOrEqual(tol);
}

/**
 * Rows whose float64 pre-activations keep `gap` from every decision of the activation (and,
 * given AuxK's dead features and k, from AuxK's choice among their positive values).
 */
function inputsAwayFromDecisions(params: ref.Params, rows: number, gap: number, seed: number, auxk?: { dead: boolean[]; k: number }): Matrix {
  const { d, m } = params;
  const k = params.k ?? 0;
  const random = new Random(seed);
  const x = new Float32Array(rows * d);
  for (let batchAttempt = 0; ; batchAttempt++) {
    for (let r = 0; r < rows; r++) {
      for (let attempt = 0; ; attempt++) {
        for (let i = 0; i < d; i++) x[r * d + i] = random.normal();
        const pre = Array.from(ref.preActivations(params, x.subarray(r * d, (r + 1) * d), 1));
        let ok = pre.every((v) => Math.abs(v) > gap);
        if (ok && auxk !== undefined) {
          const dead = pre.filter((v, j) => auxk.dead[j] && v > 0).sort((a, b) => b - a);
          ok = dead.length <= auxk.k || dead[auxk.k - 1] - dead[auxk.k] > gap;
        }
        if (ok && params.activation === 'topk' && k < m) {
          const sorted = pre.sort((a, b) => b - a);
          ok = sorted[k - 1] - sorted[k] > gap;
        }
        if (ok) break;
        if (attempt > 5000) throw new Error('could not draw a row away from the decisions');
      }
    }
    if (params.activation !== 'batchtopk') break;
    const sorted = Array.from(ref.preActivations(params, x, rows)).sort((a, b) => b - a);
    const keep = k * rows;
    if (keep >= sorted.length || sorted[keep - 1] - sorted[keep] > gap) break;
    if (batchAttempt > 500) throw new Error('could not draw a batch away from the BatchTopK threshold');
  }
  return { rows, cols: d, data: x };
}

/** The CPU model's twin on CUDA: same options, same parameters. */
function cudaTwin(cpu: SparseAutoencoder, options: Partial<SparseAutoencoderOptions>, precision: Precision): SparseAutoencoder {
  const gpu = new SparseAutoencoder({ dIn: cpu.dIn, dHidden: cpu.dHidden, l1Coeff: 0.05, ...options, device: 'cuda', precision } as SparseAutoencoderOptions);
  if (!cpu.tied) gpu._setParameter('encoderWeights', cpu.encoderWeights().data);
  gpu._setParameter('decoderWeights', cpu.decoderWeights().data);
  gpu._setParameter('encoderBias', cpu.encoderBias());
  gpu._setParameter('decoderBias', cpu.decoderBias());
  return gpu;
}

const parameterNames: ParameterName[] = ['encoderWeights', 'encoderBias', 'decoderWeights', 'decoderBias'];
const slots: ParameterSlot[] = ['value', 'adamM', 'adamV'];

describe.skipIf(!cuda.available)(`CUDA and CPU backends agree (${cuda.gpu ?? 'no GPU'})`, () => {
  describe.each(cases)('$label, $precision', (c) => {
    const where = context(c);
    const tol = tolerance[c.precision];
    // eps 0.1 makes Adam's first steps a smooth function of the gradient (with 1e-8 they are
    // lr * sign(g), which flips for gradients within rounding of zero). lr 1e-4 keeps three steps
    // from moving a pre-activation across the margin the inputs were drawn with (at 1e-3 a
    // TF32 run on an H100 saw a unit reach zero on one device only at the second step).
    const options = { ...c.options, eps: 0.1, lr: 1e-4 };
    const setup = () => {
      const { sae: cpu, params } = randomProblem(c.shape, { ...options, seed: c.shape.dIn });
      const gpu = cudaTwin(cpu, options, c.precision);
      const x = inputsAwayFromDecisions(params, c.shape.rows, margin[c.precision], c.shape.dHidden);
      return { cpu, gpu, x, params };
    };

    it('starts from the same initialisation for a seed', () => {
      const settings = { dIn: c.shape.dIn, dHidden: c.shape.dHidden, l1Coeff: 0.05, ...c.options, seed: 3 } as SparseAutoencoderOptions;
      const a = new SparseAutoencoder(settings);
      const b = new SparseAutoencoder({ ...settings, device: 'cuda', precision: c.precision });
      expect(Array.from(b.decoderWeights().data), where).toEqual(Array.from(a.decoderWeights().data));
      expect(Array.from(b.encoderWeights().data), where).toEqual(Array.from(a.encoderWeights().data));
      a.dispose();
      b.dispose();
    });

    it('computes the same loss, statistics and gradients', async () => {
      const { cpu, gpu, x } = setup();
      const [a, b] = [await cpu._gradients(x), await gpu._gradients(x)];
      expect(b.l0, `${where}: l0`).toBe(a.l0);
      expectNear(`${where}: loss`, b.loss, a.loss, tol);
      expectNear(`${where}: mse`, b.mse, a.mse, tol);
      expectNear(`${where}: l1`, b.l1, a.l1, tol);
      expectClose(`${where}: decoderWeights gradient`, b.decoderWeights, a.decoderWeights, tol);
      expectClose(`${where}: encoderBias gradient`, b.encoderBias, a.encoderBias, tol);
      expectClose(`${where}: decoderBias gradient`, b.decoderBias, a.decoderBias, tol);
      if (cpu.tied) expect(b.encoderWeights).toBeNull();
      else expectClose(`${where}: encoderWeights gradient`, b.encoderWeights!, a.encoderWeights!, tol);
      cpu.dispose();
      gpu.dispose();
    });

    it('encodes, decodes and reconstructs the same', async () => {
      const { cpu, gpu, x } = setup();
      const [codesA, codesB] = [await cpu.encode(x), await gpu.encode(x)];
      expectClose(`${where}: encode`, codesB.data, codesA.data, tol);
      const [sparseA, sparseB] = [await cpu.encode(x, { format: 'sparse' }), await gpu.encode(x, { format: 'sparse' })];
      expect(Array.from(sparseB.indptr), `${where}: encodeSparse indptr`).toEqual(Array.from(sparseA.indptr));
      expect(Array.from(sparseB.indices), `${where}: encodeSparse indices`).toEqual(Array.from(sparseA.indices));
      expectClose(`${where}: encodeSparse values`, sparseB.values, sparseA.values, tol);
      // The same codes in: only the order of the sums differs.
      expectClose(`${where}: decode`, (await gpu.decode(codesA)).data, (await cpu.decode(codesA)).data, 1e-5);
      expectClose(`${where}: decode sparse`, (await gpu.decode(sparseA)).data, (await cpu.decode(sparseA)).data, 1e-5);
      expectClose(`${where}: reconstruct`, (await gpu.reconstruct(x)).data, (await cpu.reconstruct(x)).data, tol);
      cpu.dispose();
      gpu.dispose();
    });

    it('takes the same training steps: parameters, Adam moments and bookkeeping', async () => {
      const { cpu, gpu, x } = setup();
      for (let step = 0; step < 3; step++) {
        const [a, b] = [await cpu.trainStep(x), await gpu.trainStep(x)];
        expectNear(`${where}: step ${step} loss`, b.loss, a.loss, tol);
        expect(b.l0, `${where}: step ${step} l0`).toBe(a.l0);
      }
      expect(gpu.stepsTaken).toBe(3);
      for (const name of parameterNames) {
        for (const slot of slots) {
          expectClose(`${where}: ${name} ${slot} after 3 steps`, native(gpu).getParameter(name, slot), native(cpu).getParameter(name, slot), tol);
        }
      }
      const [stateA, stateB] = [native(cpu).getTrainingState(), native(gpu).getTrainingState()];
      expect(stateB.samplesSeen).toBe(stateA.samplesSeen);
      expect(Array.from(stateB.lastFired), `${where}: lastFired`).toEqual(Array.from(stateA.lastFired));
      if (c.options.activation === 'batchtopk') {
        expect(stateA.threshold).toBeGreaterThan(0);
        expectNear(`${where}: BatchTopK threshold`, stateB.threshold, stateA.threshold, tol);
      } else {
        expect(stateB.threshold).toBe(stateA.threshold);
      }
      cpu.dispose();
      gpu.dispose();
    });

    it('resamples the same features from the same rows', async () => {
      const { cpu, gpu, x } = setup();
      const features = Int32Array.from([0, c.shape.dHidden - 1]);
      const [a, b] = [await native(cpu).resample(features, x.data, x.rows, 11), await native(gpu).resample(features, x.data, x.rows, 11)];
      expect(b).toBe(a);
      for (const name of parameterNames) {
        expectClose(`${where}: ${name} after resampling`, native(gpu).getParameter(name, 'value'), native(cpu).getParameter(name, 'value'), tol);
      }
      expect(Array.from(native(gpu).getTrainingState().lastFired)).toEqual(Array.from(native(cpu).getTrainingState().lastFired));
      cpu.dispose();
      gpu.dispose();
    });
  });

  it('fits the same model through the public training loop', async () => {
    const options = { dIn: 24, dHidden: 96, l1Coeff: 0.01, lr: 3e-3, eps: 0.1, seed: 5 };
    const random = new Random(1);
    const data: Matrix = { rows: 512, cols: 24, data: Float32Array.from({ length: 512 * 24 }, () => random.normal()) };
    const cpu = new SparseAutoencoder(options);
    const gpu = new SparseAutoencoder({ ...options, device: 'cuda', precision: 'fp32' });
    const [a, b] = [await cpu.fit(data, { steps: 20, batchSize: 128 }), await gpu.fit(data, { steps: 20, batchSize: 128 })];
    expectNear('fit: first loss', b[0].loss, a[0].loss, 1e-4);
    expectNear('fit: last loss', b[19].loss, a[19].loss, 1e-2);
    expectClose('fit: dictionary', gpu.dictionary().data, cpu.dictionary().data, 1e-2);
    cpu.dispose();
    gpu.dispose();
  });

  it('gives bit-identical results for a seed on every run', async () => {
    const random = new Random(2);
    const x: Matrix = { rows: 300, cols: 48, data: Float32Array.from({ length: 300 * 48 }, () => random.normal()) };
    const run = async () => {
      const sae = new SparseAutoencoder({ dIn: 48, dHidden: 500, l1Coeff: 0.01, seed: 9, device: 'cuda' });
      for (let i = 0; i < 3; i++) await sae.trainStep(x);
      const w = sae.decoderWeights().data;
      sae.dispose();
      return w;
    };
    expect(Array.from(await run())).toEqual(Array.from(await run()));
  });

  it("keeps 'fp32' closer to the CPU than 'tf32'", async () => {
    const { sae: cpu, params } = randomProblem({ dIn: 256, dHidden: 200, rows: 64 }, { seed: 4 }, 0);
    const x = inputsAwayFromDecisions(params, 64, margin.tf32, 4);
    const expected = (await cpu.encode(x)).data;
    const errors: Record<Precision, number> = { fp32: 0, tf32: 0 };
    for (const precision of ['fp32', 'tf32'] as const) {
      const gpu = cudaTwin(cpu, {}, precision);
      errors[precision] = relativeError((await gpu.encode(x)).data, expected);
      gpu.dispose();
    }
    expect(errors.fp32).toBeLessThan(1e-5);
    expect(errors.tf32).toBeGreaterThan(errors.fp32);
    expect(errors.tf32).toBeLessThan(tolerance.tf32);
    cpu.dispose();
  });

  it('saves and loads across devices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'saekit-cuda-'));
    try {
      const { sae: cpu, x } = randomProblem({ dIn: 12, dHidden: 30, rows: 9 }, { seed: 8 });
      await cpu.trainStep(x);
      await cpu.save(dir);
      const gpu = await SparseAutoencoder.load(dir, { device: 'cuda', precision: 'fp32' });
      expect(gpu.device).toBe('cuda');
      expect(gpu.stepsTaken).toBe(1);
      const [a, b] = [await cpu.trainStep(x), await gpu.trainStep(x)];
      expectNear('resumed step loss', b.loss, a.loss, 1e-4);
      expectClose('resumed decoder', gpu.decoderWeights().data, cpu.decoderWeights().data, 1e-4);
      cpu.dispose();
      gpu.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copies and checks a batch of several staging chunks in parallel pieces', async () => {
    // 1100 rows of 1024 floats (4.4 MB): three 2 MB staging chunks of 512 rows, each copied to
    // pinned memory and checked in 128 KB pieces (32 rows) across the host's threads.
    const options = { eps: 0.1, lr: 1e-4 };
    const { sae: cpu, x } = randomProblem({ dIn: 1024, dHidden: 16, rows: 1100 }, { ...options, seed: 12 }, margin.fp32);
    const gpu = cudaTwin(cpu, options, 'fp32');
    const [a, b] = [await cpu._gradients(x), await gpu._gradients(x)];
    expectNear('large batch: loss', b.loss, a.loss, tolerance.fp32);
    expectClose('large batch: decoderWeights gradient', b.decoderWeights, a.decoderWeights, tolerance.fp32);
    expectClose('large batch: encoderWeights gradient', b.encoderWeights!, a.encoderWeights!, tolerance.fp32);
    // Non-finite values at a piece boundary inside the second chunk and in the last float.
    for (const [index, value] of [[544 * 1024, NaN], [1100 * 1024 - 1, Infinity]] as const) {
      const bad = { ...x, data: Float32Array.from(x.data) };
      bad.data[index] = value;
      await expect(gpu.trainStep(bad)).rejects.toThrow(
        new RangeError(`Expected finite values in batch.data but found ${value} at index ${index} (row ${Math.floor(index / 1024)}, column ${index % 1024})`),
      );
    }
    // The refused steps changed nothing: the next step is the CPU's.
    const [stepA, stepB] = [await cpu.trainStep(x), await gpu.trainStep(x)];
    expectNear('large batch: step loss', stepB.loss, stepA.loss, tolerance.fp32);
    expectClose('large batch: decoder after a step', gpu.decoderWeights().data, cpu.decoderWeights().data, tolerance.fp32);
    cpu.dispose();
    gpu.dispose();
  });

  describe('copying the next batch to the GPU while a step runs', () => {
    // Batches of 600 rows of 1024 floats (2.4 MB) take two staging chunks each.
    const batchesOf = (seed: number, count: number, rows = 600, cols = 1024): Matrix[] => {
      const random = new Random(seed);
      return Array.from({ length: count }, () => ({ rows, cols, data: Float32Array.from({ length: rows * cols }, () => random.normal()) }));
    };
    const options = { dIn: 1024, dHidden: 16, l1Coeff: 0.01, lr: 1e-3, eps: 0.1, seed: 3, device: 'cuda', inputScale: 0.5 } as const;
    const expectSameModel = (what: string, a: SparseAutoencoder, b: SparseAutoencoder): void => {
      for (const name of parameterNames) {
        for (const slot of slots) {
          const [x, y] = [native(a).getParameter(name, slot), native(b).getParameter(name, slot)];
          expect(Array.from(x), `${what}: ${name} ${slot}`).toEqual(Array.from(y));
        }
      }
    };

    it('fit trains on exactly the batches trainStep would, scaled once', async () => {
      const batches = batchesOf(21, 5);
      const staged = new SparseAutoencoder(options);
      const stepwise = new SparseAutoencoder(options);
      const records = await staged.fit(batches, { steps: batches.length });
      for (const [i, batch] of batches.entries()) {
        const stats = await stepwise.trainStep(batch);
        expect(records[i].loss, `step ${i + 1} loss`).toBe(stats.loss);
      }
      expectSameModel('fit with staging vs trainStep', staged, stepwise);
      staged.dispose();
      stepwise.dispose();
    });

    it('trains on the staged copy, and only in the call right after the one that staged it', async () => {
      const [a, b, c] = batchesOf(22, 3, 40, 1024);
      const changedB = Float32Array.from(b.data, (v) => -v);
      const rows = 40;
      const probe = new SparseAutoencoder(options);
      const twin = new SparseAutoencoder(options);
      // The staged copy of b is what the second call trains on, whatever b holds by then.
      await native(probe).trainStep(a.data.slice(), rows, undefined, undefined, b.data, rows);
      b.data.set(changedB);
      await native(probe).trainStep(b.data, rows);
      b.data.set(changedB.map((v) => -v));
      await native(twin).trainStep(a.data.slice(), rows);
      await native(twin).trainStep(b.data.slice(), rows);
      expectSameModel('the staged copy', probe, twin);
      // A call in between (c) uses up what was staged: b is then read as it is now.
      await native(probe).trainStep(a.data.slice(), rows, undefined, undefined, b.data, rows);
      await native(probe).trainStep(c.data, rows);
      b.data.set(changedB);
      await native(probe).trainStep(b.data, rows);
      await native(twin).trainStep(a.data.slice(), rows);
      await native(twin).trainStep(c.data.slice(), rows);
      await native(twin).trainStep(changedB.slice(), rows);
      expectSameModel('after a call in between', probe, twin);
      probe.dispose();
      twin.dispose();
    });

    it('stages the batch of a trainStep on an idle model in the call, scaled: the caller may change it at once', async () => {
      const [a, b, c, d] = batchesOf(24, 4, 40, 1024);
      const probe = new SparseAutoencoder(options);
      const twin = new SparseAutoencoder(options);
      const stage = vi.spyOn(native(probe), 'stageBatch');
      for (const batch of [a, b, c]) {
        const kept = batch.data.slice();
        const running = probe.trainStep(batch);
        batch.data.fill(3);
        await running;
        // The usual way: copied and scaled in JavaScript, then by the step to the GPU.
        await twin._trainStepWith({ ...batch, data: kept }, options.lr, options.l1Coeff);
        expectSameModel(`after a step on an idle model`, probe, twin);
      }
      expect(stage.mock.results.map((r) => r.value)).toEqual([true, true, true]);
      // A call made while another runs waits in the queue: its batch is copied as usual (the
      // first is staged, the second not).
      const first = probe.trainStep(a);
      const second = probe.trainStep(d);
      const keptD = d.data.slice();
      d.data.fill(3);
      await Promise.all([first, second]);
      expect(stage).toHaveBeenCalledTimes(4);
      await twin._trainStepWith({ ...a, data: a.data.slice() }, options.lr, options.l1Coeff);
      await twin._trainStepWith({ ...d, data: keptD }, options.lr, options.l1Coeff);
      expectSameModel('after a step made while one ran', probe, twin);
      // A first step that estimates b_dec from its batch needs the batch in JavaScript.
      const estimating = new SparseAutoencoder({ ...options, initDecoderBias: 'mean' });
      const estimatingStage = vi.spyOn(native(estimating), 'stageBatch');
      await estimating.trainStep(a);
      await estimating.trainStep(b);
      expect(estimatingStage).toHaveBeenCalledTimes(1);
      for (const sae of [probe, twin, estimating]) sae.dispose();
    });

    it('stageBatch: the next trainStep given that very array trains on the copy made in the call', async () => {
      const [a, b] = batchesOf(25, 2, 40, 1024);
      const rows = 40;
      const probe = new SparseAutoencoder(options);
      const twin = new SparseAutoencoder(options);
      const kept = a.data.slice();
      expect(native(probe).stageBatch(a.data, rows, 0.25)).toBe(true);
      a.data.fill(3);
      await native(probe).trainStep(a.data, rows);
      // Scaled as JavaScript scales a Float32Array in place: the product rounded to float32.
      await native(twin).trainStep(Float32Array.from(kept, (v) => v * 0.25), rows);
      expectSameModel('the copy stageBatch made', probe, twin);
      // Another array, even with the same values, is read as it is.
      expect(native(probe).stageBatch(b.data, rows, 1)).toBe(true);
      await native(probe).trainStep(b.data.slice(), rows);
      await native(twin).trainStep(b.data.slice(), rows);
      expectSameModel('a step given another array', probe, twin);
      // What it cannot stage it says so of; the step then reads the array and reports it.
      b.data[5 * 1024 + 2] = NaN;
      expect(native(probe).stageBatch(b.data, rows, 1)).toBe(false);
      await expect(native(probe).trainStep(b.data, rows)).rejects.toThrow(
        new RangeError(`Expected finite values in batch.data but found NaN at index ${5 * 1024 + 2} (row 5, column 2)`),
      );
      expect(() => native(probe).stageBatch(a.data, rows, 0)).toThrow(new RangeError('Expected a positive finite number for scale'));
      expect(() => native(probe).stageBatch(a.data, rows + 1, 1)).toThrow(RangeError);
      const cpu = new SparseAutoencoder({ ...options, device: 'cpu' });
      expect(native(cpu).stageBatch(a.data, rows, 1)).toBe(false);
      for (const sae of [probe, twin, cpu]) sae.dispose();
    });

    it("refuses a staged batch that is not finite, with the CPU backend's message, after the steps before it", async () => {
      const [first, second, third] = batchesOf(23, 3, 40, 1024);
      second.data[7 * 1024 + 5] = NaN;
      const sae = new SparseAutoencoder(options);
      await expect(sae.fit([first, second, third], { steps: 3 })).rejects.toThrow(
        new RangeError(`Expected finite values in batch.data but found NaN at index ${7 * 1024 + 5} (row 7, column 5)`),
      );
      expect(sae.stepsTaken).toBe(1);
      sae.dispose();
    });
  });

  it('rejects non-finite input with the CPU backend\'s message', async () => {
    const gpu = new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0.1, device: 'cuda' });
    await expect(gpu.trainStep({ rows: 1, cols: 4, data: new Float32Array([0, NaN, 0, 0]) })).rejects.toThrow(
      new RangeError('Expected finite values in batch.data but found NaN at index 1 (row 0, column 1)'),
    );
    gpu.dispose();
  });

  it('reports the GPU memory it holds (to V8 as external memory)', async () => {
    const sae = new SparseAutoencoder({ dIn: 512, dHidden: 4096, l1Coeff: 0.1, device: 'cuda' });
    // Parameters and two Adam moments of two 512 x 4096 matrices: 48 MiB, then scratch.
    const state = 6 * 512 * 4096 * 4;
    expect(native(sae).bytesHeld).toBeGreaterThanOrEqual(state);
    const random = new Random(3);
    await sae.trainStep({ rows: 256, cols: 512, data: Float32Array.from({ length: 256 * 512 }, () => random.normal()) });
    expect(native(sae).bytesHeld).toBeGreaterThan(state + 2 * 4096 * 512 * 4);  // + the two gradient matrices
    const handle = native(sae);
    sae.dispose();
    expect(handle.bytesHeld).toBe(0);
  });

  it('throws CUDA_OOM with the sizes when a model does not fit on the GPU', () => {
    let error: unknown;
    try {
      new SparseAutoencoder({ dIn: 1 << 20, dHidden: 1 << 20, l1Coeff: 0.1, device: 'cuda' });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'CUDA_OOM' });
    expect((error as Error).message).toMatch(
      /^CUDA out of memory: A SparseAutoencoder with dIn 1048576 and dHidden 1048576 \(parameters and optimizer state\) needs [\d.]+ TiB of GPU memory \([\d.]+ [KMGT]?i?B of [\d.]+ [KMGT]?i?B free on cuda:0 \(.+\)\); use a smaller batch or model$/,
    );
  });
});

// AuxK: the dead features are chosen by setting both models' firing state (as
// test/sae.auxk.test.ts does), and the inputs keep clear of AuxK's choice too. The AuxK term,
// every gradient, three training steps and the firing bookkeeping (AuxK's units are not
// firing) agree as the plain model's do.
const auxkCases = (['fp32', 'tf32'] as const).flatMap((precision) => [
  { label: 'topk', shape: { dIn: 21, dHidden: 45, rows: 10 }, options: { activation: 'topk', k: 5 }, auxk: 4, precision },
  { label: 'batchtopk, tied', shape: { dIn: 16, dHidden: 40, rows: 8 }, options: { activation: 'batchtopk', k: 3, thresholdStartStep: 0, tied: true }, auxk: 3, precision },
  { label: 'relu, encoder sees x', shape: { dIn: 40, dHidden: 300, rows: 40 }, options: { applyBDecToInput: false }, auxk: 8, precision },
] as const);

describe.skipIf(!cuda.available)(`AuxK on CUDA agrees with the CPU (${cuda.gpu ?? 'no GPU'})`, () => {
  describe.each(auxkCases)('$label, auxk $auxk, $precision', (c) => {
    const tol = tolerance[c.precision];
    const options = { ...c.options, auxk: { k: c.auxk, coefficient: 0.5, deadWindow: 100 }, eps: 0.1, lr: 1e-4 } as Partial<SparseAutoencoderOptions>;
    const where = `AuxK ${c.label} (precision ${c.precision}, ${JSON.stringify(c.shape)}, options ${JSON.stringify(options)})`;
    // 1000 samples seen; every fourth feature (from 1) last fired at sample 0, the others at
    // 1000: the window of 100 outlasts three steps of these batches.
    const dead = Array.from({ length: c.shape.dHidden }, (_, j) => j % 4 === 1);
    const setup = () => {
      const { sae: cpu, params } = randomProblem(c.shape, { ...options, seed: c.shape.dIn });
      const gpu = cudaTwin(cpu, options, c.precision);
      const lastFired = Float64Array.from(dead, (isDead) => (isDead ? 0 : 1000));
      for (const model of [cpu, gpu]) native(model).setTrainingState(1000, lastFired, -1);
      const x = inputsAwayFromDecisions(params, c.shape.rows, margin[c.precision], c.shape.dHidden, { dead, k: c.auxk });
      return { cpu, gpu, x };
    };

    it('computes the same AuxK term and gradients', async () => {
      const { cpu, gpu, x } = setup();
      const [a, b] = [await cpu._gradients(x), await gpu._gradients(x)];
      expect(a.auxLoss, `${where}: the CPU's AuxK term`).toBeGreaterThan(0);
      expectNear(`${where}: auxLoss`, b.auxLoss, a.auxLoss, tol);
      expectNear(`${where}: loss`, b.loss, a.loss, tol);
      expect(b.l0, `${where}: l0`).toBe(a.l0);
      expectClose(`${where}: decoderWeights gradient`, b.decoderWeights, a.decoderWeights, tol);
      expectClose(`${where}: encoderBias gradient`, b.encoderBias, a.encoderBias, tol);
      expectClose(`${where}: decoderBias gradient`, b.decoderBias, a.decoderBias, tol);
      if (!cpu.tied) expectClose(`${where}: encoderWeights gradient`, b.encoderWeights!, a.encoderWeights!, tol);
      cpu.dispose();
      gpu.dispose();
    });

    it('takes the same training steps, counting only the main units as firing', async () => {
      const { cpu, gpu, x } = setup();
      for (let step = 0; step < 3; step++) {
        const [a, b] = [await cpu.trainStep(x), await gpu.trainStep(x)];
        expectNear(`${where}: step ${step} loss`, b.loss, a.loss, tol);
        expectNear(`${where}: step ${step} auxLoss`, b.auxLoss, a.auxLoss, tol);
      }
      for (const name of parameterNames) {
        for (const slot of slots) {
          expectClose(`${where}: ${name} ${slot} after 3 steps`, native(gpu).getParameter(name, slot), native(cpu).getParameter(name, slot), tol);
        }
      }
      const [stateA, stateB] = [native(cpu).getTrainingState(), native(gpu).getTrainingState()];
      expect(stateB.samplesSeen).toBe(1000 + 3 * c.shape.rows);
      expect(Array.from(stateB.lastFired), `${where}: lastFired`).toEqual(Array.from(stateA.lastFired));
      cpu.dispose();
      gpu.dispose();
    });
  });
});

// RICA: five dense FP32 products and per-row kernels on the GPU against the CPU's blocked GEMM.
// The shapes put tails past multiples of the GPU's 128-wide tiles and 32-deep steps on every
// dimension of every product (rows, dIn, dHidden are the m, n and depth of one product or
// another).
const ricaShapes = [
  { dIn: 1, dHidden: 3, rows: 2 },
  { dIn: 13, dHidden: 19, rows: 7 },
  { dIn: 33, dHidden: 130, rows: 37 },
  { dIn: 130, dHidden: 33, rows: 300 },
  { dIn: 257, dHidden: 129, rows: 161 },
];
const ricaCases = [true, false].flatMap((normalizeRows) => ricaShapes.map((shape) => ({ ...shape, normalizeRows })));

function nativeRica(rica: Rica): NativeRica {
  return (rica as unknown as { usable(): NativeRica }).usable();
}

/** The CPU model's twin on CUDA: same options, same weights. */
function ricaTwin(cpu: Rica, options: Partial<RicaOptions> = {}): Rica {
  const gpu = new Rica({ dIn: cpu.dIn, dHidden: cpu.dHidden, lambda: cpu.lambda, epsilon: cpu.epsilon, normalizeRows: cpu.normalizeRows, seed: cpu.seed, ...options, device: 'cuda' });
  gpu._setWeights(cpu.weights().data);
  return gpu;
}

describe.skipIf(!cuda.available)(`Rica on CUDA agrees with the CPU (${cuda.gpu ?? 'no GPU'})`, () => {
  describe.each(ricaCases)('dIn $dIn, dHidden $dHidden, rows $rows, normalizeRows $normalizeRows', ({ normalizeRows, ...shape }) => {
    const where = `Rica ${JSON.stringify({ ...shape, normalizeRows })}`;

    it('computes the same cost, terms and gradient (and both match the float64 reference)', async () => {
      const { rica: cpu, x, w, problem } = ricaProblem(shape, { seed: shape.dIn + shape.rows, normalizeRows });
      const gpu = ricaTwin(cpu);
      expect(gpu.device).toBe('cuda');
      expect(nativeRica(gpu).device).toBe('cuda');
      const [a, b] = [await cpu.objective(x), await gpu.objective(x)];
      expectNear(`${where}: loss`, b.loss, a.loss, 1e-4);
      expectNear(`${where}: sparsity`, b.sparsity, a.sparsity, 1e-4);
      expectNear(`${where}: reconstruction`, b.reconstruction, a.reconstruction, 1e-4);
      // A unit within rounding of |y| = sqrt(epsilon) may count on one device only.
      expect(Math.abs(b.l0 - a.l0), `${where}: l0 ${b.l0} vs ${a.l0}`).toBeLessThanOrEqual(1 / shape.rows);
      expectClose(`${where}: gradient`, b.gradient.data, a.gradient.data, 1e-4);
      expectClose(`${where}: gradient vs float64 reference`, b.gradient.data, ricaRef.gradient(problem, w, x.data, x.rows), 1e-4);
      expectNear(`${where}: loss vs float64 reference`, b.loss, ricaRef.cost(problem, w, x.data, x.rows).loss, 1e-4);
      cpu.dispose();
      gpu.dispose();
    });

    it('encodes the same and holds the same weights and dictionary', async () => {
      const { rica: cpu, x } = ricaProblem(shape, { seed: shape.dHidden, normalizeRows });
      const gpu = ricaTwin(cpu);
      expect(Array.from(gpu.weights().data)).toEqual(Array.from(cpu.weights().data));
      expect(Array.from(gpu.dictionary().data)).toEqual(Array.from(cpu.dictionary().data));
      expectClose(`${where}: encode`, (await gpu.encode(x)).data, (await cpu.encode(x)).data, 1e-5);
      cpu.dispose();
      gpu.dispose();
    });
  });

  it('starts from the same initialisation for a seed', () => {
    const settings: RicaOptions = { dIn: 37, dHidden: 150, lambda: 0.1, seed: 3 };
    const [a, b] = [new Rica(settings), new Rica({ ...settings, device: 'cuda' })];
    expect(Array.from(b.weights().data)).toEqual(Array.from(a.weights().data));
    a.dispose();
    b.dispose();
  });

  it('takes the same Adam steps', async () => {
    const { rica: cpuModel, x } = ricaProblem({ dIn: 40, dHidden: 150, rows: 200 }, { seed: 6 });
    const settings = { dIn: 40, dHidden: 150, lambda: 0.3, optimizer: 'adam' as const, lr: 1e-2, seed: 6 };
    const cpu = new Rica(settings);
    cpu._setWeights(cpuModel.weights().data);
    cpuModel.dispose();
    const gpu = ricaTwin(cpu, { optimizer: 'adam', lr: 1e-2 });
    const [a, b] = [await cpu.fit(x, { steps: 5, batchSize: 50 }), await gpu.fit(x, { steps: 5, batchSize: 50 })];
    expect(gpu.stepsTaken).toBe(5);
    expectNear('adam: first loss', b[0].loss, a[0].loss, 1e-4);
    expectNear('adam: last loss', b[4].loss, a[4].loss, 1e-3);
    // Adam's first steps are lr * sign(g) (eps 1e-8): a gradient within rounding of zero may
    // step the other way on one device, so a few weights (at most 1 in 1000) may differ by ~lr.
    const [wa, wb] = [cpu.weights().data, gpu.weights().data];
    const scale = wa.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const apart = wa.filter((v, i) => Math.abs(wb[i] - v) > 1e-4 * scale).length;
    expect(apart, `adam: ${apart} of ${wa.length} weights apart after 5 steps`).toBeLessThanOrEqual(wa.length / 1000);
    cpu.dispose();
    gpu.dispose();
  });

  it('fits the same model with L-BFGS', async () => {
    const { rica: cpu, x } = ricaProblem({ dIn: 24, dHidden: 48, rows: 400 }, { seed: 7 });
    const gpu = ricaTwin(cpu);
    const [a, b] = [await cpu.fit(x, { steps: 10 }), await gpu.fit(x, { steps: 10 })];
    // L-BFGS may stop early when the objective stops changing; compare the steps both took.
    const n = Math.min(a.length, b.length);
    expect(n).toBeGreaterThanOrEqual(5);
    expect(b[n - 1].loss).toBeLessThan(b[0].loss);
    expectNear('lbfgs: first loss', b[0].loss, a[0].loss, 1e-4);
    expectNear(`lbfgs: loss after ${n} steps`, b[n - 1].loss, a[n - 1].loss, 1e-3);
    expectClose('lbfgs: dictionary', gpu.dictionary().data, cpu.dictionary().data, 1e-2);
    cpu.dispose();
    gpu.dispose();
  });

  it('gives bit-identical cost and gradient on every run', async () => {
    const { rica: cpu, x } = ricaProblem({ dIn: 70, dHidden: 200, rows: 333 }, { seed: 8 });
    const run = async () => {
      const gpu = ricaTwin(cpu);
      const result = await gpu.objective(x);
      gpu.dispose();
      return result;
    };
    const [first, second] = [await run(), await run()];
    expect(second.loss).toBe(first.loss);
    expect(Array.from(second.gradient.data)).toEqual(Array.from(first.gradient.data));
    cpu.dispose();
  });

  it("rejects non-finite input with the CPU backend's message", async () => {
    const gpu = new Rica({ dIn: 4, dHidden: 8, lambda: 0.1, device: 'cuda' });
    await expect(gpu.objective({ rows: 1, cols: 4, data: new Float32Array([0, 0, Infinity, 0]) })).rejects.toThrow(
      new RangeError('Expected finite values in x.data but found Infinity at index 2 (row 0, column 2)'),
    );
    gpu.dispose();
  });

  it('reports the GPU memory it holds and returns it on dispose', async () => {
    const gpu = new Rica({ dIn: 256, dHidden: 1024, lambda: 0.1, device: 'cuda' });
    const state = 3 * 256 * 1024 * 4;  // W and Adam's two moments
    expect(nativeRica(gpu).bytesHeld).toBeGreaterThanOrEqual(state);
    const random = new Random(3);
    await gpu.objective({ rows: 128, cols: 256, data: Float32Array.from({ length: 128 * 256 }, () => random.normal()) });
    expect(nativeRica(gpu).bytesHeld).toBeGreaterThanOrEqual(state + 3 * 256 * 1024 * 4);  // + gradient, V, evaluated W
    const handle = nativeRica(gpu);
    gpu.dispose();
    expect(handle.bytesHeld).toBe(0);
  });

  it('throws CUDA_OOM with the sizes when a Rica does not fit on the GPU', () => {
    let error: unknown;
    try {
      new Rica({ dIn: 1 << 20, dHidden: 1 << 20, lambda: 0.1, device: 'cuda' });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'CUDA_OOM' });
    expect((error as Error).message).toMatch(
      /^CUDA out of memory: A Rica with dIn 1048576 and dHidden 1048576 \(parameters and optimizer state\) needs [\d.]+ TiB of GPU memory \([\d.]+ [KMGT]?i?B of [\d.]+ [KMGT]?i?B free on cuda:0 \(.+\)\); use a smaller batch or model$/,
    );
  });
});

// FistaCoder: the same lasso problem and stopping test (Gram form, monotone FISTA with restart
// on working sets, per-row KKT stop, backtracked step) on the GPU. The iterates differ (the
// working sets are chosen another way, L, G and c are formed by other products, reductions
// run in another order), so the comparisons are of converged solutions: objectives to 1e-5,
// codes to 1e-3, and each device's KKT test. That test is made from float G and c, and the
// violation seen in float64 differs from it by their rounding, which grows with the codes: at
// m 300, d 130 the CPU's own solutions differ by up to 5.2e-7 of the scale, and so do the GPU's.
const kktSlack = 1e-6;
const fistaShapes = [
  { m: 64, d: 24, rows: 16 },  // d < m: L from D^T D
  { m: 300, d: 130, rows: 37 },  // working sets, several tiles of 32 atoms per warp, tails everywhere
  { m: 40, d: 200, rows: 9 },  // m < d: L from G
];
const fistaCases = [false, true].flatMap((nonNegative) => fistaShapes.map((shape) => ({ ...shape, nonNegative })));

describe.skipIf(!cuda.available)(`FistaCoder on CUDA agrees with the CPU (${cuda.gpu ?? 'no GPU'})`, () => {
  describe.each(fistaCases)('m $m, d $d, rows $rows, nonNegative $nonNegative', ({ m, d, rows, nonNegative }) => {
    const where = `FistaCoder ${JSON.stringify({ m, d, rows, nonNegative })}`;
    const dictionary = randomDictionary(m, d, m + d);
    const x = randomMatrix(rows, d, rows);
    const lambda = 0.3;
    const options = { dictionary, lambda, nonNegative, maxIter: 20_000 };

    it('solves the same lasso: L, objectives, codes and the KKT conditions', async () => {
      const cpu = new FistaCoder(options);
      const gpu = new FistaCoder({ ...options, device: 'cuda' });
      expect(gpu.device).toBe('cuda');
      expect((gpu as unknown as { usable(): NativeFista }).usable().device).toBe('cuda');
      expectNear(`${where}: L`, await gpu.lipschitz(), await cpu.lipschitz(), 1e-5);
      const [a, b] = [await cpu.encode(x), await gpu.encode(x)];
      expect(a.converged && b.converged, `${where}: converged`).toBe(true);
      const problem = lasso(dictionary, lambda, nonNegative);
      for (let r = 0; r < rows; r++) {
        expectNear(`${where}: row ${r} objective`, b.rowObjectives[r], a.rowObjectives[r], 1e-5);
        const { violation, scale } = fistaRef.kkt(problem, row(x, r), row(b.codes, r));
        expect(violation / scale, `${where}: row ${r} KKT in float64`).toBeLessThanOrEqual(gpu.tol + kktSlack);
        expect(Math.abs(b.rowKkt[r] - violation / scale), `${where}: row ${r} reported KKT`).toBeLessThan(kktSlack);
        expect(b.rowGaps[r]).toBeGreaterThanOrEqual(0);
      }
      expectClose(`${where}: codes`, b.codes.data, a.codes.data, 1e-3);
      if (nonNegative) expect(b.codes.data.every((v) => v >= 0)).toBe(true);
      cpu.dispose();
      gpu.dispose();
    });

    it('starts from init (projected when nonNegative) and stops at maxIter', async () => {
      const init = randomMatrix(rows, m, 3);
      const capped = new FistaCoder({ ...options, maxIter: 0, device: 'cuda' });
      const start = await capped.encode(x, { init });
      expect(Array.from(start.rowIterations).every((n) => n === 0)).toBe(true);
      expect(start.converged).toBe(false);
      const projected = Float32Array.from(init.data, (v) => (nonNegative ? Math.max(v, 0) : v));
      expect(Array.from(start.codes.data)).toEqual(Array.from(projected));
      capped.dispose();
      // A warm start at the solution stops at once.
      const gpu = new FistaCoder({ ...options, device: 'cuda' });
      const cold = await gpu.encode(x);
      const warm = await gpu.encode(x, { init: cold.codes });
      expect(warm.iterations).toBeLessThan(cold.iterations);
      expectClose(`${where}: warm codes`, warm.codes.data, cold.codes.data, 1e-3);
      gpu.dispose();
    });
  });

  it('stops on the duality gap when asked, as the CPU does', async () => {
    const dictionary = randomDictionary(128, 48, 4);
    const x = randomMatrix(20, 48, 5);
    const options = { dictionary, lambda: 0.2, tol: 0, gapTol: 1e-4, maxIter: 50_000 };
    const [cpu, gpu] = [new FistaCoder(options), new FistaCoder({ ...options, device: 'cuda' })];
    const [a, b] = [await cpu.encode(x), await gpu.encode(x)];
    expect(b.converged).toBe(true);
    for (let r = 0; r < x.rows; r++) {
      // The gap bounds the distance to the optimum: both are within 1e-4 of it.
      expectNear(`gap stop: row ${r} objective`, b.rowObjectives[r], a.rowObjectives[r], 3e-4);
    }
    cpu.dispose();
    gpu.dispose();
  });

  it('gives bit-identical codes on every run', async () => {
    const dictionary = randomDictionary(200, 64, 6);
    const x = randomMatrix(50, 64, 7);
    const run = async () => {
      const gpu = new FistaCoder({ dictionary, lambda: 0.1, device: 'cuda' });
      const result = await gpu.encode(x);
      gpu.dispose();
      return result;
    };
    const [first, second] = [await run(), await run()];
    expect(Array.from(second.codes.data)).toEqual(Array.from(first.codes.data));
    expect(Array.from(second.rowIterations)).toEqual(Array.from(first.rowIterations));
  });

  it("rejects non-finite input with the CPU backend's message", async () => {
    const gpu = new FistaCoder({ dictionary: randomDictionary(8, 4, 1), lambda: 0.1, device: 'cuda' });
    await expect(gpu.encode({ rows: 1, cols: 4, data: new Float32Array([0, NaN, 0, 0]) })).rejects.toThrow(
      new RangeError('Expected finite values in x.data but found NaN at index 1 (row 0, column 1)'),
    );
    gpu.dispose();
  });
});

// FistaDictionary: the GPU codes each batch with FistaCoder's kernel and the host updates the
// statistics and the atoms with the CPU backend's code, so the two devices' dictionaries differ
// only as far as their codes do. Codes are solved tightly (tol 1e-7) so that this stays small
// over a few steps; the comparisons are of per-step statistics and of the dictionaries, to 1e-3.
describe.skipIf(!cuda.available)(`FistaDictionary on CUDA agrees with the CPU (${cuda.gpu ?? 'no GPU'})`, () => {
  const tight = { tol: 1e-7, maxIter: 20_000 };

  it('starts from the same dictionary for a seed', () => {
    const options = { dIn: 24, dHidden: 64, lambda: 0.1, seed: 7 };
    const [cpu, gpu] = [new FistaDictionary(options), new FistaDictionary({ ...options, device: 'cuda' })];
    expect(gpu.device).toBe('cuda');
    expect((gpu as unknown as { usable(): NativeFista }).usable().device).toBe('cuda');
    expect(Array.from(gpu.dictionary().data)).toEqual(Array.from(cpu.dictionary().data));
    cpu.dispose();
    gpu.dispose();
  });

  it('matches the float64 reference of three steps: codes, decayed statistics, block coordinate descent', async () => {
    const [m, d, n, lambda] = [8, 6, 40, 0.05];
    const model = new FistaDictionary({ dIn: d, dHidden: m, lambda, nonNegative: false, seed: 5, device: 'cuda', ...tight });
    const batches = [randomMatrix(n, d, 1), randomMatrix(n, d, 2), randomMatrix(n, d, 3)];
    const expected = fistaRef.onlineLearning(model.dictionary().data, m, d, lambda, batches);
    const records = await model.fit(batches, { steps: 3 });
    expect(records.map((r) => r.resampled)).toEqual([0, 0, 0]);
    for (let s = 0; s < 3; s++) expectNear(`step ${s} loss`, records[s].loss, expected.losses[s], 1e-5);
    expectClose('dictionary after 3 steps', model.dictionary().data, expected.dictionary, 1e-4);
    expect(model.stepsTaken).toBe(3);
    model.dispose();
  });

  it.each([false, true])(
    'learns the same dictionary from a Matrix over epochs, each row warm-started from its last codes (nonNegative %s)',
    async (nonNegative) => {
      const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 8 });
      const { x } = toy.sample(512);
      const options = { dIn: 32, dHidden: 96, lambda: 0.1, seed: 8, nonNegative, ...tight };
      const where = `FistaDictionary ${JSON.stringify(options)}, 3 epochs of 4 batches of 128`;
      const [cpu, gpu] = [new FistaDictionary(options), new FistaDictionary({ ...options, device: 'cuda' })];
      const [a, b] = [await cpu.fit(x, { epochs: 3, batchSize: 128 }), await gpu.fit(x, { epochs: 3, batchSize: 128 })];
      expect(gpu.stepsTaken).toBe(12);
      for (let s = 0; s < 12; s++) {
        for (const key of ['loss', 'mse', 'l1'] as const) expectNear(`${where}: step ${s} ${key}`, b[s][key], a[s][key], 1e-3);
        expect(Math.abs(b[s].l0 - a[s].l0), `${where}: step ${s} l0`).toBeLessThanOrEqual(0.02 * a[s].l0);
        expect(b[s].resampled, `${where}: step ${s} resampled`).toBe(a[s].resampled);
      }
      expectClose(`${where}: dictionary`, gpu.dictionary().data, cpu.dictionary().data, 1e-3);
      // Warm starts: the same batches as an iterable carry no row ids, so every solve starts
      // from zero; from the Matrix the last epoch's rows start from their previous codes.
      const cold = new FistaDictionary({ ...options, device: 'cuda' });
      const batches = Array.from({ length: 12 }, (_, s) => {
        const start = (s % 4) * 128;
        return { rows: 128, cols: 32, data: x.data.slice(start * 32, (start + 128) * 32) };
      });
      const coldRecords = await cold.fit(batches, { steps: 12 });
      const lastEpoch = (records: { iterations: number }[]) => records.slice(8).reduce((sum, r) => sum + r.iterations, 0);
      expect(lastEpoch(b), `${where}: warm last epoch iterations`).toBeLessThan(0.8 * lastEpoch(coldRecords));
      cpu.dispose();
      gpu.dispose();
      cold.dispose();
    },
  );

  it('redraws unused atoms from the batch exactly as the CPU does', async () => {
    // lambda above every |x D^T|: no code is active, every atom is redrawn from the same draws.
    const options = { dIn: 12, dHidden: 20, lambda: 100, seed: 2 };
    const batch = randomMatrix(30, 12, 5);
    const [cpu, gpu] = [new FistaDictionary(options), new FistaDictionary({ ...options, device: 'cuda' })];
    const [[a], [b]] = [await cpu.fit([batch], { steps: 1 }), await gpu.fit([batch], { steps: 1 })];
    // The losses are sums of the rows' squares, added in another order on each device.
    expectNear('loss', b.loss, a.loss, 1e-12);
    expectNear('mse', b.mse, a.mse, 1e-12);
    expect({ ...b, loss: 0, mse: 0 }).toEqual({ ...a, loss: 0, mse: 0 });
    expect(b).toMatchObject({ l0: 0, resampled: 20 });
    expect(Array.from(gpu.dictionary().data)).toEqual(Array.from(cpu.dictionary().data));
    cpu.dispose();
    gpu.dispose();
  });

  it('encodes with the learnt dictionary as FistaCoder on the CPU does', async () => {
    const toy = new ToyDataset({ dim: 24, numFeatures: 48, expectedActive: 3, seed: 9 });
    const gpu = new FistaDictionary({ dIn: 24, dHidden: 64, lambda: 0.1, seed: 9, device: 'cuda' });
    await gpu.fit(toy.batches(128), { steps: 5 });
    const { x } = toy.sample(40);
    const coder = new FistaCoder({ dictionary: gpu.dictionary(), lambda: 0.1, nonNegative: true });
    expectClose('codes', (await gpu.encode(x)).data, (await coder.encode(x)).codes.data, 1e-3);
    coder.dispose();
    gpu.dispose();
  });

  it('gives a bit-identical dictionary for a seed on every run', async () => {
    const x = randomMatrix(200, 16, 10);
    const run = async () => {
      const gpu = new FistaDictionary({ dIn: 16, dHidden: 40, lambda: 0.2, seed: 6, device: 'cuda' });
      const records = await gpu.fit(x, { epochs: 2, batchSize: 50 });
      const dictionary = gpu.dictionary();
      gpu.dispose();
      return { records, dictionary: Array.from(dictionary.data) };
    };
    expect(await run()).toEqual(await run());
  });

  it("rejects non-finite batches with the CPU backend's message", async () => {
    const gpu = new FistaDictionary({ dIn: 4, dHidden: 6, lambda: 0.1, device: 'cuda' });
    await expect(gpu.fit([{ rows: 1, cols: 4, data: new Float32Array([0, 0, Infinity, 0]) }], { steps: 1 })).rejects.toThrow(
      new RangeError('Expected finite values in batch.data but found Infinity at index 2 (row 0, column 2)'),
    );
    gpu.dispose();
  });
});

// Device 'cuda:N': each model runs on the GPU it names. On one GPU 'cuda:0' is 'cuda'; the GPU
// emulator has two devices, the second small, and fails work issued to a stream of another
// device than the calling thread's, so there a call that forgot to select its model's GPU fails.
const gpus = cuda.gpus ?? [];
const lastGpu: Device = `cuda:${Math.max(gpus.length - 1, 0)}`;

describe.skipIf(!cuda.available)(`Models on 'cuda:N' (${gpus.length} GPUs: ${gpus.join('; ') || 'none'})`, () => {
  it(`trains, encodes and solves on '${lastGpu}' as on 'cuda', both at once`, async () => {
    const random = new Random(11);
    const x: Matrix = { rows: 96, cols: 20, data: Float32Array.from({ length: 96 * 20 }, () => random.normal()) };
    const saeOptions = { dIn: 20, dHidden: 48, l1Coeff: 0.01, seed: 4, precision: 'fp32' as const };
    const ricaOptions = { dIn: 20, dHidden: 30, lambda: 0.2, optimizer: 'adam' as const, lr: 1e-2, seed: 4 };
    const fistaOptions = { dictionary: randomDictionary(48, 20, 4), lambda: 0.2 };
    const dictionaryOptions = { dIn: 20, dHidden: 32, lambda: 0.2, seed: 4 };
    // Every model of one device, each step interleaved with the other device's on libuv's threads.
    const runOn = async (device: Device) => {
      const sae = new SparseAutoencoder({ ...saeOptions, device });
      const rica = new Rica({ ...ricaOptions, device });
      const coder = new FistaCoder({ ...fistaOptions, device });
      const learner = new FistaDictionary({ ...dictionaryOptions, device });
      expect([sae.device, rica.device, coder.device, learner.device]).toEqual([device, device, device, device]);
      const [saeRecords, ricaRecords, solution, learnerRecords] = await Promise.all([
        sae.fit(x, { steps: 3, batchSize: 32 }),
        rica.fit(x, { steps: 3, batchSize: 32 }),
        coder.encode(x),
        learner.fit(x, { steps: 2, batchSize: 48 }),
      ]);
      const result = {
        saeLoss: saeRecords[2].loss,
        saeDecoder: sae.decoderWeights().data,
        ricaLoss: ricaRecords[2].loss,
        ricaWeights: rica.weights().data,
        codes: solution.codes.data,
        learnerLoss: learnerRecords[1].loss,
        atoms: learner.dictionary().data,
      };
      for (const model of [sae, rica, coder, learner]) model.dispose();
      return result;
    };
    const [first, last] = await Promise.all([runOn('cuda'), runOn(lastGpu)]);
    // The same kernels on GPUs of one kind give the same bits; on GPUs of different kinds the
    // reductions still run in one order, so the results stay within FP32 rounding.
    expectNear('SparseAutoencoder loss', last.saeLoss, first.saeLoss, tolerance.fp32);
    expectClose('SparseAutoencoder decoder', last.saeDecoder, first.saeDecoder, tolerance.fp32);
    expectNear('Rica loss', last.ricaLoss, first.ricaLoss, tolerance.fp32);
    expectClose('Rica weights', last.ricaWeights, first.ricaWeights, tolerance.fp32);
    expectClose('FistaCoder codes', last.codes, first.codes, tolerance.fp32);
    expectNear('FistaDictionary loss', last.learnerLoss, first.learnerLoss, tolerance.fp32);
    expectClose('FistaDictionary atoms', last.atoms, first.atoms, tolerance.fp32);
  });

  it(`puts a model's memory on the GPU it names: one too large says so, naming '${lastGpu}'`, () => {
    const name = (gpus[gpus.length - 1] ?? '').replace(/ \(compute capability [\d.]+\)$/, '');
    const tooLarge = [
      () => new SparseAutoencoder({ dIn: 1 << 20, dHidden: 1 << 20, l1Coeff: 0.1, device: lastGpu }),
      () => new Rica({ dIn: 1 << 20, dHidden: 1 << 20, lambda: 0.1, device: lastGpu }),
    ];
    for (const create of tooLarge) {
      expect(create).toThrow(expect.objectContaining({ code: 'CUDA_OOM', message: expect.stringContaining(` free on ${lastGpu} (${name}))`) }));
    }
  });

  // The emulator's second device holds 256 MiB: models a worker left behind that were not freed
  // when it ended would soon fill it. (On a GPU the same code frees them; filling a real GPU's
  // memory would take too long for a test.)
  const smallEmulatedGpu = gpus[1]?.startsWith('saekit GPU emulator, small') === true;
  it.skipIf(!smallEmulatedGpu)('frees the GPU memory of models a worker thread left behind, when the worker ends', { timeout: 600_000 }, async () => {
    const index = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
    const options = { dIn: 1024, dHidden: 6848, l1Coeff: 0.1, device: 'cuda:1' as const };  // 160 MiB of the 256
    const script = `import(${JSON.stringify(index)}).then(({ SparseAutoencoder }) => {
      globalThis.leftBehind = new SparseAutoencoder(${JSON.stringify(options)});
    });`;
    for (let round = 0; round < 3; round++) {
      await new Promise((done, fail) => {
        const worker = new Worker(script, { eval: true });
        worker.once('error', fail);
        worker.once('exit', done);
      });
    }
    const model = new SparseAutoencoder(options);
    model.dispose();
  });

  it('refuses, in the native constructor too, an index past the last GPU', () => {
    const Native = (addon as unknown as { NativeRica: new (options: object) => unknown }).NativeRica;
    const options = { dIn: 2, dHidden: 2, seed: 0, threads: 1, lambda: 0.1, epsilon: 0.01, normalizeRows: true, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    expect(() => new Native({ ...options, device: `cuda:${gpus.length}` })).toThrow(
      expect.objectContaining({
        code: 'BACKEND_UNAVAILABLE',
        message: expect.stringContaining(`Cannot create a Rica on device 'cuda:${gpus.length}': the CUDA runtime sees`),
      }),
    );
  });
});
