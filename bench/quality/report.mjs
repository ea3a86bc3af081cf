// @ts-check
// report.html and the figures' SVG files, made from results.json alone, so that either
// `npm run bench` or `npm run bench:speed` can (re)write them with whatever parts exist. The
// page embeds the SVGs and the filter PNGs, so it can be read on its own.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { minimumMatchedL0 } from './claims.mjs';
import { qualityFigures, renderSvg } from './figures.mjs';
import { methods } from './methods.mjs';
import { readResults } from './results.mjs';
import { bestRuns, matchedL0Lines } from './summary.mjs';

/**
 * @typedef {import('./suite.mjs').QualityRecord} QualityRecord
 * @typedef {import('./results.mjs').SpeedRow} SpeedRow
 */

/** @param {unknown} value */
function escape(value) {
  return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** @param {number | null | undefined} v @param {number} [digits] */
const num = (v, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** @param {string[]} headers @param {(string | number)[][]} rows @param {boolean[]} [raw] cells already HTML */
function table(headers, rows, raw = []) {
  const head = `<tr>${headers.map((h) => `<th>${escape(h)}</th>`).join('')}</tr>`;
  const body = rows.map((row) => `<tr>${row.map((cell, i) => `<td>${raw[i] ? cell : escape(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** @param {import('./results.mjs').Machine} m @param {import('./results.mjs').Commit} c */
function provenance(m, c) {
  const commit = c.hash === null ? 'unknown commit' : `commit ${c.hash.slice(0, 12)}${c.dirty ? ' (with uncommitted changes)' : ''}`;
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}, backend ${m.backend} (${m.cpuKernels} kernels); ${commit}`;
}

/** @param {Record<string, any>} budgets */
function budgetRows(budgets) {
  return [
    ['SAE (untied, tied, TopK, BatchTopK)', `${budgets.sae.samples.toLocaleString('en-US')} fresh samples`, `Adam, lr ${budgets.sae.lr}, batch ${budgets.sae.batchSize}, ${Math.round(budgets.sae.samples / budgets.sae.batchSize)} steps`],
    ['FISTA dictionary learning', `${budgets.fista.samples.toLocaleString('en-US')} fresh samples`, `online block coordinate descent on FISTA codes (max 200 iterations, KKT tol 1e-6), batch ${budgets.fista.batchSize}, ${Math.round(budgets.fista.samples / budgets.fista.batchSize)} steps`],
    ['RICA', `${budgets.rica.samples.toLocaleString('en-US')} samples, one fixed set`, `L-BFGS (strong Wolfe), at most ${budgets.rica.iterations} iterations over the whole set; epsilon 1e-2, rows normalised in the cost`],
  ];
}

/** @param {QualityRecord} r */
function runRow(r) {
  return [
    r.label, `${r.coefficientName} ${r.coefficient}`, r.dictionarySize,
    r.section === 'sweep' ? 'clean' : r.section === 'noise' ? `noise r ${r.data.noiseRatio}` : 'correlated',
    num(r.mmcs), r.cosine === 'absolute' ? '|cos|' : 'cos', num(r.mcc), num(r.recovered90, 2), num(r.fvu, 4), r.mse.toExponential(2),
    `${num(r.l0, 1)}${r.l0Kind === 'soft' ? ' (soft)' : ''}`, num(r.deadFraction), r.samplesSeen.toLocaleString('en-US'),
    r.sampleEvaluations.toLocaleString('en-US'), num(r.trainSeconds, 1), num(r.trainCpuSeconds, 1), r.backend,
  ];
}

const runHeaders = ['method', 'coefficient', 'dict. size', 'data', 'MMCS', 'cosine', 'MCC', 'rec. @0.9', 'FVU', 'MSE', 'L0', 'dead', 'training samples', 'sample evaluations', 'train s', 'train CPU s', 'backend'];

/** @param {any} quality @param {string} dir @returns {Promise<{ main: string, allRuns: string }>} */
async function qualitySections(quality, dir) {
  /** @type {QualityRecord[]} */
  const records = quality.records;
  const out = [];
  out.push(`<p>Grid <b>${escape(quality.grid)}</b>, ${escape(quality.date)}: ${num(quality.wallSeconds / 60, 1)} minutes in all (${num(quality.cpuSeconds / 60, 1)} CPU minutes; ` +
    `load average ${num(quality.loadAverage.start, 1)} at the start, ${num(quality.loadAverage.end, 1)} at the end: other work on the machine lengthens wall times, not CPU times). ` +
    `${escape(provenance(quality.machine, quality.commit))}.</p>`);

  out.push('<h2>What the run showed</h2>');
  out.push('<p>Each verdict is computed from the records below by the rule next to it; nothing is decided in advance.</p>');
  out.push(table(['claim', 'verdict', 'what the run showed', 'rule'], quality.claims.map((/** @type {any} */ c) => [
    escape(c.claim), `<b class="verdict ${c.verdict.replace(/ /g, '-')}">${escape(c.verdict)}</b>`, escape(c.finding), escape(c.rule),
  ]), [true, true, true, true]));

  const s = quality.setting;
  out.push('<h2>Setting</h2>');
  out.push(`<p>Toy data with known features (saekit's <code>ToyDataset</code>, seed ${s.seed}): ${s.numFeatures} true features in dimension ${s.dim}, ${escape(s.features)}; ` +
    `${escape(s.probabilities)}; each active feature's magnitude ${escape(s.magnitudes)}; x is the sum of active features times magnitudes (E||x|| = ${num(s.meanNorm, 4)}). ` +
    `Main dictionary size ${quality.mainSize} (ratio ${quality.mainSize / s.numFeatures} to the true count)${quality.dictionarySizes.length > 1 ? `; sweeps also at ${quality.dictionarySizes.filter((/** @type {number} */ d) => d !== quality.mainSize).join(' and ')}` : ''}.</p>`);
  out.push(`<p>Every method is evaluated on the same ${s.heldOut} held-out samples of its data setting (the first samples of the stream; no run trains on them). ` +
    'MMCS is the mean over true features of the largest cosine with any learned direction (HoagyC/sparse_coding\'s <code>mean_max_cosine_similarity(ground_truth, learned)</code>); ' +
    'it uses |cos| for RICA, whose codes can be negative, and the signed cosine for the SAEs and FISTA (non-negative codes). MCC is the mean |cos| of a one-to-one Hungarian matching; ' +
    '"rec. @0.9" the fraction of true features with a learned direction at cosine ≥ 0.9. FVU and MSE are of the reconstruction of the held-out samples (SAE: its decoder with bias; FISTA and RICA: codes times dictionary). ' +
    'L0 is the mean number of non-zero codes per sample; RICA\'s codes are dense, so its L0 is a soft count of |code| &gt; sqrt(epsilon) (where its penalty turns linear), as is its dead fraction. ' +
    `Noise: ${escape(s.noise)}. Correlated run: ${escape(s.correlated)}.</p>`);

  out.push('<h2>Budgets</h2>');
  const rica = records.filter((r) => r.method === 'rica');
  const capped = rica.filter((r) => r.steps >= Number(r.training.maxIterations)).length;
  out.push('<p>Fixed per method for every run. The methods cost very different amounts per sample (an SAE step touches each sample once; FISTA solves a lasso per sample; ' +
    'RICA\'s L-BFGS evaluates every training sample at every iteration), so each gets its own budget, chosen so that the whole default run fits in 15 minutes on 2 cores; ' +
    'training samples, sample evaluations, wall time and CPU time are reported side by side for every run below, so the comparison is honest about all of them. ' +
    'The default budgets are smaller than the issue\'s example (SAE 1M samples, FISTA 100k, RICA 20k) to fit that limit; <code>--full</code> runs larger ones. ' +
    'A run\'s numbers reflect its budget as well as its coefficient: a run still learning when its budget ends would score differently with more' +
    (rica.length > 0 ? `; ${capped} of ${rica.length} RICA runs stopped at the iteration cap rather than at L-BFGS's convergence test, so RICA's numbers are those of an unfinished optimisation.` : '.') +
    '</p>');
  /** @type {Record<string, QualityRecord[]>} */
  const byFamily = { sae: [], fista: [], rica: [] };
  for (const r of records) byFamily[methods[r.method].family].push(r);
  const meanSeconds = (/** @type {QualityRecord[]} */ rs) => (rs.length === 0 ? NaN : rs.reduce((a, r) => a + r.trainSeconds, 0) / rs.length);
  out.push(table(['method', 'training data per run', 'optimizer', 'mean training time per run (s)'], budgetRows(quality.budgets).map((row, i) => [...row, num(meanSeconds(Object.values(byFamily)[i]), 1)])));

  out.push('<h2>Best run per method</h2>');
  out.push(table(runHeaders, bestRuns(records, quality.mainSize).map(runRow)));
  out.push(`<p>At matched L0 (each frontier interpolated in log L0 and log FVU over the L0 range both cover, L0 ≥ ${minimumMatchedL0}):</p><ul>${matchedL0Lines(records, quality.mainSize).map((l) => `<li>${escape(l)}</li>`).join('')}</ul>`);

  out.push('<h2>Figures</h2>');
  for (const figure of qualityFigures(records, quality.mainSize)) {
    const svg = await renderSvg(figure.spec);
    writeFileSync(join(dir, figure.file), svg);
    out.push(`<figure><h3>${escape(figure.title)}</h3>${svg}<figcaption>${escape(figure.caption)} (<a href="${figure.file}">${figure.file}</a>)</figcaption></figure>`);
  }

  const correlated = records.filter((r) => r.section === 'correlated');
  if (correlated.length > 0) {
    out.push('<h2>Correlated features</h2>');
    out.push('<p>Each method at its best coefficient on data whose features fire together or apart (same features, same marginal probabilities).</p>');
    out.push(table(runHeaders, correlated.map(runRow)));
  }

  out.push(patchesSection(quality.patches, dir));
  return { main: out.join('\n'), allRuns: `<h2>All runs</h2>\n${table(runHeaders, records.map(runRow))}` };
}

/** @param {any} patches @param {string} dir */
function patchesSection(patches, dir) {
  const out = ['<h2>Real data: natural-image patches</h2>'];
  if (patches === undefined || patches === null) return '';
  if (patches.skipped) {
    out.push(`<p>Not run: ${escape(patches.skipped)}.</p>`);
    return out.join('\n');
  }
  out.push(`<p><b>No ground truth exists here</b>, so there is no MMCS: this section shows what each method learned. Data: ${escape(patches.recipe)}; ` +
    `${patches.train.toLocaleString('en-US')} training and ${patches.heldOut.toLocaleString('en-US')} held-out patches (every method trains on all the training patches, in as many passes as its budget allows), ${patches.features} filters per method. ` +
    'FVU and L0 are on the held-out patches (RICA\'s L0 soft, as above). Locality: share of a filter\'s energy in its best 4x4 window; orientation: concentration of its ' +
    'spatial-frequency power around one angle (1 = a pure edge or grating); kurtosis of its responses to held-out patches (3 for Gaussian responses). Random filters: ' +
    `locality ${num(patches.random.locality)}, orientation ${num(patches.random.orientation)}, kurtosis ${num(patches.random.kurtosis, 1)}.</p>`);
  out.push(table(['method', 'coefficient', 'training', 'FVU', 'L0', 'dead', 'locality', 'orientation', 'kurtosis', 'train s'], patches.runs.map((/** @type {any} */ r) => [
    r.label, `${r.coefficientName} ${r.coefficient}`, `${r.sampleEvaluations.toLocaleString('en-US')} sample evaluations, ${r.steps} ${r.method === 'rica' ? 'L-BFGS iterations' : 'steps'}`, num(r.fvu), `${num(r.l0, 1)}${r.l0Kind === 'soft' ? ' (soft)' : ''}`,
    num(r.deadFraction), num(r.locality), num(r.orientation), num(r.kurtosis, 1), num(r.trainSeconds, 1),
  ])));
  out.push('<div class="filters">');
  for (const r of patches.runs) {
    const file = join(dir, r.image);
    const src = existsSync(file) ? `data:image/png;base64,${readFileSync(file).toString('base64')}` : r.image;
    out.push(`<figure><img src="${src}" alt="${escape(r.label)} filters"><figcaption>${escape(r.label)}: ${escape(`${patches.features} filters, each scaled to its own largest |value| (gray 0, white positive, black negative)`)} (<a href="${escape(r.image)}">${escape(r.image)}</a>)</figcaption></figure>`);
  }
  out.push('</div>');
  return out.join('\n');
}

/** @param {import('./results.mjs').SpeedPart | null} speed */
function speedSection(speed) {
  const out = ['<h2>Speed</h2>'];
  if (speed === null) {
    out.push('<p>No speed figures in results.json yet: run <code>npm run bench:speed</code> (it writes into the same results.json and re-renders this report).</p>');
    return out.join('\n');
  }
  out.push(`<p>${escape(speed.date)}; ${escape(provenance(speed.machine, speed.commit))}. Times are medians unless the row says otherwise; ratios are the reference's time over ours (above 1: saekit is faster), ` +
    'measured in the same run on the same threads. Effective GFLOP/s counts the flops named in the last column.</p>');
  out.push(table(['operation', 'shape', 'ms', 'samples/s', 'effective GFLOP/s', 'reference', 'reference ms', 'ratio', 'flops counted'], speed.rows.map((/** @type {SpeedRow} */ r) => [
    r.operation + (r.note ? ` (${r.note})` : ''), r.shape, num(r.ms, 2), r.samplesPerSecond === null ? '–' : Math.round(r.samplesPerSecond).toLocaleString('en-US'),
    num(r.gflops, 1), r.reference === null ? 'none' : r.reference.name, r.reference === null ? '–' : r.reference.ms === null ? `not run${r.reference.note ? ` (${r.reference.note})` : ''}` : num(r.reference.ms, 2),
    r.ratio === null ? '–' : `${num(r.ratio, 2)}x`, r.flops ?? '–',
  ])));
  return out.join('\n');
}

const style = `
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figcaption { font-size: 0.9em; color: #444; max-width: 1000px; }
.filters { display: flex; flex-wrap: wrap; gap: 2em; }
.filters figure { max-width: 560px; }
.verdict.confirmed, .verdict.they-differ { color: #1a7f37; }
.verdict.not-confirmed, .verdict.no-clear-difference { color: #b35900; }
.verdict.partly-confirmed { color: #8a6d00; }
`;

/**
 * Writes report.html (and the figures) in `dir` from its results.json.
 * @param {string} dir @returns {Promise<string>} the report's path
 */
export async function writeReport(dir) {
  const results = readResults(dir);
  const quality = results.quality === null ? null : await qualitySections(results.quality, dir);
  const body = [
    '<h1>saekit benchmark: SAE, FISTA and RICA on known features</h1>',
    quality === null ? '<p>No quality results in results.json yet: run <code>npm run bench</code>.</p>' : quality.main,
    speedSection(results.speed),
    quality === null ? '' : quality.allRuns,
  ];
  const html = `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>saekit benchmark report</title>\n<style>${style}</style>\n</head>\n<body>\n${body.join('\n')}\n</body>\n</html>\n`;
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  return file;
}
