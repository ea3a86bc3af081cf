// Training as the field does it now: dead-feature tracking and resampling, decoder-bias
// initialisation, learning-rate and L1 schedules.
import { describe, expect, it } from 'vitest';

import { metrics, SparseAutoencoder, ToyDataset } from '../lib/index.js';
import { evaluate } from '../lib/evaluate.js';
import { columnMean, geometricMedian } from '../lib/sae_training.js';
import { randomMatrix } from './fixtures.js';

describe('dead features', () => {
  it('deadFeatures lists the features that have not fired in the last window of samples', async () => {
    const sae = new SparseAutoencoder({ dIn: 8, dHidden: 20, l1Coeff: 0, lr: 1e-6, seed: 1 });
    const bias = new Float32Array(20);
    for (const j of [2, 5, 11]) bias[j] = -1e6; // can never fire
    sae._setParameter('encoderBias', bias);
    expect(sae.deadFeatures({ window: 1 }).length).toBe(0); // nothing seen yet
    await sae.trainStep(randomMatrix(100, 8, 1));
    const dead = Array.from(sae.deadFeatures({ window: 100 }));
    expect(dead).toEqual(expect.arrayContaining([2, 5, 11]));
    const codes = await sae.encode(randomMatrix(100, 8, 1));
    for (let j = 0; j < 20; j++) {
      const fired = Array.from({ length: 100 }, (_, r) => codes.data[r * 20 + j]).some((v) => v > 0);
      expect(dead.includes(j)).toBe(!fired);
    }
    // A window longer than what has been seen: no feature has been silent that long.
    expect(sae.deadFeatures({ window: 1000 }).length).toBe(0);
    expect(() => sae.deadFeatures({ window: 0 })).toThrow(new RangeError('Expected positive integer for options.window but received 0 of type number'));
    sae.dispose();
  });

  it('resampling (Anthropic, as dictionary_learning does it) lowers the dead fraction and raises MMCS', async () => {
    // A setting where a high learning rate kills features: d 32, 64 true features, 3 active,
    // an SAE of 64 features, lr 3e-2, l1 0.5. Resampling runs for the first 1500 steps, then
    // both models train 1000 more; dead fraction and FVU are measured on held-out samples.
    async function train(resample: boolean) {
      const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 2 });
      const sae = new SparseAutoencoder({ dIn: 32, dHidden: 64, l1Coeff: 0.5, lr: 3e-2, seed: 2 });
      await sae.fit(toy.batches(256), { steps: 1500, ...(resample ? { resample: { every: 300, window: 25_600 } } : {}) });
      await sae.fit(toy.batches(256), { steps: 1000 });
      const report = await evaluate(sae, toy.sample(20_000).x);
      const mmcs = metrics.mmcs(sae.dictionary(), toy.features);
      sae.dispose();
      return { dead: report.deadFraction, fvu: report.fvu, mmcs };
    }
    const plain = await train(false);
    const resampled = await train(true);
    expect(plain.dead).toBeGreaterThan(0.15);
    expect(resampled.dead).toBeLessThan(plain.dead);
    expect(resampled.mmcs).toBeGreaterThan(plain.mmcs + 0.01);
    expect(resampled.fvu).toBeLessThan(plain.fvu);
  });
});

describe('decoder bias initialisation', () => {
  it('the geometric median minimises the sum of distances (Weiszfeld)', () => {
    const points = randomMatrix(200, 5, 3);
    for (let i = 0; i < 10; i++) points.data[i * 5] += 50; // outliers pull the mean, not the median
    const median = geometricMedian(points.data, 200, 5);
    const total = (c: ArrayLike<number>) => {
      let sum = 0;
      for (let r = 0; r < 200; r++) sum += Math.hypot(...Array.from({ length: 5 }, (_, k) => points.data[r * 5 + k] - c[k]));
      return sum;
    };
    const best = total(median);
    for (let trial = 0; trial < 50; trial++) {
      const moved = median.map((v, k) => v + 0.01 * Math.sin(trial * 7 + k));
      expect(total(moved)).toBeGreaterThan(best);
    }
    expect(Math.abs(median[0])).toBeLessThan(0.5);
    expect(columnMean(points.data, 200, 5)[0]).toBeGreaterThan(2);
  });

  it.each(['mean', 'geometric-median'] as const)("initDecoderBias '%s' sets b_dec from the first batch", async (init) => {
    const x = randomMatrix(300, 6, 4);
    for (let i = 0; i < x.data.length; i++) x.data[i] += 3;
    const sae = new SparseAutoencoder({ dIn: 6, dHidden: 12, l1Coeff: 0.01, lr: 1e-9, initDecoderBias: init });
    await sae.trainStep(x);
    const expected = init === 'mean' ? columnMean(x.data, 300, 6) : geometricMedian(x.data, 300, 6);
    const bDec = sae.decoderBias();
    for (let i = 0; i < 6; i++) expect(bDec[i]).toBeCloseTo(expected[i], 4);
    // Only the first batch: later steps do not reset it.
    const before = sae.decoderBias();
    await sae.trainStep(randomMatrix(300, 6, 5));
    expect(Array.from(sae.decoderBias()).every((v, i) => Math.abs(v - before[i]) < 1e-6)).toBe(true);
    sae.dispose();
  });
});

describe('schedules', () => {
  const batches = Array.from({ length: 6 }, (_, i) => randomMatrix(32, 10, 40 + i));

  async function trainWithLrs(lrs: number[], l1s: number[]) {
    // The same steps taken one at a time with the lr and L1 each should have.
    const sae = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05, lr: 0.01, seed: 3 });
    for (let i = 0; i < lrs.length; i++) await sae._trainStepWith(batches[i], lrs[i], l1s[i]);
    return sae;
  }

  it('warm-up and decay scale the learning rate, and the L1 warm-up scales the coefficient, step by step', async () => {
    const sae = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05, lr: 0.01, seed: 3 });
    await sae.fit(batches, { steps: 6, lrWarmupSteps: 2, lrDecayFraction: 0.5, l1WarmupSteps: 4 });
    // lr factors: warm-up min(1, n/2), decay over steps 4..6 to zero at step 6; L1: min(1, n/4).
    const lrs = [0.5, 1, 1, 2 / 3, 1 / 3, 0].map((f) => 0.01 * f);
    const l1s = [0.25, 0.5, 0.75, 1, 1, 1].map((f) => 0.05 * f);
    const manual = await trainWithLrs(lrs, l1s);
    expect(sae.decoderWeights()).toEqual(manual.decoderWeights());
    expect(sae.encoderBias()).toEqual(manual.encoderBias());
    sae.dispose();
    manual.dispose();
  });

  it('the last step of a full decay leaves the parameters where they were', async () => {
    const sae = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05, lr: 0.01, seed: 3 });
    await sae.fit(batches.slice(0, 5), { steps: 5, lrDecayFraction: 0.4 });
    const before = sae.decoderWeights();
    const other = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05, lr: 0.01, seed: 3 });
    await other.fit(batches.slice(0, 4), { steps: 4, lrDecayFraction: 0.4, scheduleEndStep: 5 });
    // Equal up to the renormalisation of already unit-norm rows, which may move the last bit.
    const a = other.decoderWeights().data;
    expect(a.every((v, i) => Math.abs(v - before.data[i]) < 1e-6)).toBe(true);
    expect(sae.encoderBias()).toEqual(other.encoderBias());
    sae.dispose();
    other.dispose();
  });

  it('checks its options', async () => {
    const sae = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05 });
    await expect(sae.fit(batches, { steps: 1, lrDecayFraction: 1.5 })).rejects.toThrow(
      new RangeError('Expected number in [0, 1] for options.lrDecayFraction but received 1.5 of type number'),
    );
    await expect(sae.fit(batches, { steps: 1, resample: { every: 10 } as never })).rejects.toThrow(
      new TypeError('Expected number for options.resample.window but received undefined'),
    );
    await expect(sae.fit(batches, { steps: 1, lrWarmup: 3 } as never)).rejects.toThrow(
      new TypeError("Unknown option 'lrWarmup' for SparseAutoencoder.fit; did you mean 'lrWarmupSteps'?"),
    );
    sae.dispose();
  });
});
