// Steering and input scaling: editing features inside a pipeline without losing what the SAE
// does not explain.
import { describe, expect, it } from 'vitest';

import { SparseAutoencoder } from '../lib/index.js';
import { randomMatrix, randomProblem } from './fixtures.js';

describe('steer', () => {
  it('with no edits returns x', async () => {
    const { sae, x } = randomProblem({ dIn: 16, dHidden: 40, rows: 12 }, { seed: 1 });
    expect((await sae.steer(x)).data).toEqual(x.data);
    expect((await sae.steer(x, [])).data).toEqual(x.data);
    sae.dispose();
  });

  it('ablating a feature moves x by exactly its activation times its decoder direction', async () => {
    const { sae, x } = randomProblem({ dIn: 16, dHidden: 40, rows: 12 }, { seed: 2 });
    const codes = await sae.encode(x);
    const dec = sae.decoderWeights().data;
    // A feature active in some rows and not in others.
    const feature = Array.from({ length: 40 }, (_, f) => f).find((f) => {
      const active = Array.from({ length: 12 }, (_, r) => codes.data[r * 40 + f] > 0).filter(Boolean).length;
      return active > 0 && active < 12;
    })!;
    const steered = await sae.steer(x, [{ feature, scale: 0 }]);
    for (let r = 0; r < 12; r++) {
      const h = codes.data[r * 40 + feature];
      for (let i = 0; i < 16; i++) {
        expect(steered.data[r * 16 + i] - x.data[r * 16 + i]).toBeCloseTo(-h * dec[feature * 16 + i], 5);
      }
    }
    sae.dispose();
  });

  it('set and add change the activation by the requested amount, and edits apply in order', async () => {
    const { sae, x } = randomProblem({ dIn: 8, dHidden: 20, rows: 5 }, { seed: 3 });
    const codes = await sae.encode(x);
    const dec = sae.decoderWeights().data;
    const moved = async (edits: Parameters<SparseAutoencoder['steer']>[1]) => {
      const s = await sae.steer(x, edits);
      return Array.from(s.data, (v, k) => v - x.data[k]);
    };
    const set = await moved([{ feature: 4, set: 2.5 }]);
    const both = await moved([{ feature: 4, set: 2.5 }, { feature: 4, add: 1 }]);
    for (let r = 0; r < 5; r++) {
      const h = codes.data[r * 20 + 4];
      for (let i = 0; i < 8; i++) {
        expect(set[r * 8 + i]).toBeCloseTo((2.5 - h) * dec[4 * 8 + i], 5);
        expect(both[r * 8 + i]).toBeCloseTo((3.5 - h) * dec[4 * 8 + i], 5);
      }
    }
    sae.dispose();
  });

  it('checks its edits', async () => {
    const sae = new SparseAutoencoder({ dIn: 4, dHidden: 6, l1Coeff: 0 });
    const x = randomMatrix(2, 4, 1);
    await expect(sae.steer(x, [{ feature: 6, scale: 0 }])).rejects.toThrow(
      new RangeError('Expected integer in [0, 5] for edits[0].feature but received 6 of type number'),
    );
    await expect(sae.steer(x, [{ feature: 1, scale: 0, add: 1 } as never])).rejects.toThrow(
      new TypeError('Expected exactly one of scale, set and add in edits[0] but received scale and add'),
    );
    await expect(sae.steer(x, [{ feature: 1 } as never])).rejects.toThrow(
      new TypeError('Expected exactly one of scale, set and add in edits[0] but received none'),
    );
    await expect(sae.steer(x, [{ feature: 1, set: NaN }])).rejects.toThrow(
      new RangeError('Expected finite number for edits[0].set but received NaN of type number'),
    );
    await expect(sae.steer(x, { feature: 1 } as never)).rejects.toThrow(
      new TypeError('Expected array of { feature, scale | set | add } for edits but received an object'),
    );
    await expect(sae.steer(x, [{ feature: 1, mul: 2 } as never])).rejects.toThrow(new TypeError("Unknown option 'mul' for steering edit edits[0]"));
    sae.dispose();
  });
});

describe('inputScale', () => {
  it('scales inputs before the SAE and reconstructions back', async () => {
    const { sae, x } = randomProblem({ dIn: 10, dHidden: 24, rows: 6 }, { seed: 4 });
    const scaled = new SparseAutoencoder({ dIn: 10, dHidden: 24, l1Coeff: 0.05, inputScale: 2 });
    scaled._setParameter('encoderWeights', sae.encoderWeights().data);
    scaled._setParameter('encoderBias', sae.encoderBias());
    scaled._setParameter('decoderWeights', sae.decoderWeights().data);
    scaled._setParameter('decoderBias', sae.decoderBias());
    const twice = { rows: x.rows, cols: x.cols, data: x.data.map((v) => 2 * v) };
    expect(await scaled.encode(x)).toEqual(await sae.encode(twice));
    const expected = (await sae.reconstruct(twice)).data.map((v) => v / 2);
    expect((await scaled.reconstruct(x)).data).toEqual(expected);
    expect(scaled.inputScale).toBe(2);
    sae.dispose();
    scaled.dispose();
  });

  it('trains on scaled inputs, once scaled, from a Matrix and from an iterable', async () => {
    const x = randomMatrix(40, 10, 5);
    const twice = { rows: x.rows, cols: x.cols, data: x.data.map((v) => 2 * v) };
    const options = { dIn: 10, dHidden: 24, l1Coeff: 0.05, seed: 3 };
    const scaled = new SparseAutoencoder({ ...options, inputScale: 2 });
    const plain = new SparseAutoencoder(options);
    await scaled.fit(x, { epochs: 2, batchSize: 16 });
    await plain.fit(twice, { epochs: 2, batchSize: 16 });
    expect(scaled.decoderWeights().data).toEqual(plain.decoderWeights().data);
    await scaled.fit([x, x], { steps: 2 });
    await plain.fit([twice, twice], { steps: 2 });
    expect(scaled.decoderWeights().data).toEqual(plain.decoderWeights().data);
    expect(scaled.encoderBias()).toEqual(plain.encoderBias());
    scaled.dispose();
    plain.dispose();
  });
});
