// @ts-check
// `node bench/toy_generation.mjs` (after `npm run build`): milliseconds to generate one toy
// batch, next to what it is compared with in the same run: the JS generator the native stream
// replaced (copied below as it was) and one SAE training step on the same data. Then training
// throughput from toy.batches() against the same steps on batches made in advance, which shows
// what generation costs a fit once it overlaps with the steps. Medians and minima over
// repetitions: these machines are shared and noisy, and the minimum is the least disturbed.
//
//   node bench/toy_generation.mjs [--reps N] [--batch 1024] [--dim 256] [--features 512] [--active 5] [--hidden 1024]
//
// bench/speed.mjs calls toyGenerationSpeed() directly.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { SparseAutoencoder, ToyDataset } from '../dist/index.js';
import { Random } from '../dist/random.js';

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** @param {() => unknown} fn @param {number} reps @returns {Promise<[number, number]>} median and minimum */
async function timeMs(fn, reps) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return [median(times), Math.min(...times)];
}

/** @param {string} label @param {[number, number]} ms @param {string} [unit] */
function formatRow(label, [middle, least], unit = 'ms') {
  return `${label.padEnd(66)} ${middle.toFixed(2).padStart(8)} ${unit} (min ${least.toFixed(2)})`;
}

/**
 * The generator ToyDataset used before the native stream (lib/toy_dataset.ts at 5b219e5):
 * geometric gaps between active features, one JS Random, uniform probabilities only.
 * @param {ToyDataset} toy @param {number} n @param {Random} random
 */
function previousJsBatch(toy, n, random) {
  const p = toy.expectedActive / toy.numFeatures;
  const x = new Float32Array(n * toy.dim);
  const features = toy.features.data;
  const logMiss = Math.log1p(-p);
  const gap = () => (p >= 1 ? 1 : 1 + Math.floor(Math.log(1 - random.uniform()) / logMiss));
  for (let s = 0; s < n; s++) {
    const row = s * toy.dim;
    for (let f = gap() - 1; f < toy.numFeatures; f += gap()) {
      const magnitude = random.uniform();
      const feature = f * toy.dim;
      for (let i = 0; i < toy.dim; i++) x[row + i] += magnitude * features[feature + i];
    }
  }
  return { rows: n, cols: toy.dim, data: x };
}

/**
 * Times toy batch generation (native, and the previous JS generator as the reference), one SAE
 * step on the same data, and fit throughput from the stream against batches made in advance.
 * Returns the rows it prints: [label, [median ms, minimum ms]].
 * @param {{ reps?: number, batch?: number, dim?: number, numFeatures?: number, expectedActive?: number, dHidden?: number,
 *   fitSteps?: number, log?: (line: string) => void }} [options]
 */
export async function toyGenerationSpeed(options = {}) {
  const { reps = 30, batch = 1024, dim = 256, numFeatures = 512, expectedActive = 5, dHidden = 1024, fitSteps = 60, log = console.log } = options;
  const threads = availableParallelism();
  const setting = { dim, numFeatures, expectedActive, seed: 1 };
  log(`Toy batch ${batch} x ${dim}, ${numFeatures} features, ${expectedActive} active; ${threads} threads available; median of ${reps}`);

  /** @type {Array<[string, [number, number]]>} */
  const rows = [];
  const plain = new ToyDataset(setting);
  const jsRandom = new Random(2);
  rows.push(['previous JS generator (1 thread)', await timeMs(() => previousJsBatch(plain, batch, jsRandom), reps)]);
  for (const t of [1, threads]) {
    const toy = new ToyDataset({ ...setting, threads: t });
    rows.push([`native sample(${batch}) with codes, ${t} thread(s)`, await timeMs(() => toy.sample(batch), reps)]);
    const stream = toy.batches(batch);
    rows.push([`native batches() next(), ${t} thread(s)`, await timeMs(() => stream.next(), reps)]);
  }
  for (const [label, extra] of /** @type {const} */ ([
    ['+ noise 0.1', { noise: 0.1 }],
    ['+ decay 0.99', { decay: 0.99 }],
    ['+ correlated (rank 4, strength 0.5)', { correlated: true }],
    ['+ correlated, decay 0.99, noise 0.1', { correlated: true, decay: 0.99, noise: 0.1 }],
  ])) {
    for (const t of [1, threads]) {
      const stream = new ToyDataset({ ...setting, ...extra, threads: t }).batches(batch);
      rows.push([`native batches() ${label}, ${t} thread(s)`, await timeMs(() => stream.next(), reps)]);
    }
  }

  const sae = new SparseAutoencoder({ dIn: dim, dHidden, l1Coeff: 0.1, lr: 1e-3, seed: 1 });
  const data = plain.sample(batch).x;
  rows.push([`SAE trainStep (${dim}, ${dHidden}, ${batch}), ${sae.threads} threads`, await timeMs(() => sae.trainStep(data), reps)]);
  sae.dispose();
  for (const [label, ms] of rows) log(formatRow(label, ms));

  // Training throughput: fresh batches from the stream (generated while the previous step runs)
  // against the same number of steps on batches generated beforehand.
  /** @type {import('../dist/index.js').Matrix[]} */
  const prepared = [];
  const source = new ToyDataset(setting);
  for (let i = 0; i < fitSteps; i++) prepared.push(source.sample(batch).x);
  /** @param {() => Iterable<import('../dist/index.js').Matrix> | AsyncIterable<import('../dist/index.js').Matrix>} data */
  const timeFit = async (data) => {
    const model = new SparseAutoencoder({ dIn: dim, dHidden, l1Coeff: 0.1, lr: 1e-3, seed: 1 });
    const start = performance.now();
    await model.fit(data(), { steps: fitSteps });
    const ms = (performance.now() - start) / fitSteps;
    model.dispose();
    return ms;
  };
  const fitPrepared = [];
  const fitStream = [];
  for (let round = 0; round < 5; round++) {
    fitPrepared.push(await timeFit(() => prepared));
    fitStream.push(await timeFit(() => new ToyDataset(setting).batches(batch)));
  }
  /** @type {{ prepared: [number, number], stream: [number, number] }} */
  const fit = { prepared: [median(fitPrepared), Math.min(...fitPrepared)], stream: [median(fitStream), Math.min(...fitStream)] };
  log(formatRow(`fit ${fitSteps} steps, batches made in advance`, fit.prepared, 'ms/step'));
  log(formatRow(`fit ${fitSteps} steps, toy.batches() generated on the fly`, fit.stream, 'ms/step'));
  return { batch, dim, numFeatures, expectedActive, dHidden, threads, reps, fitSteps, rows, fit };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      reps: { type: 'string', default: '30' },
      batch: { type: 'string', default: '1024' },
      dim: { type: 'string', default: '256' },
      features: { type: 'string', default: '512' },
      active: { type: 'string', default: '5' },
      hidden: { type: 'string', default: '1024' },
      'fit-steps': { type: 'string', default: '60' },
    },
  });
  await toyGenerationSpeed({
    reps: Number(args.reps), batch: Number(args.batch), dim: Number(args.dim), numFeatures: Number(args.features),
    expectedActive: Number(args.active), dHidden: Number(args.hidden), fitSteps: Number(args['fit-steps']),
  });
}
