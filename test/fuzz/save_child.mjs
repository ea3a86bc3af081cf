// @ts-check
// Continues the checkpoint in `dir` (or starts one), saving it over and over with a training
// step between saves, until killed. Prints "saved <steps>" after each completed save. Used by
// test/robustness.test.ts.
import { existsSync } from 'node:fs';

import { SparseAutoencoder } from '../../dist/index.js';

const dir = process.argv[2];
const sae = existsSync(dir) || existsSync(`${dir}.saekit-staged`) || existsSync(`${dir}.saekit-previous`)
  ? await SparseAutoencoder.load(dir, { threads: 1 })
  : new SparseAutoencoder({ dIn: 8, dHidden: 32, l1Coeff: 0.01, lr: 0.01, seed: 3, threads: 1 });
const batch = { rows: 16, cols: 8, data: Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)) };
for (;;) {
  await sae.trainStep(batch);
  await sae.save(dir);
  process.stdout.write(`saved ${sae.stepsTaken}\n`);
}
