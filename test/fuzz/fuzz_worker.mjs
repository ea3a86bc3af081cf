// @ts-check
// The public API under fire: wrong types, wrong shapes, empty and huge sizes, NaN and
// infinities, negative and fractional integers, disposed objects, concurrent calls,
// detached and shared buffers, and views with offsets. Every call must succeed or throw (or
// reject with) an Error with a message. Run in a child process by test/fuzz.test.ts, which
// reports a crash together with the last input this process announced.
//
//   node test/fuzz/fuzz_worker.mjs <seed> <calls> <log file>
//
// FUZZ_DEVICES (e.g. "cuda,cuda:1") puts the models that pass validation on those devices
// instead of the CPU, so that the same calls reach the CUDA backends.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as saekit from '../../dist/index.js';

const [seedText, callsText, logPath] = process.argv.slice(2);
const seed = Number(seedText);
const target = Number(callsText);
const work = mkdtempSync(join(tmpdir(), 'saekit-fuzz-'));
const devices = process.env.FUZZ_DEVICES ? process.env.FUZZ_DEVICES.split(',') : ['cpu'];

// xorshift32: the fuzzer's own draws, independent of the library's.
let state = (seed >>> 0) || 1;
const next = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
};
const pick = (/** @type {any[]} */ items) => items[Math.floor(next() * items.length)];
const chance = (/** @type {number} */ p) => next() < p;
// A device for a model: one of those asked for, now and then one that is not valid or not here.
const device = () => (chance(0.9) ? pick(devices) : pick(['cpu', 'cuda', 'cuda:7', 'tpu', 'cuda:01']));

function detached(/** @type {number} */ n) {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}
function shared(/** @type {number} */ n) {
  return new Float32Array(new SharedArrayBuffer(4 * n)).fill(0.5);
}
function offsetView(/** @type {number} */ n) {
  const base = new Float32Array(n + 3).map((_, i) => Math.sin(i));
  return base.subarray(3);
}
function floats(/** @type {number} */ n) {
  const kind = pick(['plain', 'plain', 'plain', 'nan', 'inf', 'shared', 'offset', 'detached', 'f64', 'array', 'huge']);
  switch (kind) {
    case 'nan':
      return new Float32Array(n).map((_, i) => (i === n >> 1 ? NaN : 0.3));
    case 'inf':
      return new Float32Array(n).map((_, i) => (i === 0 ? -Infinity : 0.1));
    case 'shared':
      return shared(n);
    case 'offset':
      return offsetView(n);
    case 'detached':
      return detached(n);
    case 'f64':
      return new Float64Array(n);
    case 'array':
      return Array.from({ length: n }, () => 1);
    case 'huge':
      return new Float32Array(n).fill(3e38);
    default:
      return new Float32Array(n).map(() => next() * 2 - 1);
  }
}
// No large valid counts here: a fit of 2^31 steps is legitimate, just too long for a fuzzer.
const weird = [undefined, null, NaN, Infinity, -Infinity, -1, 0, -0, 0.5, 1.5, 2 ** 53, 1e300, '', '3', 'abc', true, false, {}, [], [1, 2], () => 1, 10n, Symbol('s'), new Date(0), new Float32Array(2), new Int32Array(2)];
const anyValue = () => (chance(0.5) ? pick(weird) : pick([1, 2, 3, 4, 8, 16]));
const dim = () => (chance(0.85) ? pick([1, 2, 3, 4, 8]) : chance(0.1) ? pick([2 ** 31, 2 ** 20]) : anyValue());

function matrix(/** @type {any} */ rows, /** @type {any} */ cols) {
  if (chance(0.05)) return anyValue();
  const r = chance(0.85) ? rows : anyValue();
  const c = chance(0.85) ? cols : anyValue();
  const n = typeof r === "number" && typeof c === "number" && Number.isFinite(r * c) && r * c >= 0 && r * c < 1e5 ? Math.floor(r * c) : 4;
  const data = chance(0.9) ? floats(chance(0.9) ? n : Math.max(0, n + pick([-1, 1, 7]))) : anyValue();
  return { rows: r, cols: c, data };
}
function sparse(/** @type {number} */ rows, /** @type {number} */ cols) {
  const nnz = pick([0, 1, 3]);
  return {
    rows,
    cols: chance(0.8) ? cols : anyValue(),
    indptr: chance(0.8) ? Int32Array.from({ length: rows + 1 }, (_, i) => Math.min(i, nnz)) : pick([new Int32Array([5, 1]), [0, 1], anyValue()]),
    indices: chance(0.8) ? Int32Array.from({ length: nnz }, () => pick([0, 1, cols - 1, cols, -1])) : anyValue(),
    values: chance(0.8) ? floats(nnz) : anyValue(),
  };
}
function optionsObject(/** @type {Record<string, () => any>} */ fields) {
  if (chance(0.05)) return anyValue();
  /** @type {Record<string, any>} */
  const o = {};
  for (const [key, make] of Object.entries(fields)) if (chance(0.9)) o[key] = chance(0.85) ? make() : anyValue();
  if (chance(0.05)) o[pick(['bogus', 'lR', 'seeed'])] = 1;
  return o;
}

let calls = 0;
let succeeded = 0;
const violations = /** @type {string[]} */ ([]);
/** @type {Set<string>} */
const messages = new Set();

function announce(/** @type {string} */ what) {
  appendFileSync(logPath, `${what}\n`);
}
function describe(/** @type {any} */ value) {
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : ArrayBuffer.isView(v) ? `${v.constructor.name}(${v.length})` : typeof v === 'function' ? 'fn' : typeof v === 'symbol' ? 'symbol' : v)).slice(0, 300);
  } catch {
    return String(value).slice(0, 300);
  }
}
function judge(/** @type {string} */ what, /** @type {unknown} */ error) {
  if (!(error instanceof Error) || typeof error.message !== 'string' || error.message.length === 0) {
    violations.push(`${what}: threw ${describe(error)}`);
  } else {
    messages.add(`${error.constructor.name}: ${error.message.slice(0, 80)}`);
  }
}
/** Runs one call; a returned promise is awaited (with a time limit). */
async function call(/** @type {string} */ what, /** @type {() => any} */ fn) {
  calls++;
  announce(what);
  try {
    const result = fn();
    if (result && typeof result.then === 'function') {
      let timer;
      const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timeout in ${what}`)), 30_000)));
      try {
        await Promise.race([result, timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    succeeded++;
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('timeout in')) violations.push(`${what}: did not settle in 30 s`);
    else judge(what, error);
  }
}

/** @type {any[]} */
const models = [];
function someModel() {
  return models.length > 0 && chance(0.9) ? pick(models) : undefined;
}

async function round() {
  const kind = pick(['sae', 'sae', 'sae', 'saeCall', 'saeCall', 'saeCall', 'saeCall', 'toy', 'metrics', 'fista', 'rica', 'files', 'misc', 'concurrent']);
  if (kind === 'sae') {
    // Half the time a valid model (so that the methods get exercised on live objects).
    const valid = { dIn: pick([1, 3, 8]), dHidden: pick([1, 4, 16]), l1Coeff: 0.1, ...(chance(0.3) ? { activation: 'topk', k: 1 } : {}), ...(chance(0.3) ? { tied: true } : {}), seed: 0, threads: pick([1, 2]), device: pick(devices) };
    const options = chance(0.5) ? valid : optionsObject({
      dIn: dim, dHidden: dim, l1Coeff: () => pick([0, 0.1, -1]), lr: () => pick([1e-3, 0, 1e9]), tied: () => chance(0.5),
      activation: () => pick(['relu', 'topk', 'batchtopk', 'gelu']), k: () => pick([1, 2, 0, 100]), seed: () => pick([0, 1, -3, 2.5]),
      threads: () => pick([1, 2, 0, 5000]), device, initDecoderBias: () => pick(['zeros', 'mean', 'median']),
      auxk: () => pick([{ k: 1, deadWindow: 5 }, { k: -1 }, 3]), inputScale: () => pick([1, 2, 0, -1]), applyBDecToInput: () => chance(0.5),
    });
    await call(`new SparseAutoencoder(${describe(options)})`, () => {
      const sae = new saekit.SparseAutoencoder(/** @type {any} */ (options));
      models.push(sae);
      if (models.length > 6) models.shift()?.dispose();
    });
  } else if (kind === 'saeCall') {
    const sae = someModel();
    if (sae === undefined) return;
    if (chance(0.03)) sae.dispose();
    const d = sae.dIn;
    const m = sae.dHidden;
    const rows = pick([1, 2, 5, 0]);
    const method = pick(['trainStep', 'fit', 'fitMatrix', 'encode', 'encodeSparse', 'decode', 'decodeSparse', 'reconstruct', 'steer', 'dictionary', 'encoderWeights', 'encoderBias', 'decoderBias', 'deadFeatures', 'save']);
    const x = matrix(rows, d);
    const what = `sae(${d},${m}).${method}(${describe(x)})`;
    switch (method) {
      case 'trainStep':
        return call(what, () => sae.trainStep(x));
      case 'fit':
        return call(what, () => sae.fit(chance(0.5) ? [x, matrix(2, d)] : anyValue(), optionsObject({ steps: () => pick([1, 2, 0]), resample: () => pick([{ every: 1, window: 1 }, { every: 0 }]), lrWarmupSteps: () => pick([0, 1, -1]) })));
      case 'fitMatrix':
        return call(what, () => sae.fit(matrix(6, d), optionsObject({ epochs: () => pick([1, 0]), batchSize: () => pick([2, 0, 1.5]), signal: () => pick([AbortSignal.abort(), new AbortController().signal, {}]) })));
      case 'encode':
        return call(what, () => sae.encode(x, chance(0.2) ? anyValue() : undefined));
      case 'encodeSparse':
        return call(what, () => sae.encode(x, { format: 'sparse' }));
      case 'decode':
        return call(what, () => sae.decode(matrix(rows, m)));
      case 'decodeSparse':
        return call(`${what} sparse ${describe(sparse(rows, m))}`, () => sae.decode(sparse(rows, m)));
      case 'reconstruct':
        return call(what, () => sae.reconstruct(x));
      case 'steer':
        return call(what, () => sae.steer(x, chance(0.7) ? [{ feature: pick([0, m - 1, m, -1, 0.5]), [pick(['scale', 'set', 'add', 'mul'])]: pick([0, 1, NaN]) }] : anyValue()));
      case 'deadFeatures':
        return call(what, () => sae.deadFeatures(optionsObject({ window: () => pick([1, 0, 1e9]) })));
      case 'save':
        return call(what, () => sae.save(chance(0.8) ? join(work, `m${calls % 5}`) : anyValue()));
      default:
        return call(what, () => sae[method]());
    }
  } else if (kind === 'toy') {
    const options = optionsObject({ dim: dim, numFeatures: dim, expectedActive: () => pick([0, 1, 2, 100]), decay: () => pick([1, 0.9, 0, 2]), noise: () => pick([0, 0.1, -1]), magnitude: () => pick(['uniform', 'exponential', 'gaussian']), correlated: () => pick([true, false, { rank: 2, strength: 0.5 }, { rank: -1 }]), seed: () => pick([0, 1]) });
    await call(`new ToyDataset(${describe(options)}).sample`, () => {
      const toy = new saekit.ToyDataset(/** @type {any} */ (options));
      toy.sample(pick([0, 3, -1, 1.5]));
    });
  } else if (kind === 'metrics') {
    const name = pick(['mmcs', 'mcc', 'recoveredFraction', 'fvu', 'mse', 'l0', 'featureDensity', 'deadFraction', 'cosineSimilarity', 'lossRecovered', 'klDivergence']);
    const a = matrix(pick([1, 3]), pick([2, 4]));
    const b = chance(0.5) ? matrix(pick([1, 3]), pick([2, 4])) : sparse(3, 4);
    await call(`metrics.${name}(${describe(a)}, ${describe(b)})`, () =>
      name === 'lossRecovered' ? saekit.metrics.lossRecovered(/** @type {any} */ (optionsObject({ clean: () => 1, zeroAblated: () => pick([2, 1]), spliced: () => 1.5 }))) : /** @type {any} */ (saekit.metrics)[name](a, b, chance(0.2) ? anyValue() : undefined),
    );
  } else if (kind === 'fista') {
    const options = optionsObject({ dictionary: () => matrix(pick([2, 3]), pick([2, 4])), lambda: () => pick([0.1, -1, 0]), maxIter: () => pick([5, 0, -1]), tol: () => pick([1e-3, -1]), nonNegative: () => chance(0.5), threads: () => pick([1, 2]), device });
    await call(`FistaCoder(${describe(options)}).encode`, async () => {
      const coder = new saekit.FistaCoder(/** @type {any} */ (options));
      try {
        await coder.encode(matrix(2, /** @type {any} */ (options ?? {}).dictionary?.cols), chance(0.2) ? anyValue() : undefined);
      } finally {
        coder.dispose();
      }
    });
    const dict = optionsObject({ dIn: dim, dHidden: dim, lambda: () => pick([0.1, -1]), seed: () => 0, maxIter: () => 5, device });
    await call(`FistaDictionary(${describe(dict)}).fit`, async () => {
      const fd = new saekit.FistaDictionary(/** @type {any} */ (dict));
      try {
        await fd.fit(matrix(4, /** @type {any} */ (dict ?? {}).dIn), optionsObject({ steps: () => pick([1, 0]), batchSize: () => 2 }));
      } finally {
        fd.dispose();
      }
    });
  } else if (kind === 'rica') {
    const options = optionsObject({ dIn: dim, dHidden: dim, lambda: () => pick([0.1, -1]), epsilon: () => pick([1e-2, 0]), optimizer: () => pick(['lbfgs', 'adam', 'sgd']), seed: () => 0, device });
    await call(`Rica(${describe(options)}).fit`, async () => {
      const rica = new saekit.Rica(/** @type {any} */ (options));
      try {
        await rica.fit(chance(0.7) ? matrix(6, /** @type {any} */ (options ?? {}).dIn) : [matrix(2, 2)], optionsObject({ steps: () => pick([1, 2, 0]) }));
        await rica.encode(matrix(2, /** @type {any} */ (options ?? {}).dIn));
      } finally {
        rica.dispose();
      }
    });
  } else if (kind === 'files') {
    const path = join(work, pick(['a.npy', 'b.npy', 'missing.npy']));
    if (chance(0.3)) writeFileSync(join(work, 'b.npy'), pick([Buffer.from('garbage'), Buffer.alloc(0), Buffer.from('\x93NUMPY\x01\x00\x10\x00{}')]));
    await call(`saveNpy/loadNpy ${path}`, () => (chance(0.5) ? saekit.saveNpy(path, matrix(2, 3)) : saekit.loadNpy(chance(0.9) ? path : anyValue())));
    await call(`npyBatches ${path}`, async () => {
      for await (const _ of saekit.npyBatches(chance(0.9) ? path : anyValue(), optionsObject({ batchSize: () => pick([1, 0]), bufferRows: () => pick([1, 4, 0]) }))) void _;
    });
    await call(`SparseAutoencoder.load ${path}`, () => saekit.SparseAutoencoder.load(chance(0.8) ? join(work, `m${calls % 5}`) : anyValue()).then((m) => m.dispose()));
  } else if (kind === 'misc') {
    await call('backends()', () => saekit.backends());
    await call('evaluate', () => saekit.evaluate(someModel() ?? anyValue(), matrix(2, 4)));
    await call('patches.extractPatches', () => saekit.patches.extractPatches(/** @type {any} */ (matrix(8, 8)), pick([2, 0, 9]), pick([3, -1])));
  } else {
    const sae = someModel();
    if (sae === undefined) return;
    const x = matrix(3, sae.dIn);
    await call(`concurrent calls on sae(${sae.dIn},${sae.dHidden})`, () => {
      const all = [sae.trainStep(x), sae.encode(x), sae.fit([x, x], { steps: 2 }), sae.reconstruct(x)];
      if (chance(0.3)) sae.dispose();
      try {
        sae.dictionary();
      } catch (error) {
        judge('dictionary during work', error);
      }
      return Promise.allSettled(all).then((results) => {
        for (const r of results) if (r.status === 'rejected') judge('concurrent call', r.reason);
      });
    });
  }
}

const started = Date.now();
while (calls < target) await round();
for (const m of models) m.dispose();
rmSync(work, { recursive: true, force: true });
if (process.env.FUZZ_MESSAGES) writeFileSync(process.env.FUZZ_MESSAGES, [...messages].sort().join('\n'));
process.stdout.write(`${JSON.stringify({ calls, succeeded, seconds: (Date.now() - started) / 1000, violations, distinctMessages: messages.size })}\n`);
