// @ts-check
// `npm run bench`: the quality benchmark. SAE (untied, tied, TopK), FISTA dictionary learning
// and RICA on toy data with known features (coefficient sweeps, a noise sweep and a correlated
// run at each method's best coefficient), then natural-image patches. Writes results.json
// (its `quality` part; bench:speed writes the `speed` part), one SVG per figure, the filter
// images and report.html under the results directory, and prints a summary whose verdicts on
// the research claims are computed from the numbers.
//
//   npm run bench [-- --quick | --full] [-- --out DIR]
//   node bench/quality.mjs [--quick | --full] [--out DIR]      (after npm run build)
//
// Default grid: about 10 minutes on 2 cores. --quick: a smaller grid and budget (about a
// minute). --full: dictionary sizes 512 and 2048 too, BatchTopK and resampling variants,
// larger budgets (as long as it takes). See bench/quality/grid.mjs.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { makeGrid } from './quality/grid.mjs';
import { findDataDir } from './quality/patches.mjs';
import { writeReport } from './quality/report.mjs';
import { updateResults } from './quality/results.mjs';
import { runQuality } from './quality/suite.mjs';
import { summaryText } from './quality/summary.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    // The CI smoke test's grid: every section and output, seconds of work.
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: join(here, 'results') },
  },
});
if ([args.quick, args.full, args.smoke].filter(Boolean).length > 1) {
  console.error('Give at most one of --quick, --full and --smoke');
  process.exit(2);
}
const grid = makeGrid(args.full ? 'full' : args.quick ? 'quick' : args.smoke ? 'smoke' : 'default');
const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });

const quality = await runQuality(grid, { log: (line) => console.log(line), dataDir: findDataDir(), outDir });
updateResults(outDir, 'quality', quality);
const report = await writeReport(outDir);
console.log(`\nwrote ${join(outDir, 'results.json')}, ${report} and the figures\n`);
console.log(summaryText(quality));
