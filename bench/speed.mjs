// @ts-check
// `npm run bench:speed`: milliseconds per training step of the fused native step, next to
// references measured in the same run: our own encoder product alone (the dense floor of the
// step) and, when Debian's PyTorch is installed, the same model and step in PyTorch on the
// same number of threads (bench/torch_sae.py). Ratios, not absolute times, are the result:
// these machines are shared and noisy.
//
//   node bench/speed.mjs [--steps N] [--shapes 512x4096x1024,128x1024x1024] [--out bench/results]
//   node bench/speed.mjs --device cuda [...]   the GPU benchmark, bench/cuda_speed.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { SparseAutoencoder, ToyDataset } from '../dist/index.js';
import { addon } from '../dist/native.js';

const here = dirname(fileURLToPath(import.meta.url));
const cudaFlag = process.argv.findIndex((a, i) => a === '--device=cuda' || (a === '--device' && process.argv[i + 1] === 'cuda'));
if (cudaFlag > 0) {
  const skip = process.argv[cudaFlag] === '--device' ? 2 : 1;
  await (await import('./cuda_speed.mjs')).main([...process.argv.slice(2, cudaFlag), ...process.argv.slice(cudaFlag + skip)]);
  process.exit(0);
}
const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    shapes: { type: 'string', default: '512x4096x1024,128x1024x1024' },
    'target-l0': { type: 'string', default: '45' },
    out: { type: 'string', default: join(here, 'results') },
    'no-torch': { type: 'boolean', default: false },
  },
});
const steps = Number(args.steps);
const warmup = Number(args.warmup);
const targetL0 = Number(args['target-l0']);
const torchPython = '/usr/bin/python3';
const l1Coeff = 1e-3;
const lr = 1e-4;

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function torchAvailable() {
  if (args['no-torch'] || !existsSync(torchPython)) return false;
  return spawnSync(torchPython, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

/**
 * A model whose encoder bias is set so that about `targetL0` units are active per row of
 * `batch`: the speed of the sparse half of the step depends on L0, so every run (ours and
 * PyTorch's) starts from the same parameters at the L0 of a trained SAE.
 */
/**
 * @param {number} dIn @param {number} dHidden @param {boolean} tied
 * @param {import('../dist/index.js').Matrix} batch
 */
async function preparedModel(dIn, dHidden, tied, batch) {
  const sae = new SparseAutoencoder({ dIn, dHidden, tied, l1Coeff, lr, seed: 1 });
  const codes = await sae.encode(batch);
  const positive = codes.data.filter((v) => v > 0).sort().reverse();
  const threshold = positive[Math.min(positive.length - 1, targetL0 * batch.rows)] ?? 0;
  // @ts-expect-error _setParameter is internal (stripped from the published types)
  sae._setParameter('encoderBias', new Float32Array(dHidden).fill(-threshold));
  return sae;
}

/** @param {SparseAutoencoder} sae @param {import('../dist/index.js').Matrix[]} batches */
async function timeOurs(sae, batches) {
  const times = [];
  const l0s = [];
  for (let i = 0; i < warmup + steps; i++) {
    const started = performance.now();
    const stats = await sae.trainStep(batches[i % batches.length]);
    if (i >= warmup) {
      times.push(performance.now() - started);
      l0s.push(stats.l0);
    }
  }
  return { msPerStep: median(times), l0: l0s.reduce((a, b) => a + b, 0) / l0s.length };
}

/** @param {SparseAutoencoder} sae @param {import('../dist/index.js').Matrix} batch */
async function timeEncode(sae, batch) {
  const times = [];
  for (let i = 0; i < warmup + steps; i++) {
    const started = performance.now();
    await sae.encode(batch);
    if (i >= warmup) times.push(performance.now() - started);
  }
  return median(times);
}

/**
 * @param {number} dIn @param {number} dHidden @param {number} batchSize @param {boolean} tied
 * @param {SparseAutoencoder} sae @param {import('../dist/index.js').Matrix[]} batches
 */
function timeTorch(dIn, dHidden, batchSize, tied, sae, batches) {
  const dir = mkdtempSync(join(tmpdir(), 'saekit-speed-'));
  try {
    const all = new Float32Array(batches.length * batchSize * dIn);
    batches.forEach((b, i) => all.set(b.data, i * batchSize * dIn));
    writeFileSync(join(dir, 'x.f32'), all);
    writeFileSync(join(dir, 'w_enc.f32'), sae.encoderWeights().data);
    writeFileSync(join(dir, 'b_enc.f32'), sae.encoderBias());
    writeFileSync(join(dir, 'w_dec.f32'), sae.decoderWeights().data);
    writeFileSync(join(dir, 'b_dec.f32'), sae.decoderBias());
    // PyTorch as it runs fastest here: OpenBLAS left to detect the CPU, and no mmap churn
    // for its large temporaries (see shared/REFERENCES.md).
    /** @type {NodeJS.ProcessEnv} */
    const env = { ...process.env, MALLOC_MMAP_MAX_: '0' };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const run = spawnSync(
      torchPython,
      [join(here, 'torch_sae.py'), 'speed', '--dir', dir, '--d-in', `${dIn}`, '--d-hidden', `${dHidden}`, '--batch', `${batchSize}`,
        '--l1', `${l1Coeff}`, '--lr', `${lr}`, '--steps', `${steps}`, '--warmup', `${warmup}`, '--threads', `${sae.threads}`,
        ...(tied ? ['--tied'] : [])],
      { env, encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`torch_sae.py failed: ${run.stderr}`);
    return JSON.parse(run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const withTorch = torchAvailable();
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, kernels: addon.cpuKernels() };
  console.log(`saekit speed: ${machine.cpu}, ${machine.cores} cores, ${machine.kernels} kernels, Node ${machine.node}`);
  console.log(withTorch ? 'PyTorch reference: /usr/bin/python3 bench/torch_sae.py' : 'PyTorch not found (apt-get install -y python3-torch): no PyTorch reference');
  /** @type {Record<string, unknown>[]} */
  const results = [];
  for (const shape of args.shapes.split(',')) {
    const [dIn, dHidden, batchSize] = shape.split('x').map(Number);
    const toy = new ToyDataset({ dim: dIn, numFeatures: 2 * dIn, expectedActive: 10, seed: 1 });
    const batches = Array.from({ length: 4 }, () => toy.sample(batchSize).x);
    for (const tied of [false, true]) {
      const sae = await preparedModel(dIn, dHidden, tied, batches[0]);
      const torch = withTorch ? timeTorch(dIn, dHidden, batchSize, tied, sae, batches) : undefined;
      const encodeMs = await timeEncode(sae, batches[0]);
      const ours = await timeOurs(sae, batches);
      sae.dispose();
      const record = {
        dIn, dHidden, batchSize, tied, threads: sae.threads, l0: ours.l0,
        msPerStep: ours.msPerStep,
        samplesPerSecond: (batchSize / ours.msPerStep) * 1000,
        encodeMs,
        stepOverEncode: ours.msPerStep / encodeMs,
        torchMsPerStep: torch?.msPerStep,
        torchL0: torch?.l0,
        speedupOverTorch: torch ? torch.msPerStep / ours.msPerStep : undefined,
      };
      results.push(record);
      console.log(
        `${dIn}x${dHidden} batch ${batchSize} ${tied ? 'tied  ' : 'untied'} L0 ${ours.l0.toFixed(1).padStart(5)}: ` +
          `${ours.msPerStep.toFixed(2).padStart(7)} ms/step ${Math.round(record.samplesPerSecond).toLocaleString('en-US').padStart(9)} samples/s | ` +
          `encoder product alone ${encodeMs.toFixed(2)} ms (step = ${record.stepOverEncode.toFixed(2)}x)` +
          (torch ? ` | PyTorch ${torch.msPerStep.toFixed(2)} ms/step (L0 ${torch.l0.toFixed(1)}): ${(torch.msPerStep / ours.msPerStep).toFixed(2)}x faster` : ''),
      );
    }
    // TopK and BatchTopK at the L0 the ReLU run had: the selection is part of the epilogue, so
    // the step should cost about what the ReLU step costs.
    const relu = /** @type {{ l0: number, msPerStep: number }} */ (results[results.length - 2]);
    const k = Math.max(1, Math.round(relu.l0));
    for (const activation of /** @type {const} */ (['topk', 'batchtopk'])) {
      const sae = new SparseAutoencoder({ dIn, dHidden, activation, k, lr, seed: 1 });
      const ours = await timeOurs(sae, batches);
      sae.dispose();
      results.push({ dIn, dHidden, batchSize, tied: false, activation, k, threads: sae.threads, l0: ours.l0, msPerStep: ours.msPerStep, overRelu: ours.msPerStep / relu.msPerStep });
      console.log(
        `${dIn}x${dHidden} batch ${batchSize} ${activation.padEnd(9)} k ${k}: ${ours.msPerStep.toFixed(2).padStart(7)} ms/step, ` +
          `${(ours.msPerStep / relu.msPerStep).toFixed(2)}x the ReLU step at L0 ${relu.l0.toFixed(1)}`,
      );
    }
  }
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, 'speed.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, steps, warmup, results }, null, 2));
  console.log(`wrote ${file}`);
}

await main();
