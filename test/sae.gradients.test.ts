// The fused native backward pass against central finite differences of the float64
// reference loss, and against the reference's analytic gradients.
import { describe, expect, it } from 'vitest';

import * as ref from './reference.js';
import { cpuKernelSets, randomProblem, relativeError } from './fixtures.js';

const shapes = [
  { dIn: 5, dHidden: 7, rows: 3 },
  { dIn: 13, dHidden: 19, rows: 7 },
  { dIn: 33, dHidden: 70, rows: 13 },
];
const l1Coeff = 0.05;

function finiteDifference(params: ref.Params, x: Float32Array, rows: number, tensor: Float64Array, index: number): number {
  const h = 1e-6;
  const saved = tensor[index];
  tensor[index] = saved + h;
  const plus = ref.forward(params, x, rows, l1Coeff).loss;
  tensor[index] = saved - h;
  const minus = ref.forward(params, x, rows, l1Coeff).loss;
  tensor[index] = saved;
  return (plus - minus) / (2 * h);
}

const cases = cpuKernelSets.flatMap((cpuKernels) => [false, true].map((tied) => ({ cpuKernels, tied })));

describe.each(cases)('gradients ($cpuKernels kernels, tied: $tied)', ({ cpuKernels, tied }) => {
  it.each(shapes)('match central finite differences at dIn $dIn, dHidden $dHidden, rows $rows', async (shape) => {
    const { sae, x, params } = randomProblem(shape, { tied, cpuKernels, seed: shape.dIn, l1Coeff });
    const native = await sae._gradients(x);
    const check = (name: string, nativeGrad: Float32Array | null, tensor: Float64Array) => {
      expect(nativeGrad, name).not.toBeNull();
      const fd = new Float64Array(tensor.length);
      for (let i = 0; i < tensor.length; i++) fd[i] = finiteDifference(params, x.data, x.rows, tensor, i);
      const error = relativeError(nativeGrad!, fd);
      expect(error, `${name}: relative error ${error}`).toBeLessThan(1e-4);
    };
    check('decoderWeights', native.decoderWeights, params.wDec);
    if (!tied) check('encoderWeights', native.encoderWeights, params.wEnc);
    else expect(native.encoderWeights).toBeNull();
    check('encoderBias', native.encoderBias, params.bEnc);
    check('decoderBias', native.decoderBias, params.bDec);
    sae.dispose();
  });

  it('report the loss, mse, l1 and l0 of the reference forward pass', async () => {
    const { sae, x, params } = randomProblem({ dIn: 21, dHidden: 45, rows: 10 }, { tied, cpuKernels, seed: 7, l1Coeff });
    const native = await sae._gradients(x);
    const expected = ref.forward(params, x.data, x.rows, l1Coeff);
    expect(native.loss).toBeCloseTo(expected.loss, 5);
    expect(native.mse).toBeCloseTo(expected.mse, 6);
    expect(native.l1).toBeCloseTo(expected.l1, 5);
    expect(native.l0).toBe(expected.l0);
    expect(expected.l0).toBeGreaterThan(0);
    expect(expected.l0).toBeLessThan(45);
    sae.dispose();
  });

  it('match central finite differences when the encoder does not subtract b_dec (applyBDecToInput: false)', async () => {
    const { sae, x, params } = randomProblem({ dIn: 11, dHidden: 23, rows: 6 }, { tied, cpuKernels, seed: 5, l1Coeff, applyBDecToInput: false });
    expect(params.applyBDecToInput).toBe(false);
    const native = await sae._gradients(x);
    const fd = (tensor: Float64Array) => Float64Array.from(tensor, (_, i) => finiteDifference(params, x.data, x.rows, tensor, i));
    expect(relativeError(native.decoderBias, fd(params.bDec))).toBeLessThan(1e-4);
    expect(relativeError(native.decoderWeights, fd(params.wDec))).toBeLessThan(1e-4);
    if (!tied) expect(relativeError(native.encoderWeights!, fd(params.wEnc))).toBeLessThan(1e-4);
    expect(relativeError(native.encoderBias, fd(params.bEnc))).toBeLessThan(1e-4);
    sae.dispose();
  });

  it('match the reference gradients when the dot products span several k-blocks (dIn 300)', async () => {
    const { sae, x, params } = randomProblem({ dIn: 300, dHidden: 37, rows: 9 }, { tied, cpuKernels, seed: 3, l1Coeff }, 0.01);
    const native = await sae._gradients(x);
    const expected = ref.gradients(params, x.data, x.rows, l1Coeff);
    expect(relativeError(native.decoderWeights, expected.wDec)).toBeLessThan(1e-4);
    if (!tied) expect(relativeError(native.encoderWeights!, expected.wEnc!)).toBeLessThan(1e-4);
    expect(relativeError(native.encoderBias, expected.bEnc)).toBeLessThan(1e-4);
    expect(relativeError(native.decoderBias, expected.bDec)).toBeLessThan(1e-4);
    sae.dispose();
  });
});
