// @ts-check
// `npm run bench:speed -- --device cuda` (or `node bench/cuda_speed.mjs`): milliseconds per
// training step and samples per second of the SparseAutoencoder on the GPU, at the issue's
// shapes, for both encoder precisions, next to the same model and step in PyTorch on the same
// GPU in the same run (bench/torch_sae.py --device cuda, TF32 matrix products allowed exactly
// when ours use them). Each trainStep is timed from the call to the resolved statistics, which
// includes copying the batch to the GPU for saekit: PyTorch is timed with its batches already
// there, and again with each copied from pinned host memory in the step ("from host").
// `fit` is timed too, over a Matrix of the same rows: the training loop, where each step copies
// the next batch to the GPU while it runs (per step, without what a fit does once).
//
//   node bench/cuda_speed.mjs [--device cuda|cuda:N] [--shapes 768x24576x4096,512x4096x4096] [--steps N] [--warmup N]
//                             [--python /usr/bin/python3] [--no-torch] [--out bench/results]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { SparseAutoencoder, ToyDataset } from '../dist/index.js';
import { cudaDevice } from './cuda_device.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const l1Coeff = 1e-3;
const lr = 1e-4;

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * @typedef {{ device: string, steps: number, warmup: number, targetL0: number, python: string, torch: boolean }} Settings
 * @typedef {import('../dist/index.js').Matrix} Matrix
 */

/** @param {string} python @param {string} device */
function torchCudaAvailable(python, device) {
  const probe = spawnSync(python, ['-c', `import torch; torch.zeros(1, device=${JSON.stringify(device)})`], { stdio: 'ignore' });
  return probe.status === 0;
}

/**
 * A model whose encoder bias puts about `targetL0` units of each row of `batch` above zero,
 * so that ours and PyTorch's steps start at the L0 of a trained SAE.
 * @param {number} dIn @param {number} dHidden @param {'tf32' | 'fp32'} precision @param {Matrix} batch @param {number} targetL0
 * @param {`cuda:${number}` | 'cuda'} device
 */
async function preparedModel(dIn, dHidden, precision, batch, targetL0, device) {
  const sae = new SparseAutoencoder({ dIn, dHidden, l1Coeff, lr, seed: 1, device, precision });
  const codes = await sae.encode(batch, { format: 'sparse' });
  const positive = codes.values.slice().sort().reverse();
  const threshold = positive[Math.min(positive.length - 1, targetL0 * batch.rows)] ?? 0;
  // @ts-expect-error _setParameter is internal (stripped from the published types)
  sae._setParameter('encoderBias', new Float32Array(dHidden).fill(-threshold));
  return sae;
}

/** @param {SparseAutoencoder} sae @param {Matrix[]} batches @param {Settings} settings */
async function timeOurs(sae, batches, settings) {
  const times = [];
  const l0s = [];
  for (let i = 0; i < settings.warmup + settings.steps; i++) {
    const started = performance.now();
    const stats = await sae.trainStep(batches[i % batches.length]);
    if (i >= settings.warmup) {
      times.push(performance.now() - started);
      l0s.push(stats.l0);
    }
  }
  return { msPerStep: median(times), l0: l0s.reduce((a, b) => a + b, 0) / l0s.length };
}

/**
 * Milliseconds per step of `fit` over the batches' rows as one Matrix (reshuffled into batches
 * of the same size), after a fit of `warmup` steps: the difference between a fit of 3 x steps
 * and one of `steps`, over 2 x steps, so that what a fit does once (copying and checking the
 * whole Matrix, 50 MB here at dIn 768: about 30 ms on an H100's host) does not count.
 * @param {SparseAutoencoder} sae @param {Matrix[]} batches @param {Settings} settings
 */
async function timeFit(sae, batches, settings) {
  const rows = batches[0].rows;
  const all = new Float32Array(batches.length * rows * sae.dIn);
  batches.forEach((b, i) => all.set(b.data, i * rows * sae.dIn));
  const data = { rows: batches.length * rows, cols: sae.dIn, data: all };
  await sae.fit(data, { steps: Math.max(settings.warmup, 1), batchSize: rows });
  /** @param {number} steps */
  const timed = async (steps) => {
    const started = performance.now();
    await sae.fit(data, { steps, batchSize: rows });
    return performance.now() - started;
  };
  const short = await timed(settings.steps);
  const long = await timed(3 * settings.steps);
  return (long - short) / (2 * settings.steps);
}

/**
 * @param {SparseAutoencoder} sae @param {Matrix[]} batches @param {'tf32' | 'fp32'} precision @param {Settings} settings
 * @returns {{ msPerStep: number, l0: number, fromHostMsPerStep: number, fromHostL0: number, device: string }}
 */
function timeTorch(sae, batches, precision, settings) {
  const dir = mkdtempSync(join(tmpdir(), 'saekit-cuda-speed-'));
  try {
    const rows = batches[0].rows;
    const all = new Float32Array(batches.length * rows * sae.dIn);
    batches.forEach((b, i) => all.set(b.data, i * rows * sae.dIn));
    writeFileSync(join(dir, 'x.f32'), all);
    writeFileSync(join(dir, 'w_enc.f32'), sae.encoderWeights().data);
    writeFileSync(join(dir, 'b_enc.f32'), sae.encoderBias());
    writeFileSync(join(dir, 'w_dec.f32'), sae.decoderWeights().data);
    writeFileSync(join(dir, 'b_dec.f32'), sae.decoderBias());
    const run = spawnSync(
      settings.python,
      [join(here, 'torch_sae.py'), 'speed', '--dir', dir, '--d-in', `${sae.dIn}`, '--d-hidden', `${sae.dHidden}`, '--batch', `${rows}`,
        '--l1', `${l1Coeff}`, '--lr', `${lr}`, '--steps', `${settings.steps}`, '--warmup', `${settings.warmup}`, '--device', settings.device,
        ...(precision === 'tf32' ? ['--tf32'] : [])],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`torch_sae.py failed: ${run.stderr}`);
    return JSON.parse(run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Times every shape ("dInxdHiddenxbatch") at both precisions; returns the records, or null
 * (after saying why) where CUDA cannot run.
 * @param {string[]} shapes @param {Settings} settings @param {(line: string) => void} log
 */
export async function cudaSaeSpeed(shapes, settings, log) {
  const cuda = cudaDevice(settings.device);
  if ('reason' in cuda) {
    log(`${cuda.reason}: nothing to time`);
    return null;
  }
  const withTorch = settings.torch && torchCudaAvailable(settings.python, settings.device);
  log(`saekit CUDA speed on ${cuda.device} (${cuda.gpu}); ${withTorch ? `PyTorch reference: ${settings.python} bench/torch_sae.py --device ${settings.device}` : 'no PyTorch with CUDA found: no reference'}`);
  /** @type {Record<string, unknown>[]} */
  const results = [];
  for (const shape of shapes) {
    const [dIn, dHidden, batchSize] = shape.split('x').map(Number);
    const toy = new ToyDataset({ dim: dIn, numFeatures: 2 * dIn, expectedActive: 10, seed: 1 });
    const batches = Array.from({ length: 4 }, () => toy.sample(batchSize).x);
    for (const precision of /** @type {const} */ (['tf32', 'fp32'])) {
      const sae = await preparedModel(dIn, dHidden, precision, batches[0], settings.targetL0, cuda.device);
      const torch = withTorch ? timeTorch(sae, batches, precision, settings) : undefined;
      const ours = await timeOurs(sae, batches, settings);
      const fitMsPerStep = await timeFit(sae, batches, settings);
      sae.dispose();
      const record = {
        dIn, dHidden, batchSize, precision, gpu: cuda.gpu, l0: ours.l0,
        msPerStep: ours.msPerStep,
        samplesPerSecond: (batchSize / ours.msPerStep) * 1000,
        fitMsPerStep,
        fitSamplesPerSecond: (batchSize / fitMsPerStep) * 1000,
        fitSpeedupOverTorch: torch ? torch.msPerStep / fitMsPerStep : undefined,
        torchMsPerStep: torch?.msPerStep,
        torchSamplesPerSecond: torch ? (batchSize / torch.msPerStep) * 1000 : undefined,
        torchL0: torch?.l0,
        speedupOverTorch: torch ? torch.msPerStep / ours.msPerStep : undefined,
        torchFromHostMsPerStep: torch?.fromHostMsPerStep,
        speedupOverTorchFromHost: torch ? torch.fromHostMsPerStep / ours.msPerStep : undefined,
      };
      results.push(record);
      log(
        `${dIn}x${dHidden} batch ${batchSize} ${precision} L0 ${ours.l0.toFixed(1).padStart(5)}: ${ours.msPerStep.toFixed(2).padStart(7)} ms/step ` +
          `${Math.round(record.samplesPerSecond).toLocaleString('en-US').padStart(10)} samples/s, in fit ${fitMsPerStep.toFixed(2)} ms/step` +
          (torch
            ? ` | PyTorch ${torch.msPerStep.toFixed(2)} ms/step ${Math.round(/** @type {number} */ (record.torchSamplesPerSecond)).toLocaleString('en-US')} samples/s (L0 ${torch.l0.toFixed(1)}): ${(torch.msPerStep / ours.msPerStep).toFixed(2)}x, in fit ${(torch.msPerStep / fitMsPerStep).toFixed(2)}x` +
              ` | PyTorch from host ${torch.fromHostMsPerStep.toFixed(2)} ms/step: ${(torch.fromHostMsPerStep / ours.msPerStep).toFixed(2)}x`
            : ''),
      );
    }
  }
  return results;
}


/** @param {string[]} argv */
export async function main(argv) {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      device: { type: 'string', default: 'cuda' },
      shapes: { type: 'string', default: '768x24576x4096,512x4096x4096' },
      steps: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '3' },
      'target-l0': { type: 'string', default: '45' },
      python: { type: 'string', default: '/usr/bin/python3' },
      'no-torch': { type: 'boolean', default: false },
      out: { type: 'string', default: join(here, 'results') },
    },
  });
  const settings = { device: args.device, steps: Number(args.steps), warmup: Number(args.warmup), targetL0: Number(args['target-l0']), python: args.python, torch: !args['no-torch'] };
  const results = await cudaSaeSpeed(args.shapes.split(','), settings, (line) => console.log(line));
  if (results === null) return;
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, 'cuda_speed.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), settings, results }, null, 2));
  console.log(`wrote ${file}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
