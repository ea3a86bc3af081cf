// Pipeline metrics from losses and logits the user's model computed.
import { describe, expect, it } from 'vitest';

import { metrics } from '../lib/index.js';

describe('lossRecovered', () => {
  it('is the share of the zero-ablation gap the spliced model closes', () => {
    expect(metrics.lossRecovered({ clean: 2, zeroAblated: 6, spliced: 3 })).toBe(0.75);
    expect(metrics.lossRecovered({ clean: 2, zeroAblated: 6, spliced: 2 })).toBe(1);
    expect(metrics.lossRecovered({ clean: 2, zeroAblated: 6, spliced: 6 })).toBe(0);
    expect(metrics.lossRecovered({ clean: 2, zeroAblated: 6, spliced: 7 })).toBe(-0.25);
  });

  it('checks its input', () => {
    expect(() => metrics.lossRecovered({ clean: 1, zeroAblated: 1, spliced: 1 })).toThrow(
      new RangeError('Expected losses.zeroAblated to differ from losses.clean but both are 1: the fraction is undefined'),
    );
    expect(() => metrics.lossRecovered({ clean: 1, zeroAblated: NaN, spliced: 1 })).toThrow(
      new RangeError('Expected finite number for losses.zeroAblated but received NaN of type number'),
    );
    expect(() => metrics.lossRecovered({ clean: 1, zeroAblated: 2, splice: 1 } as never)).toThrow(
      new TypeError("Unknown option 'splice' for metrics.lossRecovered; did you mean 'spliced'?"),
    );
  });
});

describe('klDivergence', () => {
  const m = (rows: number, cols: number, values: number[]) => ({ rows, cols, data: Float32Array.from(values) });

  it('matches hand-computed values', () => {
    // p = softmax([0, ln 3]) = [1/4, 3/4]; q = softmax([0, 0]) = [1/2, 1/2]
    // KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    const expected = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
    expect(metrics.klDivergence(m(1, 2, [0, Math.log(3)]), m(1, 2, [0, 0]))).toBeCloseTo(expected, 6);
    // The mean over rows; identical rows contribute zero.
    expect(metrics.klDivergence(m(2, 2, [0, Math.log(3), 5, 5]), m(2, 2, [0, 0, 1, 1]))).toBeCloseTo(expected / 2, 6);
    expect(metrics.klDivergence(m(1, 3, [1, 2, 3]), m(1, 3, [1, 2, 3]))).toBe(0);
  });

  it('is shift invariant and does not overflow on large logits', () => {
    const a = m(1, 3, [1000, 1001, 1002]);
    const b = m(1, 3, [2000, 2000, 2003]);
    const shifted = metrics.klDivergence(m(1, 3, [0, 1, 2]), m(1, 3, [0, 0, 3]));
    expect(metrics.klDivergence(a, b)).toBeCloseTo(shifted, 4);
    expect(Number.isFinite(shifted)).toBe(true);
  });

  it('checks shapes', () => {
    expect(() => metrics.klDivergence(m(1, 2, [0, 0]), m(1, 3, [0, 0, 0]))).toThrow(
      new RangeError('Expected logitsB.cols to equal logitsA.cols (2) but received 3 of type number'),
    );
    expect(() => metrics.klDivergence(m(1, 2, [0, 0]), m(2, 2, [0, 0, 0, 0]))).toThrow(
      new RangeError('Expected logitsB.rows to equal logitsA.rows (1) but received 2'),
    );
  });
});
