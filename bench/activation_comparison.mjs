// @ts-check
// ReLU+L1, TopK and BatchTopK at matched L0 on the toy setting, with and without dead-feature
// resampling and with AuxK: held-out MMCS, FVU, L0 and dead fraction. `node
// bench/activation_comparison.mjs [--steps N]`. The ReLU L1 coefficient is found by bisection
// on a short run so that its L0 matches k.
import { parseArgs } from 'node:util';

import { metrics, SparseAutoencoder, ToyDataset } from '../dist/index.js';
import { evaluate } from '../dist/evaluate.js';

const { values: args } = parseArgs({ options: { steps: { type: 'string', default: '2000' }, k: { type: 'string', default: '5' } } });
const steps = Number(args.steps);
const k = Number(args.k);
const setting = { dim: 64, numFeatures: 128, expectedActive: 4, seed: 11 };
const dHidden = 256;
const batch = 256;
const lr = 3e-3;
const resample = { every: 500, window: 50 * batch };

/** @param {Record<string, unknown>} options @param {boolean} withResampling */
async function run(options, withResampling) {
  const toy = new ToyDataset(setting);
  const held = toy.sample(20_000).x;
  const sae = new SparseAutoencoder(/** @type {any} */ ({ dIn: setting.dim, dHidden, lr, seed: 11, ...options }));
  const started = performance.now();
  // Resampling in the first 70% of the run, then training settles.
  const first = Math.round(steps * 0.7);
  await sae.fit(toy.batches(batch), { steps: first, ...(withResampling ? { resample } : {}) });
  await sae.fit(toy.batches(batch), { steps: steps - first });
  const report = await evaluate(sae, held);
  const result = { mmcs: metrics.mmcs(sae.dictionary(), toy.features), fvu: report.fvu, l0: report.l0, dead: report.deadFraction, seconds: (performance.now() - started) / 1000 };
  sae.dispose();
  return result;
}

/** @param {number} l1 */
async function reluL0(l1) {
  const toy = new ToyDataset(setting);
  const sae = new SparseAutoencoder({ dIn: setting.dim, dHidden, l1Coeff: l1, lr, seed: 11 });
  await sae.fit(toy.batches(batch), { steps: Math.round(steps / 2) });
  const report = await evaluate(sae, toy.sample(5000).x);
  sae.dispose();
  return report.l0;
}

let low = 0.01;
let high = 3;
for (let i = 0; i < 7; i++) {
  const mid = Math.sqrt(low * high);
  if ((await reluL0(mid)) > k) low = mid;
  else high = mid;
}
const l1 = Math.sqrt(low * high);
console.log(`toy: dim ${setting.dim}, ${setting.numFeatures} features, ${setting.expectedActive} active; SAE ${dHidden} features, lr ${lr}, ${steps} steps of ${batch}; k ${k}; ReLU l1 ${l1.toFixed(4)} (L0 matched by bisection)`);
const variants = [
  ['relu+l1', { l1Coeff: l1 }],
  ['topk', { activation: 'topk', k }],
  ['batchtopk', { activation: 'batchtopk', k, thresholdStartStep: Math.round(steps / 4) }],
  ['topk+auxk', { activation: 'topk', k, auxk: { k: 32, deadWindow: 50 * batch } }],
];
for (const [name, options] of variants) {
  for (const withResampling of [false, true]) {
    const r = await run(/** @type {Record<string, unknown>} */ (options), withResampling);
    console.log(
      `${String(name).padEnd(10)} ${withResampling ? 'resampled' : 'plain    '}  MMCS ${r.mmcs.toFixed(4)}  FVU ${r.fvu.toFixed(4)}  L0 ${r.l0.toFixed(2)}  dead ${(100 * r.dead).toFixed(1)}%  (${r.seconds.toFixed(1)} s)`,
    );
  }
}
