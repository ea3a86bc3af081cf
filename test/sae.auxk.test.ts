// AuxK: the auxiliary loss that reaches dead features, against a float64 reference with the
// residual held fixed (as the model detaches it).
import { describe, expect, it } from 'vitest';

import { metrics, SparseAutoencoder, ToyDataset } from '../lib/index.js';
import { evaluate } from '../lib/evaluate.js';
import * as ref from './reference.js';
import { cpuKernelSets, randomMatrix, randomProblem, relativeError } from './fixtures.js';

describe.each(cpuKernelSets)('AuxK (%s kernels)', (cpuKernels) => {
  const shape = { dIn: 9, dHidden: 24, rows: 7 };
  const deadFeatures = [1, 4, 5, 9, 13, 20, 22, 23];

  function problem() {
    const auxk = { k: 3, coefficient: 0.5, deadWindow: 100 };
    const { sae, x, params } = randomProblem(shape, { cpuKernels, activation: 'topk', k: 4, l1Coeff: 0.01, auxk, seed: 17 } as never);
    // Mark the chosen features dead: 1000 samples seen, they last fired at sample 0.
    const lastFired = new Float64Array(shape.dHidden).fill(1000);
    for (const j of deadFeatures) lastFired[j] = 0;
    (sae as unknown as { usable(): { setTrainingState(n: number, f: Float64Array, t: number): void } }).usable().setTrainingState(1000, lastFired, -1);
    const dead = Array.from({ length: shape.dHidden }, (_, j) => deadFeatures.includes(j));
    return { sae, x, params, auxk, dead };
  }

  it('the loss and gradients match the reference (finite differences, residual held fixed)', async () => {
    const { sae, x, params, auxk, dead } = problem();
    const base = ref.forward(params, x.data, x.rows, 0.01);
    const e = Float64Array.from(x.data, (v, i) => v - base.xhat[i]);
    const total = () => ref.forward(params, x.data, x.rows, 0.01).loss + ref.auxLoss(params, x.data, x.rows, dead, auxk.k, auxk.coefficient, e);
    const native = await sae._gradients(x);
    const expectedAux = ref.auxLoss(params, x.data, x.rows, dead, auxk.k, auxk.coefficient, e);
    expect(expectedAux).toBeGreaterThan(0.01);
    expect(native.auxLoss).toBeCloseTo(expectedAux, 5);
    expect(native.loss).toBeCloseTo(base.loss + expectedAux, 5);
    const fd = (tensor: Float64Array) =>
      Float64Array.from(tensor, (_, i) => {
        const saved = tensor[i];
        tensor[i] = saved + 1e-6;
        const plus = total();
        tensor[i] = saved - 1e-6;
        const minus = total();
        tensor[i] = saved;
        return (plus - minus) / 2e-6;
      });
    expect(relativeError(native.decoderWeights, fd(params.wDec))).toBeLessThan(1e-4);
    expect(relativeError(native.encoderWeights!, fd(params.wEnc))).toBeLessThan(1e-4);
    expect(relativeError(native.encoderBias, fd(params.bEnc))).toBeLessThan(1e-4);
    expect(relativeError(native.decoderBias, fd(params.bDec))).toBeLessThan(1e-4);
    // Only dead features get AuxK gradient on their decoder rows beyond the main loss's.
    const withoutAux = await (() => {
      const plain = randomProblem(shape, { cpuKernels, activation: 'topk', k: 4, l1Coeff: 0.01, seed: 17 } as never);
      return plain.sae._gradients(plain.x);
    })();
    for (let j = 0; j < shape.dHidden; j++) {
      const differs = Array.from({ length: shape.dIn }, (_, i) => native.decoderWeights[j * 9 + i] !== withoutAux.decoderWeights[j * 9 + i]).some(Boolean);
      if (!dead[j]) expect(differs, `feature ${j}`).toBe(false);
    }
    sae.dispose();
  });

  it('its settings survive save and load', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'saekit-auxk-'));
    const sae = new SparseAutoencoder({ dIn: 8, dHidden: 16, activation: 'topk', k: 3, auxk: { k: 5, coefficient: 0.1, deadWindow: 77 } });
    await sae.save(join(dir, 'm'));
    const loaded = await SparseAutoencoder.load(join(dir, 'm'));
    expect(loaded.auxk).toEqual({ k: 5, coefficient: 0.1, deadWindow: 77 });
    sae.dispose();
    loaded.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is zero when no feature is dead, and off by default', async () => {
    const sae = new SparseAutoencoder({ dIn: 8, dHidden: 16, activation: 'topk', k: 3, auxk: { deadWindow: 1000 } });
    const stats = await sae.trainStep(randomMatrix(50, 8, 1));
    expect(stats.auxLoss).toBe(0);
    expect(sae.auxk).toEqual({ k: 4, coefficient: 1 / 32, deadWindow: 1000 });
    const plain = new SparseAutoencoder({ dIn: 8, dHidden: 16, activation: 'topk', k: 3 });
    expect((await plain.trainStep(randomMatrix(50, 8, 1))).auxLoss).toBe(0);
    expect(plain.auxk).toBeUndefined();
    expect(() => new SparseAutoencoder({ dIn: 8, dHidden: 16, activation: 'topk', k: 3, auxk: { k: 0 } })).toThrow(
      new RangeError('Expected integer in [1, 16] for auxk.k but received 0 of type number'),
    );
    sae.dispose();
    plain.dispose();
  });
});

describe('AuxK on the toy setting', () => {
  it('revives dead features: lower dead fraction and FVU, higher MMCS', async () => {
    // d 32, 64 true features, 3 active; TopK k 3 with 64 features and lr 3e-2 leaves some dead.
    async function train(auxk: boolean) {
      const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 4 });
      const sae = new SparseAutoencoder({ dIn: 32, dHidden: 64, activation: 'topk', k: 3, lr: 3e-2, seed: 4, ...(auxk ? { auxk: { k: 16, deadWindow: 5120 } } : {}) });
      await sae.fit(toy.batches(256), { steps: 2000 });
      const report = await evaluate(sae, toy.sample(20_000).x);
      const mmcs = metrics.mmcs(sae.dictionary(), toy.features);
      sae.dispose();
      return { dead: report.deadFraction, fvu: report.fvu, mmcs };
    }
    const plain = await train(false);
    const revived = await train(true);
    expect(plain.dead).toBeGreaterThan(0.1);
    expect(revived.dead).toBeLessThan(plain.dead);
    expect(revived.fvu).toBeLessThan(plain.fvu);
    expect(revived.mmcs).toBeGreaterThan(plain.mmcs + 0.01);
  });
});
