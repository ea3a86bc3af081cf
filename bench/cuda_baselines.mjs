// @ts-check
// `node bench/cuda_baselines.mjs`: RICA's cost and gradient (one call from scratch, and per
// evaluation of an L-BFGS fit, where x stays on the GPU between evaluations), FistaCoder's encode and a
// FistaDictionary learning step (from zero, and warm-started from the rows' last codes) on the
// GPU next to the same calls on the CPU of the same machine
// (all its cores), in one run. Each time is the median of --repeats calls from the call to the
// resolved result, so it includes copying the inputs to the GPU and the results back (and, for
// the learning step, the host's update of the atoms).
//
//   node bench/cuda_baselines.mjs [--device cuda|cuda:N] [--repeats N] [--only rica,fista,learning]
//                                 [--out bench/results]
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { FistaCoder, FistaDictionary, Rica } from '../dist/index.js';
import { Random } from '../dist/random.js';
import { cudaDevice } from './cuda_device.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    repeats: { type: 'string', default: '5' },
    only: { type: 'string', default: 'rica,fista,learning' },
    out: { type: 'string', default: join(here, 'results') },
  },
});
const cuda = cudaDevice(values.device);
if ('reason' in cuda) {
  console.log(`${cuda.reason}: nothing to compare`);
  process.exit(0);
}
// Results are keyed 'cpu' and 'cuda' whichever GPU runs them.
const devices = /** @type {const} */ ([['cpu', 'cpu'], ['cuda', cuda.device]]);

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** @param {number} rows @param {number} cols @param {number} seed */
function gaussian(rows, cols, seed) {
  const random = new Random(seed);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = random.normal();
  return { rows, cols, data };
}

/** @param {() => Promise<unknown>} call @param {number} repeats */
async function timeCalls(call, repeats) {
  await call();  // warm-up: allocations, module loading
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
  }
  return median(times);
}

/** @param {{ n: number, d: number, k: number }} shape @param {number} repeats */
async function rica(shape, repeats) {
  const x = gaussian(shape.n, shape.d, 1);
  /** @type {Record<string, number>} */
  const result = {};
  for (const [key, device] of devices) {
    const model = new Rica({ dIn: shape.d, dHidden: shape.k, lambda: 0.1, seed: 1, device });
    result[key] = await timeCalls(() => model.objective(x), repeats);
    // Per evaluation of an L-BFGS fit of 2 x repeats iterations (the optimizer's own work in
    // JavaScript included), less what a fit does once (copying and checking x).
    const fitTime = async (/** @type {number} */ steps) => {
      const started = performance.now();
      const records = await model.fit(x, { steps });
      return { ms: performance.now() - started, evaluations: records.at(-1)?.evaluations ?? 0 };
    };
    const short = await fitTime(repeats);
    const long = await fitTime(3 * repeats);
    result[`${key}Fit`] = (long.ms - short.ms) / Math.max(long.evaluations - short.evaluations, 1);
    model.dispose();
  }
  return result;
}

/** @param {{ rows: number, d: number, m: number, lambda: number }} shape @param {number} repeats */
async function fista(shape, repeats) {
  const dictionary = gaussian(shape.m, shape.d, 2);
  for (let j = 0; j < shape.m; j++) {
    const row = dictionary.data.subarray(j * shape.d, (j + 1) * shape.d);
    const norm = Math.hypot(...row);
    for (let i = 0; i < shape.d; i++) row[i] /= norm;
  }
  const x = gaussian(shape.rows, shape.d, 3);
  /** @type {Record<string, number>} */
  const result = { l0: 0 };
  for (const [key, device] of devices) {
    const coder = new FistaCoder({ dictionary, lambda: shape.lambda, device });
    result[key] = await timeCalls(async () => {
      const r = await coder.encode(x);
      if (device === 'cpu') {
        let nnz = 0;
        for (let i = 0; i < r.codes.data.length; i++) nnz += r.codes.data[i] !== 0 ? 1 : 0;
        result.l0 = nnz / shape.rows;
      }
    }, repeats);
    coder.dispose();
  }
  return result;
}

/** @param {{ rows: number, d: number, m: number, lambda: number }} shape @param {number} repeats */
async function learning(shape, repeats) {
  const x = gaussian(shape.rows, shape.d, 4);
  /** @type {Record<string, number>} */
  const result = {};
  for (const [key, device] of devices) {
    const model = new FistaDictionary({ dIn: shape.d, dHidden: shape.m, lambda: shape.lambda, seed: 1, device });
    // One step per call on the same batch, given as an iterable: no row ids, so every solve
    // starts from zero.
    result[key] = await timeCalls(() => model.fit([x], { steps: 1 }), repeats);
    // The same batch as a Matrix, two epochs of one step each: the second starts every row from
    // its codes of the first. Its time is the two-epoch call's less the one-epoch call's.
    let iterations = [0, 0];
    const twoEpochs = await timeCalls(async () => {
      const records = await model.fit(x, { epochs: 2, batchSize: shape.rows });
      iterations = records.map((r) => r.iterations);
    }, repeats);
    const oneEpoch = await timeCalls(() => model.fit(x, { epochs: 1, batchSize: shape.rows }), repeats);
    result[`${key}Warm`] = twoEpochs - oneEpoch;
    result[`${key}Iterations`] = iterations[0];
    result[`${key}WarmIterations`] = iterations[1];
    model.dispose();
  }
  return result;
}

const repeats = Number(values.repeats);
const benchmarks = new Set(values.only.split(','));
for (const name of benchmarks) {
  if (!['rica', 'fista', 'learning'].includes(name)) {
    console.log(`--only takes rica, fista and learning, separated by commas, but received '${name}'`);
    process.exit(1);
  }
}
console.log(`RICA, FistaCoder and FistaDictionary, CPU (${cpus()[0]?.model}, ${availableParallelism()} threads) vs ${cuda.device} (${cuda.gpu})`);
const rows = [];
for (const shape of benchmarks.has('rica') ? [{ n: 30_000, d: 144, k: 100 }, { n: 16_384, d: 768, k: 4096 }] : []) {
  const t = await rica(shape, repeats);
  rows.push({ what: 'rica cost+gradient', ...shape, cpuMs: t.cpu, cudaMs: t.cuda });
  rows.push({ what: 'rica L-BFGS evaluation', ...shape, cpuMs: t.cpuFit, cudaMs: t.cudaFit });
  console.log(`RICA cost+gradient N ${shape.n} d ${shape.d} k ${shape.k}: CPU ${t.cpu.toFixed(1)} ms, CUDA ${t.cuda.toFixed(1)} ms: ${(t.cpu / t.cuda).toFixed(1)}x`);
  console.log(`  per evaluation of an L-BFGS fit: CPU ${t.cpuFit.toFixed(1)} ms, CUDA ${t.cudaFit.toFixed(1)} ms: ${(t.cpuFit / t.cudaFit).toFixed(1)}x`);
}
// Larger dictionaries take the CPU minutes per call (8192 atoms, d 768: over 200 s on 16 cores).
for (const shape of benchmarks.has('fista') ? [{ rows: 4096, d: 128, m: 1024, lambda: 0.1 }] : []) {
  const t = await fista(shape, repeats);
  rows.push({ what: 'fista encode', ...shape, l0: t.l0, cpuMs: t.cpu, cudaMs: t.cuda });
  console.log(`FistaCoder.encode ${shape.rows} rows, ${shape.m} atoms, d ${shape.d}, L0 ${t.l0.toFixed(1)}: CPU ${t.cpu.toFixed(1)} ms, CUDA ${t.cuda.toFixed(1)} ms: ${(t.cpu / t.cuda).toFixed(1)}x`);
}
for (const shape of benchmarks.has('learning') ? [{ rows: 1024, d: 128, m: 1024, lambda: 0.1 }] : []) {
  const t = await learning(shape, repeats);
  rows.push({ what: 'fista dictionary step', ...shape, cpuMs: t.cpu, cudaMs: t.cuda });
  rows.push({ what: 'fista dictionary step, warm starts', ...shape, cpuMs: t.cpuWarm, cudaMs: t.cudaWarm });
  console.log(`FistaDictionary step of ${shape.rows} rows, ${shape.m} atoms, d ${shape.d}: CPU ${t.cpu.toFixed(1)} ms, CUDA ${t.cuda.toFixed(1)} ms: ${(t.cpu / t.cuda).toFixed(1)}x`);
  console.log(`  warm-started from the rows' last codes: CPU ${t.cpuWarm.toFixed(1)} ms, CUDA ${t.cudaWarm.toFixed(1)} ms: ${(t.cpuWarm / t.cudaWarm).toFixed(1)}x` +
    ` (iterations per row, mean cold -> warm: CPU ${t.cpuIterations.toFixed(0)} -> ${t.cpuWarmIterations.toFixed(0)}, CUDA ${t.cudaIterations.toFixed(0)} -> ${t.cudaWarmIterations.toFixed(0)})`);
}
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'cuda_baselines.json'), JSON.stringify({ gpu: cuda.gpu, cpu: cpus()[0]?.model, threads: availableParallelism(), date: new Date().toISOString(), rows }, null, 2));
