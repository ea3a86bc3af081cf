// @ts-check
// `npm run bench:speed`: milliseconds per training step of the fused native step, next to
// references measured in the same run: our own encoder product alone (the dense floor of the
// step) and, when Debian's PyTorch is installed, the same model and step in PyTorch on the
// same number of threads (bench/torch_sae.py). Then FISTA encode against scikit-learn
// (bench/fista_speed.mjs), RICA's cost and gradient against numpy (bench/rica_speed.mjs) and
// toy data generation (bench/toy_generation.mjs). Ratios, not absolute times, are the result:
// these machines are shared and noisy.
//
// Writes the `speed` part of results.json (the quality benchmark's part is kept) and
// re-renders report.html, whose speed table shows these rows.
//
//   node bench/speed.mjs [--steps N] [--shapes 512x4096x1024,128x1024x1024] [--only sae,fista,rica,toy]
//                        [--no-torch] [--no-sklearn] [--no-numpy] [--out bench/results]
//   node bench/speed.mjs --device cuda[:N] [...]   the GPU benchmark, bench/cuda_speed.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { SparseAutoencoder, ToyDataset } from '../dist/index.js';
import { fistaSpeed } from './fista_speed.mjs';
import { writeReport } from './quality/report.mjs';
import { commitInfo, machineInfo, updateResults } from './quality/results.mjs';
import { ricaSpeed } from './rica_speed.mjs';
import { toyGenerationSpeed } from './toy_generation.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const isGpu = (/** @type {string | undefined} */ value) => value !== undefined && /^cuda(:|$)/.test(value);
const cudaFlag = process.argv.findIndex((a, i) => (a.startsWith('--device=') && isGpu(a.slice(9))) || (a === '--device' && isGpu(process.argv[i + 1])));
if (cudaFlag > 0) {
  const skip = process.argv[cudaFlag] === '--device' ? 2 : 1;
  const device = skip === 2 ? process.argv[cudaFlag + 1] : process.argv[cudaFlag].slice(9);
  await (await import('./cuda_speed.mjs')).main([...process.argv.slice(2, cudaFlag), ...process.argv.slice(cudaFlag + skip), '--device', device]);
  process.exit(0);
}
const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    shapes: { type: 'string', default: '512x4096x1024,128x1024x1024' },
    'target-l0': { type: 'string', default: '45' },
    out: { type: 'string', default: join(here, 'results') },
    only: { type: 'string', default: 'sae,fista,rica,toy' },
    'no-torch': { type: 'boolean', default: false },
    'no-sklearn': { type: 'boolean', default: false },
    'no-numpy': { type: 'boolean', default: false },
  },
});
const parts = new Set(args.only.split(','));
for (const part of parts) {
  if (!['sae', 'fista', 'rica', 'toy'].includes(part)) throw new RangeError(`--only takes sae, fista, rica and toy, not ${part}`);
}
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

/**
 * numpy's float32 product [batch, dIn] x [dIn, dHidden] (OpenBLAS) on the same number of
 * threads: the reference rate for our encoder product, median ms of `steps` after a warm-up,
 * or undefined where numpy cannot be imported.
 * @param {number} rows @param {number} dIn @param {number} dHidden @param {number} threads
 */
function timeNumpyProduct(rows, dIn, dHidden, threads) {
  if (args['no-numpy'] || !existsSync(torchPython)) return undefined;
  const script = [
    'import sys, time, numpy as np',
    'r, d, m, steps = map(int, sys.argv[1:5])',
    'rng = np.random.default_rng(1)',
    'a = rng.standard_normal((r, d), dtype=np.float32); b = rng.standard_normal((d, m), dtype=np.float32)',
    'a @ b',
    'times = []',
    'for _ in range(steps):',
    '    t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)',
    'times.sort(); print(times[len(times) // 2] * 1e3)',
  ].join('\n');
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const run = spawnSync(torchPython, ['-c', script, String(rows), String(dIn), String(dHidden), String(steps)], { encoding: 'utf8', env });
  const ms = Number.parseFloat(run.stdout);
  return run.status === 0 && Number.isFinite(ms) ? ms : undefined;
}

/** @param {SparseAutoencoder} sae @param {import('../dist/index.js').Matrix} batch */
async function timeEncode(sae, batch) {
  const times = [];
  for (let i = 0; i < warmup + steps; i++) {
    const started = performance.now();
    // Sparse output: the product with its fused bias, ReLU and extraction, without allocating
    // and filling a dense [batch, dHidden] result (100 MB at 1024 x 24576).
    await sae.encode(batch, { format: 'sparse' });
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

/**
 * The SAE training step (ReLU untied and tied, TopK, BatchTopK) at each shape, with PyTorch's
 * step and our encoder product alone beside it.
 * @param {boolean} withTorch @param {(line: string) => void} log
 */
async function saeSpeed(withTorch, log) {
  log(withTorch ? 'PyTorch reference: /usr/bin/python3 bench/torch_sae.py' : 'PyTorch not found (apt-get install -y python3-torch): no PyTorch reference');
  /** @type {Record<string, any>[]} */
  const results = [];
  for (const shape of args.shapes.split(',')) {
    const [dIn, dHidden, batchSize] = shape.split('x').map(Number);
    const toy = new ToyDataset({ dim: dIn, numFeatures: 2 * dIn, expectedActive: 10, seed: 1 });
    const batches = Array.from({ length: 4 }, () => toy.sample(batchSize).x);
    const threads = availableParallelism();
    const numpyMs = timeNumpyProduct(batchSize, dIn, dHidden, threads);
    const productFlops = 2 * batchSize * dIn * dHidden;
    if (numpyMs !== undefined) {
      // The issue's floor: the dense product at OpenBLAS's rate plus the sparse half and Adam,
      // which a throwaway probe ran in about 8 ms at 512x4096x1024 (shared/REFERENCES.md),
      // scaled by the parameters Adam touches for other shapes.
      const floorMs = numpyMs + 8 * (dIn * dHidden) / (512 * 4096);
      log(
        `${dIn}x${dHidden} batch ${batchSize}: numpy float32 product (OpenBLAS, ${threads} threads) ${numpyMs.toFixed(2)} ms = ` +
          `${(productFlops / numpyMs / 1e6).toFixed(1)} GFLOP/s; the step's floor from it about ${floorMs.toFixed(1)} ms`,
      );
      results.push({ dIn, dHidden, batchSize, activation: 'numpy-product', threads, msPerProduct: numpyMs, floorMs });
    }
    for (const tied of [false, true]) {
      const sae = await preparedModel(dIn, dHidden, tied, batches[0]);
      const torch = withTorch ? timeTorch(dIn, dHidden, batchSize, tied, sae, batches) : undefined;
      const encodeMs = await timeEncode(sae, batches[0]);
      const ours = await timeOurs(sae, batches);
      sae.dispose();
      const record = {
        dIn, dHidden, batchSize, tied, activation: 'relu', threads: sae.threads, l0: ours.l0,
        msPerStep: ours.msPerStep,
        samplesPerSecond: (batchSize / ours.msPerStep) * 1000,
        encodeMs,
        stepOverEncode: ours.msPerStep / encodeMs,
        torchMsPerStep: torch?.msPerStep,
        torchL0: torch?.l0,
        speedupOverTorch: torch ? torch.msPerStep / ours.msPerStep : undefined,
      };
      results.push(record);
      log(
        `${dIn}x${dHidden} batch ${batchSize} ${tied ? 'tied  ' : 'untied'} L0 ${ours.l0.toFixed(1).padStart(5)}: ` +
          `${ours.msPerStep.toFixed(2).padStart(7)} ms/step ${Math.round(record.samplesPerSecond).toLocaleString('en-US').padStart(9)} samples/s | ` +
          `encoder product alone ${encodeMs.toFixed(2)} ms = ${(productFlops / encodeMs / 1e6).toFixed(1)} GFLOP/s (step = ${record.stepOverEncode.toFixed(2)}x` +
          (numpyMs !== undefined ? `; ${((100 * numpyMs) / encodeMs).toFixed(0)}% of OpenBLAS's rate; step = ${(ours.msPerStep / (numpyMs + (8 * dIn * dHidden) / (512 * 4096))).toFixed(2)}x the floor` : '') +
          ')' +
          (torch ? ` | PyTorch ${torch.msPerStep.toFixed(2)} ms/step (L0 ${torch.l0.toFixed(1)}): ${(torch.msPerStep / ours.msPerStep).toFixed(2)}x faster` : ''),
      );
    }
    // TopK and BatchTopK at the L0 the ReLU run had: the selection is part of the epilogue, so
    // the step should cost about what the ReLU step costs.
    const relu = /** @type {Record<string, any>} */ (results.filter((r) => r.activation === 'relu').at(-2));
    const k = Math.max(1, Math.round(relu.l0));
    for (const activation of /** @type {const} */ (['topk', 'batchtopk'])) {
      const sae = new SparseAutoencoder({ dIn, dHidden, activation, k, lr, seed: 1 });
      const ours = await timeOurs(sae, batches);
      sae.dispose();
      results.push({ dIn, dHidden, batchSize, tied: false, activation, k, threads: sae.threads, l0: ours.l0, msPerStep: ours.msPerStep, samplesPerSecond: (batchSize / ours.msPerStep) * 1000, overRelu: ours.msPerStep / relu.msPerStep });
      log(
        `${dIn}x${dHidden} batch ${batchSize} ${activation.padEnd(9)} k ${k}: ${ours.msPerStep.toFixed(2).padStart(7)} ms/step, ` +
          `${(ours.msPerStep / relu.msPerStep).toFixed(2)}x the ReLU step at L0 ${relu.l0.toFixed(1)}`,
      );
    }
  }
  return results;
}

/**
 * numpy's product at the same shape as the reference for our encoder product, where it ran.
 * @param {Record<string, any>[]} sae @param {Record<string, any>} r
 */
function productReference(sae, r) {
  const numpy = sae.find((x) => x.activation === 'numpy-product' && x.dIn === r.dIn && x.dHidden === r.dHidden && x.batchSize === r.batchSize);
  if (numpy === undefined) return { reference: null, ratio: null };
  return {
    reference: { name: 'numpy float32 product (OpenBLAS, same threads)', ms: numpy.msPerProduct },
    ratio: numpy.msPerProduct / r.encodeMs,
    note: `the step's floor (OpenBLAS product + 8 ms of sparse work and Adam, scaled): ${numpy.floorMs.toFixed(1)} ms`,
  };
}

/**
 * The report's table rows, one per operation and shape.
 * @param {{ sae?: Record<string, any>[], fista?: Record<string, any>, rica?: Record<string, any>, toy?: Record<string, any> }} raw
 * @param {{ torch: boolean }} ran
 * @returns {import('./quality/results.mjs').SpeedRow[]}
 */
function speedRows(raw, ran) {
  /** @type {import('./quality/results.mjs').SpeedRow[]} */
  const rows = [];
  const denseStep = '10·B·d·m, the flops of the dense step (DESIGN.md)';
  for (const r of (raw.sae ?? []).filter((x) => x.activation !== 'numpy-product')) {
    const shape = `d ${r.dIn}, m ${r.dHidden}, batch ${r.batchSize}, L0 ${r.l0.toFixed(1)}, ${r.threads} threads`;
    const flops = 10 * r.batchSize * r.dIn * r.dHidden;
    const name = r.activation === 'relu' ? `SAE training step, ReLU ${r.tied ? 'tied' : 'untied'}` : `SAE training step, ${r.activation === 'topk' ? 'TopK' : 'BatchTopK'} k ${r.k}`;
    rows.push({
      operation: name, shape, ms: r.msPerStep, samplesPerSecond: r.samplesPerSecond, gflops: flops / r.msPerStep / 1e6, flops: denseStep,
      reference: r.activation === 'relu' ? { name: 'PyTorch 1.13 (same model, same threads)', ms: r.torchMsPerStep ?? null, ...(ran.torch ? {} : { note: 'PyTorch not available' }) } : null,
      ratio: r.torchMsPerStep ? r.torchMsPerStep / r.msPerStep : null,
      ...(r.activation !== 'relu' ? { note: `${r.overRelu.toFixed(2)}x the ReLU step` } : {}),
    });
    if (r.activation === 'relu' && !r.tied) {
      rows.push({
        operation: 'SAE encoder product alone (encode)', shape, ms: r.encodeMs, samplesPerSecond: (r.batchSize / r.encodeMs) * 1000,
        gflops: (2 * r.batchSize * r.dIn * r.dHidden) / r.encodeMs / 1e6, flops: '2·B·d·m',
        ...productReference(raw.sae ?? [], r),
      });
    }
  }
  if (raw.fista !== undefined) {
    const f = raw.fista;
    const ours = f.ours.gap;
    // scikit-learn at its fastest n_jobs (joblib's workers can cost more than they save here).
    /** @type {any} */
    const fastest = (f.sklearn ?? []).reduce((/** @type {any} */ a, /** @type {any} */ b) => (a === undefined || b.usPerSample < a.usPerSample ? b : a), undefined);
    const ms = (ours.usPerSample * f.rows) / 1000;
    rows.push({
      operation: 'FISTA encode (gapTol 1e-4)', shape: `${f.rows} rows, ${f.atoms} atoms of dim ${f.dim}, lambda ${f.lambda}, L0 ${ours.l0.toFixed(1)}, ${ours.threads} threads`,
      ms, samplesPerSecond: (f.rows / ms) * 1000, gflops: null, flops: null,
      reference: { name: `scikit-learn sparse_encode lasso_cd${fastest ? ` (n_jobs ${fastest.jobs}, its fastest)` : ''}`, ms: fastest ? (fastest.usPerSample * f.rows) / 1000 : null, ...(fastest ? {} : { note: 'scikit-learn not available' }) },
      ratio: fastest ? fastest.usPerSample / ours.usPerSample : null,
      ...(f.ratioSameCores !== undefined ? { note: `${f.ratioSameCores.toFixed(2)}x in CPU time per sample on one core each` } : {}),
    });
  }
  if (raw.rica !== undefined) {
    const r = raw.rica;
    const c = r.costGradient;
    const { rows: n, dIn, features } = { rows: r.recipe.count, dIn: r.recipe.size ** 2, features: r.recipe.features };
    const numpy = c.numpy_float32;
    // Best of interleaved rounds, as bench/rica_speed.mjs reports it: on a shared machine other
    // work only ever adds time. The medians go in the note.
    rows.push({
      operation: 'RICA cost and gradient', shape: `${n} whitened patches of dim ${dIn}, ${features} features, ${r.threads} threads`,
      ms: c.saekit.min, samplesPerSecond: (n / c.saekit.min) * 1000, gflops: (10 * n * dIn * features) / c.saekit.min / 1e6, flops: '10·N·d·k, its matrix products',
      reference: { name: 'numpy float32 (OpenBLAS, same threads)', ms: numpy?.min ?? null, ...(numpy ? {} : { note: 'numpy not available' }) },
      ratio: numpy ? numpy.min / c.saekit.min : null,
      note: `best of ${r.rounds ?? 3} rounds; medians ${c.saekit.median.toFixed(1)} ms${numpy ? ` vs numpy ${numpy.median.toFixed(1)} ms` : ''}` +
        (c.numpy_float64 ? `; numpy float64 best ${c.numpy_float64.min.toFixed(1)} ms` : ''),
    });
  }
  if (raw.toy !== undefined) {
    const t = raw.toy;
    const shape = `${t.batch} x ${t.dim}, ${t.numFeatures} features, ${t.expectedActive} active`;
    const reference = t.rows.find((/** @type {[string, number[]]} */ [label]) => label.startsWith('previous JS generator'));
    for (const [label, [ms]] of /** @type {[string, number[]][]} */ (t.rows)) {
      if (!label.startsWith('native batches()')) continue;
      const plain = label.startsWith('native batches() next()');
      rows.push({
        operation: `Toy data generation, ${label.replace('native ', '')}`, shape, ms, samplesPerSecond: (t.batch / ms) * 1000, gflops: null, flops: null,
        reference: plain ? { name: 'the previous JS generator (1 thread)', ms: reference ? reference[1][0] : null } : null,
        ratio: plain && reference ? reference[1][0] / ms : null,
      });
    }
  }
  return rows;
}

async function main() {
  const log = (/** @type {string} */ line) => console.log(line);
  const withTorch = parts.has('sae') && torchAvailable();
  const machine = machineInfo();
  log(`saekit speed: ${machine.cpu}, ${machine.cores} cores, ${machine.cpuKernels} kernels, Node ${machine.node}`);
  /** @type {{ sae?: Record<string, any>[], fista?: Record<string, any>, rica?: Record<string, any>, toy?: Record<string, any> }} */
  const raw = {};
  if (parts.has('sae')) raw.sae = await saeSpeed(withTorch, log);
  if (parts.has('fista')) raw.fista = await fistaSpeed({ sklearn: !args['no-sklearn'], log });
  // The natural-image fit is the quality benchmark's business; here only the cost's speed.
  if (parts.has('rica')) raw.rica = await ricaSpeed({ iterations: 0, numpy: !args['no-numpy'], log });
  if (parts.has('toy')) raw.toy = await toyGenerationSpeed({ log });
  const speed = { date: new Date().toISOString(), machine, commit: commitInfo(), steps, warmup, rows: speedRows(raw, { torch: withTorch }), raw };
  updateResults(args.out, 'speed', speed);
  const report = await writeReport(args.out);
  log(`wrote ${join(args.out, 'results.json')} (speed part) and ${report}`);
}

await main();
