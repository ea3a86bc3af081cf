// @ts-check
// A worker thread that trains a model and posts back its decoder weights.
import { parentPort, workerData } from 'node:worker_threads';

import { SparseAutoencoder, ToyDataset } from '../../dist/index.js';

const { seed, steps } = workerData;
const toy = new ToyDataset({ dim: 16, numFeatures: 32, expectedActive: 3, seed });
const sae = new SparseAutoencoder({ dIn: 16, dHidden: 64, l1Coeff: 0.1, lr: 3e-3, seed, threads: 1 });
await sae.fit(toy.batches(128), { steps });
parentPort?.postMessage(sae.decoderWeights().data);
sae.dispose();
