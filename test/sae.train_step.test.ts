// The whole native step (forward, backward, projection, Adam, renormalisation) against the
// float64 reference, and the invariants it must keep.
import { describe, expect, it } from 'vitest';

import { SparseAutoencoder } from '../lib/sparse_autoencoder.js';
import * as ref from './reference.js';
import { cpuKernelSets, randomMatrix, randomProblem, referenceParams, relativeError } from './fixtures.js';

const hyper = { l1Coeff: 0.05, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

function rowNorms(data: Float32Array, rows: number, cols: number): number[] {
  return Array.from({ length: rows }, (_, r) => Math.hypot(...data.subarray(r * cols, (r + 1) * cols)));
}

const cases = cpuKernelSets.flatMap((cpuKernels) => [false, true].map((tied) => ({ cpuKernels, tied })));

describe.each(cases)('trainStep ($cpuKernels kernels, tied: $tied)', ({ cpuKernels, tied }) => {
  it.each([
    { dIn: 5, dHidden: 7, rows: 3 },
    { dIn: 17, dHidden: 33, rows: 11 },
    { dIn: 40, dHidden: 96, rows: 25 },
    { dIn: 260, dHidden: 21, rows: 7 },
  ])('matches the reference over three steps at dIn $dIn, dHidden $dHidden, rows $rows', async (shape) => {
    const { sae, x, params } = randomProblem(shape, { tied, cpuKernels, seed: shape.dHidden, ...hyper });
    const state: ref.AdamState = { t: 0, m: new Map(), v: new Map() };
    for (let step = 0; step < 3; step++) {
      const stats = await sae.trainStep(x);
      const expected = ref.forward(params, x.data, x.rows, hyper.l1Coeff);
      expect(stats.loss).toBeCloseTo(expected.loss, 4);
      expect(stats.l0).toBe(expected.l0);
      ref.trainStep(params, x.data, x.rows, hyper, state);
    }
    const got = referenceParams(sae);
    expect(relativeError(got.wDec, params.wDec), 'decoder weights').toBeLessThan(1e-4);
    if (!tied) expect(relativeError(got.wEnc, params.wEnc), 'encoder weights').toBeLessThan(1e-4);
    expect(relativeError(got.bEnc, params.bEnc), 'encoder bias').toBeLessThan(1e-4);
    expect(relativeError(got.bDec, params.bDec), 'decoder bias').toBeLessThan(1e-4);
    expect(sae.stepsTaken).toBe(3);
    sae.dispose();
  });

  it('keeps every decoder row at unit norm', async () => {
    const sae = SparseAutoencoder._withCpuKernels({ dIn: 24, dHidden: 50, tied, l1Coeff: 0.01, lr: 0.05, seed: 4 }, cpuKernels);
    for (const norm of rowNorms(sae.decoderWeights().data, 50, 24)) expect(norm).toBeCloseTo(1, 5);
    for (let i = 0; i < 5; i++) await sae.trainStep(randomMatrix(30, 24, i));
    for (const norm of rowNorms(sae.decoderWeights().data, 50, 24)) expect(norm).toBeCloseTo(1, 5);
    sae.dispose();
  });
});

describe('weights', () => {
  it('tied: the encoder is the decoder transposed, before and after training', async () => {
    const sae = new SparseAutoencoder({ dIn: 9, dHidden: 14, tied: true, l1Coeff: 0.01, lr: 0.05, seed: 2 });
    for (let i = 0; i < 4; i++) await sae.trainStep(randomMatrix(20, 9, i));
    const enc = sae.encoderWeights();
    const dec = sae.decoderWeights();
    expect([enc.rows, enc.cols, dec.rows, dec.cols]).toEqual([9, 14, 14, 9]);
    for (let i = 0; i < 9; i++) for (let j = 0; j < 14; j++) expect(enc.data[i * 14 + j]).toBe(dec.data[j * 9 + i]);
    sae.dispose();
  });

  it('untied: the encoder starts as the decoder transposed and then moves on its own', async () => {
    const sae = new SparseAutoencoder({ dIn: 9, dHidden: 14, l1Coeff: 0.01, lr: 0.05, seed: 2 });
    const transposed = (enc: Float32Array) => Float32Array.from({ length: 14 * 9 }, (_, k) => enc[(k % 9) * 14 + Math.floor(k / 9)]);
    expect(transposed(sae.encoderWeights().data)).toEqual(sae.decoderWeights().data);
    for (let i = 0; i < 4; i++) await sae.trainStep(randomMatrix(20, 9, i));
    expect(transposed(sae.encoderWeights().data)).not.toEqual(sae.decoderWeights().data);
    expect(sae.dictionary()).toEqual(sae.decoderWeights());
    sae.dispose();
  });

  it('accessors return copies', () => {
    const sae = new SparseAutoencoder({ dIn: 4, dHidden: 6, l1Coeff: 0.01 });
    const dict = sae.dictionary();
    dict.data.fill(7);
    expect(sae.dictionary().data[0]).not.toBe(7);
    sae.dispose();
  });
});

describe('determinism', () => {
  async function train(seed: number, threads: number): Promise<Float32Array[]> {
    const sae = new SparseAutoencoder({ dIn: 48, dHidden: 200, l1Coeff: 0.02, lr: 0.01, seed, threads });
    const data = randomMatrix(700, 48, 99);
    await sae.fit(data, { steps: 6, batchSize: 250 });
    const out = [sae.encoderWeights().data, sae.encoderBias(), sae.decoderWeights().data, sae.decoderBias()];
    sae.dispose();
    return out;
  }

  it('the same seed gives the same parameters, bit for bit', async () => {
    expect(await train(5, 2)).toEqual(await train(5, 2));
  });

  it('a different seed gives different parameters', async () => {
    expect(await train(5, 2)).not.toEqual(await train(6, 2));
  });

  it('the result does not depend on the number of threads', async () => {
    expect(await train(5, 1)).toEqual(await train(5, 3));
  });
});
