// @ts-check
// What an L-BFGS fit of RICA spends beyond the cost and gradient, on the CPU: one
// model.objective(x) call against one evaluation inside fit (as bench/cuda_baselines.mjs
// measures it: (fit of 3 x repeats steps - fit of repeats steps) / evaluations between them),
// and lbfgs() alone on a cheap separable objective with as many parameters (d x k), its own
// milliseconds per iteration with the objective's time taken out; and the longest the fit
// kept the main thread from its event loop.
//
//   npm run build && node bench/lbfgs_overhead.mjs [--n 512] [--d 768] [--k 4096] [--repeats 5]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Rica, lbfgs } from '../dist/index.js';
import { Random } from '../dist/random.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '512' },
    d: { type: 'string', default: '768' },
    k: { type: 'string', default: '4096' },
    repeats: { type: 'string', default: '5' },
  },
});
const [n, d, k, repeats] = [values.n, values.d, values.k, values.repeats].map(Number);

/** @param {number[]} v */
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const random = new Random(1);
const x = { rows: n, cols: d, data: new Float32Array(n * d) };
for (let i = 0; i < x.data.length; i++) x.data[i] = random.normal();
const model = new Rica({ dIn: d, dHidden: k, lambda: 0.1, seed: 1, device: 'cpu' });
await model.objective(x);
const times = [];
for (let i = 0; i < repeats; i++) {
  const started = performance.now();
  await model.objective(x);
  times.push(performance.now() - started);
}
/** @param {number} steps */
const fitTime = async (steps) => {
  const started = performance.now();
  const records = await model.fit(x, { steps });
  return { ms: performance.now() - started, evaluations: records.at(-1)?.evaluations ?? 0 };
};
const short = await fitTime(repeats);
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const long = await fitTime(3 * repeats);
loopDelay.disable();
const call = median(times);
const perEvaluation = (long.ms - short.ms) / Math.max(long.evaluations - short.evaluations, 1);
console.log(
  `RICA N ${n} d ${d} k ${k} (${d * k} parameters), CPU: objective call ${call.toFixed(1)} ms, ` +
    `per fit evaluation ${perEvaluation.toFixed(1)} ms, beyond the call ${(perEvaluation - call).toFixed(1)} ms; ` +
    `the main thread blocked for at most ${(loopDelay.max / 1e6).toFixed(0)} ms at a time`,
);
model.dispose();

const size = d * k;
const c = new Float64Array(size);
for (let i = 0; i < size; i++) c[i] = 1 + (i % 1000) / 10;
let objectiveMs = 0;
/** @param {Float64Array} p */
const objective = (p) => {
  const started = performance.now();
  const g = new Float64Array(size);
  let f = 0;
  for (let i = 0; i < size; i++) {
    const v = p[i] - 1;
    g[i] = c[i] * v + 0.1 * Math.sin(p[i]);
    f += 0.5 * c[i] * v * v - 0.1 * Math.cos(p[i]);
  }
  objectiveMs += performance.now() - started;
  return { f, g };
};
const iterations = 5 * repeats;
const started = performance.now();
const result = await lbfgs(objective, new Float64Array(size), { maxIterations: iterations, progressTolerance: 0, gradientTolerance: 0 });
const own = performance.now() - started - objectiveMs;
console.log(
  `lbfgs alone, ${size} parameters, memory 10: ${result.iterations} iterations, ${result.evaluations} evaluations, ` +
    `${(own / result.iterations).toFixed(1)} ms per iteration beyond the objective`,
);
