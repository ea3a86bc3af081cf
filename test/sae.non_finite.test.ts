// A step whose gradients or update would overflow stops training with NON_FINITE, and the
// model keeps the parameters of the last good step.
import { describe, expect, it } from 'vitest';

import { backends, SparseAutoencoder, ToyDataset } from '../lib/index.js';

// The CUDA backend guards its steps the same way; checked where a GPU is present.
const devices = ['cpu', ...(backends().some((b) => b.name === 'cuda' && b.available) ? ['cuda'] : [])] as const;
const activationsByDevice = devices.flatMap((device) => (['relu', 'topk'] as const).map((activation) => ({ device, activation })));

describe('non-finite training', () => {
  it.each(activationsByDevice)('a huge learning rate ($activation, $device) ends in NON_FINITE with the last good parameters kept', async ({ device, activation }) => {
    const toy = new ToyDataset({ dim: 16, numFeatures: 32, expectedActive: 3, seed: 1 });
    const options = activation === 'relu' ? { l1Coeff: 0.1 } : { activation, k: 4 };
    const sae = new SparseAutoencoder({ dIn: 16, dHidden: 32, lr: 1e12, seed: 1, device, ...options } as never);
    let error: (Error & { code?: string }) | undefined;
    let before = { dec: sae.decoderWeights().data, enc: sae.encoderWeights().data, bEnc: sae.encoderBias(), bDec: sae.decoderBias() };
    let steps = 0;
    for (; steps < 200; steps++) {
      before = { dec: sae.decoderWeights().data, enc: sae.encoderWeights().data, bEnc: sae.encoderBias(), bDec: sae.decoderBias() };
      try {
        await sae.trainStep(toy.sample(64).x);
      } catch (e) {
        error = e as Error & { code?: string };
        break;
      }
    }
    expect(error, 'training should stop').toBeDefined();
    expect(error!.code).toBe('NON_FINITE');
    expect(error!.message).toMatch(
      new RegExp(`^Training step ${steps + 1} would make gradients or parameters overflow \\(.*\\); the model keeps the parameters of step ${steps}\\. Lower the learning rate`),
    );
    expect(sae.stepsTaken).toBe(steps);
    expect(sae.decoderWeights().data).toEqual(before.dec);
    expect(sae.encoderWeights().data).toEqual(before.enc);
    expect(sae.encoderBias()).toEqual(before.bEnc);
    expect(sae.decoderBias()).toEqual(before.bDec);
    for (const values of Object.values(before)) expect(values.every(Number.isFinite)).toBe(true);
    sae.dispose();
  });

  it('fit rejects with NON_FINITE naming the step', async () => {
    const toy = new ToyDataset({ dim: 16, numFeatures: 32, expectedActive: 3, seed: 2 });
    const sae = new SparseAutoencoder({ dIn: 16, dHidden: 32, l1Coeff: 0.1, lr: 1e12, seed: 2 });
    await expect(sae.fit(toy.batches(64), { steps: 500 })).rejects.toMatchObject({ code: 'NON_FINITE', message: expect.stringMatching(/^Training step \d+ would make/) });
    expect(sae.stepsTaken).toBeLessThan(500);
    sae.dispose();
  });

  it('parameters set from outside must be finite', () => {
    const sae = new SparseAutoencoder({ dIn: 4, dHidden: 6, l1Coeff: 0 });
    const bad = new Float32Array(6);
    bad[3] = Infinity;
    expect(() => sae._setParameter('encoderBias', bad)).toThrow(new RangeError('Expected finite values in values but found Infinity at index 3'));
    sae.dispose();
  });
});
