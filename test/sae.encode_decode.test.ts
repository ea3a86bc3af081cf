// encode, decode and reconstruct against the float64 reference.
import { describe, expect, it } from 'vitest';

import * as ref from './reference.js';
import type { NativeSae } from '../lib/native.js';
import { cpuKernelSets, randomProblem, referenceParams, relativeError } from './fixtures.js';

const cases = cpuKernelSets.flatMap((cpuKernels) => [false, true].map((tied) => ({ cpuKernels, tied })));

describe.each(cases)('encode / decode / reconstruct ($cpuKernels kernels, tied: $tied)', ({ cpuKernels, tied }) => {
  const shapes = [
    { dIn: 7, dHidden: 11, rows: 5 },
    { dIn: 70, dHidden: 130, rows: 200 },
    { dIn: 300, dHidden: 17, rows: 13 },
  ];

  it.each(shapes)('dense codes match the reference at dIn $dIn, dHidden $dHidden', async (shape) => {
    const { sae, x, params } = randomProblem(shape, { tied, cpuKernels, seed: 11 }, 1e-3);
    const codes = await sae.encode(x);
    const expected = ref.forward(params, x.data, x.rows, 0);
    expect([codes.rows, codes.cols]).toEqual([shape.rows, shape.dHidden]);
    expect(relativeError(codes.data, expected.h)).toBeLessThan(1e-5);
    // Exactly the units the reference finds active are non-zero.
    for (let k = 0; k < expected.h.length; k++) expect(codes.data[k] > 0).toBe(expected.h[k] > 0);
    sae.dispose();
  });

  it.each(shapes)('sparse codes hold the same values as the dense ones at dIn $dIn', async (shape) => {
    const { sae, x } = randomProblem(shape, { tied, cpuKernels, seed: 12 }, 1e-3);
    const dense = await sae.encode(x);
    const sparse = await sae.encode(x, { format: 'sparse' });
    expect([sparse.rows, sparse.cols, sparse.indptr.length]).toEqual([shape.rows, shape.dHidden, shape.rows + 1]);
    const rebuilt = new Float32Array(shape.rows * shape.dHidden);
    for (let r = 0; r < shape.rows; r++) {
      let previous = -1;
      for (let e = sparse.indptr[r]; e < sparse.indptr[r + 1]; e++) {
        expect(sparse.indices[e]).toBeGreaterThan(previous);
        previous = sparse.indices[e];
        rebuilt[r * shape.dHidden + sparse.indices[e]] = sparse.values[e];
      }
    }
    expect(rebuilt).toEqual(dense.data);
    sae.dispose();
  });

  it.each(shapes)('decode (dense and sparse) and reconstruct match the reference at dIn $dIn', async (shape) => {
    const { sae, x, params } = randomProblem(shape, { tied, cpuKernels, seed: 13 }, 1e-3);
    const expected = ref.forward(params, x.data, x.rows, 0);
    const fromDense = await sae.decode(await sae.encode(x));
    const fromSparse = await sae.decode(await sae.encode(x, { format: 'sparse' }));
    const reconstruction = await sae.reconstruct(x);
    expect([fromDense.rows, fromDense.cols]).toEqual([shape.rows, shape.dIn]);
    expect(relativeError(fromDense.data, expected.xhat)).toBeLessThan(1e-5);
    expect(relativeError(fromSparse.data, expected.xhat)).toBeLessThan(1e-5);
    expect(relativeError(reconstruction.data, expected.xhat)).toBeLessThan(1e-5);
    sae.dispose();
  });

  it('accepts zero rows', async () => {
    const { sae } = randomProblem({ dIn: 4, dHidden: 6, rows: 1 }, { tied, cpuKernels, seed: 1 });
    const empty = { rows: 0, cols: 4, data: new Float32Array(0) };
    expect(await sae.encode(empty)).toEqual({ rows: 0, cols: 6, data: new Float32Array(0) });
    const sparse = await sae.encode(empty, { format: 'sparse' });
    expect(Array.from(sparse.indptr)).toEqual([0]);
    expect((await sae.reconstruct(empty)).data.length).toBe(0);
    sae.dispose();
  });
});

// The encoder is kept packed for the matrix product between calls; every way its rows change
// (a training step, resampling, setting parameters) must reach the next product.
describe('encode follows every change to the encoder', () => {
  it.each([false, true])('after training steps, resampling and setting parameters (tied: %s)', async (tied) => {
    const { sae, x } = randomProblem({ dIn: 24, dHidden: 40, rows: 64 }, { tied, seed: 21 }, 1e-3);
    const check = async (when: string) => {
      const expected = ref.forward(referenceParams(sae), x.data, x.rows, 0);
      const codes = await sae.encode(x);
      expect(relativeError(codes.data, expected.h), when).toBeLessThan(1e-5);
    };
    await sae.trainStep(x);
    await sae.trainStep(x);
    await check('after two training steps');
    const native = (sae as unknown as { usable(): NativeSae }).usable();
    expect(await native.resample(Int32Array.from([0, 7, 39]), x.data, x.rows, 5)).toBe(3);
    await check('after resampling');
    const rows = sae.decoderWeights();
    sae._setParameter(tied ? 'decoderWeights' : 'encoderWeights', rows.data.map((v, i) => (i % 3 === 0 ? -v : v)));
    await check('after setting the weights');
    sae.dispose();
  });
});
