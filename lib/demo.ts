// `npm run demo`: trains a sparse autoencoder on synthetic data whose true features are
// known, and reports how well the learned dictionary recovers them.
import { metrics, SparseAutoencoder, ToyDataset } from './index.js';
import type { Progress } from './model.js';

const setting = { dim: 256, numFeatures: 512, expectedActive: 5, seed: 1 };
const model = { dHidden: 1024, l1Coeff: 0.1, lr: 3e-3, seed: 1 };
const batchSize = 1024;
const steps = 1000;

function progressLine(p: Progress): string {
  const width = 30;
  const done = Math.round((p.step / p.totalSteps) * width);
  const bar = '#'.repeat(done) + '.'.repeat(width - done);
  return (
    `[${bar}] step ${p.step}/${p.totalSteps}  loss ${p.loss.toFixed(4)}  L0 ${p.l0.toFixed(1)}  ` +
    `${Math.round(p.samplesPerSecond).toLocaleString('en-US')} samples/s`
  );
}

async function main(): Promise<void> {
  const toy = new ToyDataset(setting);
  const sae = new SparseAutoencoder({ dIn: setting.dim, ...model });
  console.log(
    `Toy data: ${setting.numFeatures} unit features in ${setting.dim} dimensions, ` +
      `${setting.expectedActive} active per sample on average, magnitudes uniform in [0, 1).`,
  );
  console.log(
    `Training a sparse autoencoder with ${model.dHidden} features (l1Coeff ${model.l1Coeff}, ` +
      `lr ${model.lr}) for ${steps} steps of ${batchSize} fresh samples on ${sae.threads} threads.`,
  );
  const before = metrics.mmcs(sae.dictionary(), toy.features);
  const interactive = process.stderr.isTTY === true;
  const started = performance.now();
  const records = await sae.fit(toy.batches(batchSize), {
    steps,
    onProgress: (p) => {
      if (interactive) process.stderr.write(`\r${progressLine(p)}`);
      else console.error(progressLine(p));
    },
  });
  if (interactive) process.stderr.write('\n');
  const seconds = (performance.now() - started) / 1000;
  const last = records[records.length - 1];
  const held = toy.sample(4096).x;
  const reconstruction = await sae.reconstruct(held);
  const after = metrics.mmcs(sae.dictionary(), toy.features);
  console.log(`Trained in ${seconds.toFixed(1)} s: final batch loss ${last.loss.toFixed(4)}, L0 ${last.l0.toFixed(2)}.`);
  console.log(`Fraction of variance unexplained on 4096 held-out samples: ${metrics.fvu(held, reconstruction).toFixed(4)}`);
  console.log(`Mean max cosine similarity to the true features: ${before.toFixed(3)} at initialisation -> ${after.toFixed(4)}`);
  sae.dispose();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
