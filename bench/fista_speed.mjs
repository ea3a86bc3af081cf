// @ts-check
// FISTA encode speed next to scikit-learn's lasso coder on the same problem: microseconds per
// sample for FistaCoder.encode and for sklearn.decomposition.sparse_encode(algorithm='lasso_cd')
// (bench/fista_sklearn.py, Debian's python3-sklearn under /usr/bin/python3, when importable), the
// objectives each reaches row by row (evaluated in float64 by the same numpy code), and the ratio.
//
// The problem, as in the figure: `atoms` random unit atoms of dimension `dim`, standard
// normal rows, and lambda set (by bisection) so that the codes have about `targetL0` non-zeros.
// sparse_encode's alpha is our lambda: its Lasso divides the squared error and alpha alike by
// n_features (see fista_sklearn.py), so both minimise 0.5 ||x - z D||^2 + lambda ||z||_1.
//
//   node bench/fista_speed.mjs [--rows 2000] [--atoms 1024] [--dim 128] [--target-l0 35]
//                              [--repeats 3] [--no-sklearn] [--out bench/results]
//
// Times are medians of wall-clock time and of CPU time (all threads of the process) per sample.
// On a shared machine wall time swings with other load; CPU time much less, so the ratio is
// taken from CPU time at equal cores (one thread against scikit-learn's one core), and the
// wall-clock ratio with all cores is shown next to it.
//
// bench/speed.mjs can call fistaSpeed() directly.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { FistaCoder } from '../dist/index.js';
import { addon } from '../dist/native.js';
import { Random } from '../dist/random.js';

const here = dirname(fileURLToPath(import.meta.url));
const python = '/usr/bin/python3';

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** @param {ArrayLike<number>} values */
function mean(values) {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total / values.length;
}

function sklearnAvailable() {
  if (!existsSync(python)) return false;
  return spawnSync(python, ['-c', 'import sklearn, numpy'], { stdio: 'ignore' }).status === 0;
}

/**
 * @param {number} atoms @param {number} dim @param {number} rows @param {number} seed
 * @returns {{ dictionary: import('../dist/index.js').Matrix, x: import('../dist/index.js').Matrix }}
 */
function problem(atoms, dim, rows, seed) {
  const random = new Random(seed);
  const dictionary = new Float32Array(atoms * dim);
  for (let k = 0; k < atoms; k++) {
    let norm = 0;
    for (let i = 0; i < dim; i++) {
      const v = random.normal();
      dictionary[k * dim + i] = v;
      norm += v * v;
    }
    for (let i = 0; i < dim; i++) dictionary[k * dim + i] /= Math.sqrt(norm);
  }
  const x = new Float32Array(rows * dim);
  for (let i = 0; i < x.length; i++) x[i] = random.normal();
  return { dictionary: { rows: atoms, cols: dim, data: dictionary }, x: { rows, cols: dim, data: x } };
}

/** @param {import('../dist/index.js').Matrix} codes */
function meanL0(codes) {
  let count = 0;
  for (const v of codes.data) if (v !== 0) count++;
  return count / codes.rows;
}

/**
 * The lambda whose codes have `target` non-zeros per row on average (bisection; L0 falls as
 * lambda grows).
 * @param {import('../dist/index.js').Matrix} dictionary @param {import('../dist/index.js').Matrix} x @param {number} target
 */
async function calibrateLambda(dictionary, x, target) {
  let [low, high] = [0, 0];
  const d = dictionary.cols;
  for (let r = 0; r < x.rows; r++) {
    for (let k = 0; k < dictionary.rows; k++) {
      let c = 0;
      for (let i = 0; i < d; i++) c += x.data[r * d + i] * dictionary.data[k * d + i];
      high = Math.max(high, Math.abs(c));
    }
  }
  for (let step = 0; step < 14; step++) {
    const lambda = 0.5 * (low + high);
    const coder = new FistaCoder({ dictionary, lambda, tol: 0, gapTol: 1e-4, maxIter: 10_000 });
    const l0 = meanL0((await coder.encode(x)).codes);
    coder.dispose();
    if (l0 > target) low = lambda;
    else high = lambda;
  }
  return Number((0.5 * (low + high)).toPrecision(4));
}

/**
 * @param {import('../dist/index.js').Matrix} dictionary @param {import('../dist/index.js').Matrix} x
 * @param {number} lambda @param {number} repeats @param {import('../dist/index.js').FistaCoderOptions} settings
 */
async function timeOurs(dictionary, x, lambda, repeats, settings) {
  const coder = new FistaCoder({ ...settings, dictionary, lambda });
  await coder.lipschitz(); // G and L once, as a coder reused across calls would
  const times = [];
  const cpuTimes = [];
  /** @type {import('../dist/index.js').FistaResult | undefined} */
  let result;
  for (let i = 0; i < repeats; i++) {
    const cpuStarted = process.cpuUsage();
    const started = performance.now();
    result = await coder.encode(x);
    times.push(performance.now() - started);
    const cpu = process.cpuUsage(cpuStarted);
    cpuTimes.push((cpu.user + cpu.system) / 1000);
  }
  coder.dispose();
  const r = /** @type {import('../dist/index.js').FistaResult} */ (result);
  return {
    threads: coder.threads,
    usPerSample: (median(times) * 1000) / x.rows,
    cpuUsPerSample: (median(cpuTimes) * 1000) / x.rows,
    meanIterations: mean(r.rowIterations),
    maxIterations: r.iterations,
    converged: r.converged,
    l0: meanL0(r.codes),
    codes: r.codes,
    rowObjectives: r.rowObjectives,
    rowGaps: r.rowGaps,
  };
}

/**
 * @param {string} dir @param {number} atoms @param {number} dim @param {number} lambda @param {number} jobs
 * @param {string[]} codeNames
 */
function runSklearn(dir, atoms, dim, lambda, jobs, codeNames) {
  const run = spawnSync(
    python,
    [join(here, 'fista_sklearn.py'), '--dir', dir, '--atoms', `${atoms}`, '--dim', `${dim}`, '--lambda', `${lambda}`,
      '--jobs', `${jobs}`, '--codes', ...codeNames],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } },
  );
  if (run.status !== 0) throw new Error(`fista_sklearn.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/**
 * @param {{ rows?: number, atoms?: number, dim?: number, targetL0?: number, repeats?: number,
 *   sklearn?: boolean, log?: (line: string) => void }} [options]
 */
export async function fistaSpeed(options = {}) {
  const { rows = 2000, atoms = 1024, dim = 128, targetL0 = 35, repeats = 3, log = console.log } = options;
  const withSklearn = (options.sklearn ?? true) && sklearnAvailable();
  const threads = availableParallelism();
  const { dictionary, x } = problem(atoms, dim, rows, 1);
  const calibration = { rows: Math.min(rows, 300), cols: dim, data: x.data.subarray(0, Math.min(rows, 300) * dim) };
  const lambda = await calibrateLambda(dictionary, calibration, targetL0);
  log(`FISTA encode: ${atoms} unit atoms of dimension ${dim}, ${rows} standard normal rows, lambda ${lambda} (L0 ~${targetL0}); load average ${loadavg()[0].toFixed(2)}`);

  const runs = {
    gap: await timeOurs(dictionary, x, lambda, repeats, { dictionary, lambda, tol: 0, gapTol: 1e-4, maxIter: 10_000 }),
    gapOneThread: await timeOurs(dictionary, x, lambda, repeats, { dictionary, lambda, tol: 0, gapTol: 1e-4, maxIter: 10_000, threads: 1 }),
    kkt: await timeOurs(dictionary, x, lambda, repeats, { dictionary, lambda, maxIter: 10_000 }),
    tight: await timeOurs(dictionary, x, lambda, 1, { dictionary, lambda, tol: 1e-7, maxIter: 20_000 }),
  };
  const describe = (/** @type {string} */ name, /** @type {typeof runs.gap} */ r) =>
    `  saekit ${name.padEnd(28)} ${r.usPerSample.toFixed(1).padStart(7)} us/sample (CPU ${r.cpuUsPerSample.toFixed(1)}) on ${r.threads} thread${r.threads > 1 ? 's' : ''}, ` +
    `${r.meanIterations.toFixed(1)} iterations per row (max ${r.maxIterations}), L0 ${r.l0.toFixed(1)}, converged ${r.converged}`;
  log(describe('gapTol 1e-4 (tol 0)', runs.gap));
  log(describe('gapTol 1e-4 (tol 0)', runs.gapOneThread));
  log(describe('tol 1e-6 (KKT, the default)', runs.kkt));

  /** @type {Record<string, unknown>} */
  const record = {
    atoms, dim, rows, lambda, threads, loadAverage: loadavg()[0],
    ours: Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, {
      threads: r.threads, usPerSample: r.usPerSample, cpuUsPerSample: r.cpuUsPerSample, meanIterations: r.meanIterations, maxIterations: r.maxIterations,
      converged: r.converged, l0: r.l0,
    }])),
  };
  if (!withSklearn) {
    log('  scikit-learn not found (/usr/bin/python3 with sklearn): no lasso_cd reference');
    return record;
  }

  const dir = mkdtempSync(join(tmpdir(), 'saekit-fista-'));
  try {
    writeFileSync(join(dir, 'dictionary.f32'), dictionary.data);
    writeFileSync(join(dir, 'x.f32'), x.data);
    const names = /** @type {(keyof typeof runs)[]} */ (['gap', 'kkt', 'tight']);
    for (const name of names) writeFileSync(join(dir, `${name}.f32`), runs[name].codes.data);
    const sklearnRuns = [runSklearn(dir, atoms, dim, lambda, 1, names)];
    if (threads > 1) sklearnRuns.push(runSklearn(dir, atoms, dim, lambda, threads, []));
    const sk = sklearnRuns[0];
    // Per row, the best objective any solver reached; the tight solve's duality gap shows how
    // close that is to the optimum.
    const best = sk.objective.map((/** @type {number} */ v, /** @type {number} */ r) =>
      Math.min(v, ...names.map((n) => sk.codes[n][r])));
    const excess = (/** @type {number[]} */ values) => {
      const relative = values.map((v, r) => (v - best[r]) / best[r]);
      return { mean: mean(relative), max: Math.max(...relative) };
    };
    const tightGap = Math.max(...Array.from(runs.tight.rowGaps, (g, r) => g / runs.tight.rowObjectives[r]));
    const objectives = {
      sklearn: excess(sk.objective),
      gap: excess(sk.codes.gap),
      kkt: excess(sk.codes.kkt),
      tight: excess(sk.codes.tight),
    };
    const ratio = sk.usPerSample / runs.gap.usPerSample;
    const ratioSameCores = sk.cpuUsPerSample / runs.gapOneThread.cpuUsPerSample;
    for (const s of sklearnRuns) {
      log(`  scikit-learn ${sk.sklearn} lasso_cd (n_jobs ${s.jobs})`.padEnd(37) + `${s.usPerSample.toFixed(1).padStart(7)} us/sample` +
        (s.cpuUsPerSample !== null ? ` (CPU ${s.cpuUsPerSample.toFixed(1)})` : '') + `, L0 ${s.l0.toFixed(1)}`);
    }
    log(`  relative excess objective per row over the best known (mean / max): ` +
      Object.entries(objectives).map(([k, v]) => `${k} ${v.mean.toExponential(1)} / ${v.max.toExponential(1)}`).join(', ') +
      `; tight solve's relative duality gap <= ${tightGap.toExponential(1)}`);
    log(`  scikit-learn's codes under our lambda: median relative KKT violation ${median(sk.kkt).toExponential(1)} (same objective: the alpha conversion holds)`);
    // CPU time per sample is the work done, whatever the thread count.
    const ratioDefaultTol = sk.cpuUsPerSample / runs.kkt.cpuUsPerSample;
    log(`  ratio lasso_cd / FISTA gapTol 1e-4: ${ratioSameCores.toFixed(2)}x in CPU time per sample on one core each; ` +
      `${ratio.toFixed(2)}x in wall time, FISTA on ${threads} threads against lasso_cd on 1`);
    log(`  ratio lasso_cd / FISTA tol 1e-6 (an objective closer to the optimum than lasso_cd's): ${ratioDefaultTol.toFixed(2)}x in CPU time per sample, ` +
      `${(sk.usPerSample / runs.kkt.usPerSample).toFixed(2)}x in wall time on ${threads} threads`);
    Object.assign(record, {
      sklearn: sklearnRuns.map((s) => ({ version: s.sklearn, jobs: s.jobs, usPerSample: s.usPerSample, cpuUsPerSample: s.cpuUsPerSample, l0: s.l0, medianKkt: median(s.kkt) })),
      objectives,
      tightRelativeGap: tightGap,
      ratio,
      ratioSameCores,
      ratioDefaultTol,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return record;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      rows: { type: 'string', default: '2000' },
      atoms: { type: 'string', default: '1024' },
      dim: { type: 'string', default: '128' },
      'target-l0': { type: 'string', default: '35' },
      repeats: { type: 'string', default: '3' },
      'no-sklearn': { type: 'boolean', default: false },
      out: { type: 'string', default: join(here, 'results') },
    },
  });
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, kernels: addon.cpuKernels() };
  console.log(`saekit FISTA speed: ${machine.cpu}, ${machine.cores} cores, ${machine.kernels} kernels, Node ${machine.node}`);
  const result = await fistaSpeed({
    rows: Number(args.rows),
    atoms: Number(args.atoms),
    dim: Number(args.dim),
    targetL0: Number(args['target-l0']),
    repeats: Number(args.repeats),
    sklearn: !args['no-sklearn'],
  });
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, 'fista_speed.json');
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, ...result }, null, 2));
  console.log(`wrote ${file}`);
}
