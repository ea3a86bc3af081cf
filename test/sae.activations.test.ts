// TopK and BatchTopK: the selection in the encoder epilogue, its gradients, inference with the
// learned threshold, recovery of known features, and files.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { metrics, SparseAutoencoder, ToyDataset } from '../lib/index.js';
import * as ref from './reference.js';
import { cpuKernelSets, randomMatrix, randomProblem, relativeError } from './fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'saekit-activations-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Smallest gap between a kept and a dropped pre-activation (or zero) within each selection
 * (a row for TopK, the batch for BatchTopK): finite-difference steps must not cross it.
 */
function selectionMargin(p: ref.Params, x: Float32Array, rows: number): number {
  const pre = ref.preActivations(p, x, rows);
  const h = ref.activate(p, pre, rows);
  const groups = p.activation === 'topk' ? rows : 1;
  const size = pre.length / groups;
  let margin = Infinity;
  for (let g = 0; g < groups; g++) {
    let keptMin = Infinity;
    let droppedMax = 0;
    for (let i = g * size; i < (g + 1) * size; i++) {
      if (h[i] > 0) keptMin = Math.min(keptMin, pre[i]);
      else droppedMax = Math.max(droppedMax, pre[i]);
    }
    margin = Math.min(margin, keptMin - droppedMax);
  }
  return margin;
}

const cases = cpuKernelSets.flatMap((cpuKernels) =>
  (['topk', 'batchtopk'] as const).flatMap((activation) => [false, true].map((tied) => ({ cpuKernels, activation, tied }))),
);

describe.each(cases)('$activation ($cpuKernels kernels, tied: $tied)', ({ cpuKernels, activation, tied }) => {
  const shape = { dIn: 13, dHidden: 31, rows: 6 };
  const options = { tied, cpuKernels, activation, k: 4, l1Coeff: 0.01, seed: 21 };

  it('gradients match central finite differences of the reference', async () => {
    const { sae, x, params } = randomProblem(shape, options);
    expect(selectionMargin(params, x.data, x.rows)).toBeGreaterThan(1e-3);
    const native = await sae._gradients(x);
    const fd = (tensor: Float64Array) =>
      Float64Array.from(tensor, (_, i) => {
        const saved = tensor[i];
        tensor[i] = saved + 1e-6;
        const plus = ref.forward(params, x.data, x.rows, 0.01).loss;
        tensor[i] = saved - 1e-6;
        const minus = ref.forward(params, x.data, x.rows, 0.01).loss;
        tensor[i] = saved;
        return (plus - minus) / 2e-6;
      });
    expect(relativeError(native.decoderWeights, fd(params.wDec))).toBeLessThan(1e-4);
    if (!tied) expect(relativeError(native.encoderWeights!, fd(params.wEnc))).toBeLessThan(1e-4);
    expect(relativeError(native.encoderBias, fd(params.bEnc))).toBeLessThan(1e-4);
    expect(relativeError(native.decoderBias, fd(params.bDec))).toBeLessThan(1e-4);
    const expected = ref.forward(params, x.data, x.rows, 0.01);
    expect(native.l0).toBe(expected.l0);
    expect(native.l0).toBeLessThanOrEqual(4);
    sae.dispose();
  });

  it('a training step matches the reference step', async () => {
    const { sae, x, params } = randomProblem(shape, { ...options, lr: 0.01 });
    const state: ref.AdamState = { t: 0, m: new Map(), v: new Map() };
    await sae.trainStep(x);
    ref.trainStep(params, x.data, x.rows, { l1Coeff: 0.01, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, state);
    expect(relativeError(sae.decoderWeights().data, params.wDec)).toBeLessThan(1e-4);
    expect(relativeError(sae.encoderBias(), params.bEnc)).toBeLessThan(1e-4);
    sae.dispose();
  });
});

describe('TopK encoding', () => {
  it('keeps exactly the k largest positive pre-activations of each row', async () => {
    const { sae, x, params } = randomProblem({ dIn: 20, dHidden: 50, rows: 30 }, { activation: 'topk', k: 5, seed: 3 }, 1e-3);
    const codes = await sae.encode(x);
    const expected = ref.activate(params, ref.preActivations(params, x.data, 30), 30);
    expect(relativeError(codes.data, expected)).toBeLessThan(1e-5);
    for (let r = 0; r < 30; r++) {
      const active = codes.data.subarray(r * 50, (r + 1) * 50).filter((v) => v > 0).length;
      expect(active).toBeLessThanOrEqual(5);
    }
    const sparse = await sae.encode(x, { format: 'sparse' });
    expect(sparse.indptr[30]).toBe(codes.data.filter((v) => v > 0).length);
    sae.dispose();
  });
});

describe('BatchTopK', () => {
  it('selects what extracting every positive value would, with the extraction prefilter set and when a batch falls below it', async () => {
    const { sae, x, params } = randomProblem({ dIn: 13, dHidden: 31, rows: 6 }, { activation: 'batchtopk', k: 4, l1Coeff: 0.01, seed: 21 });
    const expectReference = async (batch: typeof x, what: string) => {
      const native = await sae._gradients(batch);
      const expected = ref.gradients(params, batch.data, batch.rows, 0.01);
      expect(native.l0, what).toBe(ref.forward(params, batch.data, batch.rows, 0.01).l0);
      expect(relativeError(native.decoderWeights, expected.wDec), what).toBeLessThan(1e-5);
      expect(relativeError(native.encoderBias, expected.bEnc), what).toBeLessThan(1e-5);
    };
    // The first call sets the prefilter from what it kept; the next ones extract with it.
    for (let i = 0; i < 3; i++) await expectReference(x, `call ${i + 1}`);
    // A batch with large activations raises the prefilter above most of x's values: x then
    // has fewer than k * rows values above it, and the extraction must fall back.
    await expectReference({ ...x, data: x.data.map((v) => 30 * v) }, 'large batch');
    await expectReference(x, 'after the large batch');
    sae.dispose();
  });

  it('keeps k * rows units over the batch in training, and uses the tracked threshold at inference', async () => {
    const sae = new SparseAutoencoder({ dIn: 16, dHidden: 64, activation: 'batchtopk', k: 3, lr: 1e-3, thresholdStartStep: 2, seed: 5 });
    const batch = randomMatrix(40, 16, 8);
    const first = await sae.trainStep(batch);
    expect(first.l0).toBe(3);
    for (let i = 0; i < 5; i++) expect((await sae.trainStep(randomMatrix(40, 16, 9 + i))).l0).toBe(3);
    // Inference: pre-activations above the threshold; the threshold is positive once tracked.
    const dir = join(work, 'batchtopk');
    await sae.save(dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'));
    expect(cfg.architecture).toBe('batchtopk');
    const threshold = cfg.saekit.threshold as number;
    expect(threshold).toBeGreaterThan(0);
    const x = randomMatrix(25, 16, 99);
    const codes = await sae.encode(x);
    const p = { d: 16, m: 64, tied: false, wEnc: Float64Array.from(sae.encoderWeights().data), bEnc: Float64Array.from(sae.encoderBias()), wDec: new Float64Array(0), bDec: Float64Array.from(sae.decoderBias()) };
    const pre = ref.preActivations(p, x.data, 25);
    for (let i = 0; i < pre.length; i++) {
      if (Math.abs(pre[i] - threshold) < 1e-5) continue;
      expect(codes.data[i] > 0, `unit ${i}`).toBe(pre[i] > threshold);
    }
    const loaded = await SparseAutoencoder.load(dir);
    expect([loaded.activation, loaded.k]).toEqual(['batchtopk', 3]);
    expect(await loaded.encode(x)).toEqual(codes);
    sae.dispose();
    loaded.dispose();
  });
});

describe('feature recovery with TopK and BatchTopK (d 32, 64 true features, 3 active)', () => {
  it.each(['topk', 'batchtopk'] as const)('%s reaches MMCS 0.95', async (activation) => {
    const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 3 });
    const sae = new SparseAutoencoder({ dIn: 32, dHidden: 128, activation, k: 4, lr: 3e-3, seed: 3, thresholdStartStep: 100 });
    await sae.fit(toy.batches(256), { steps: 1500 });
    expect(metrics.mmcs(sae.dictionary(), toy.features)).toBeGreaterThanOrEqual(0.95);
    sae.dispose();
  });
});

describe('files', () => {
  it('a TopK model saves as SAELens architecture "topk" with k and loads back', async () => {
    const sae = new SparseAutoencoder({ dIn: 8, dHidden: 20, activation: 'topk', k: 3, seed: 1 });
    await sae.trainStep(randomMatrix(10, 8, 1));
    const dir = join(work, 'topk');
    await sae.save(dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'));
    expect(cfg).toMatchObject({ architecture: 'topk', k: 3, activation_fn_kwargs: { k: 3 } });
    const loaded = await SparseAutoencoder.load(dir);
    expect([loaded.activation, loaded.k, loaded.l1Coeff]).toEqual(['topk', 3, 0]);
    const x = randomMatrix(6, 8, 2);
    expect(await loaded.encode(x)).toEqual(await sae.encode(x));
    sae.dispose();
    loaded.dispose();
  });

  it('validates activation and k', () => {
    expect(() => new SparseAutoencoder({ dIn: 4, dHidden: 8, activation: 'topk' } as never)).toThrow(
      new TypeError('Expected number for k but received undefined'),
    );
    expect(() => new SparseAutoencoder({ dIn: 4, dHidden: 8, activation: 'topk', k: 9 })).toThrow(
      new RangeError('Expected integer in [1, 8] for k but received 9 of type number'),
    );
    expect(() => new SparseAutoencoder({ dIn: 4, dHidden: 8, activation: 'jumprelu' as never, k: 2 })).toThrow(
      new RangeError("Expected one of 'relu', 'topk', 'batchtopk' for activation but received \"jumprelu\" of type string"),
    );
    expect(() => new SparseAutoencoder({ dIn: 4, dHidden: 8 } as never)).toThrow(new TypeError('Expected number for l1Coeff but received undefined'));
  });
});
