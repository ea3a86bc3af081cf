// @ts-check
// The plain-text summary printed at the end of `npm run bench`: each method's best MMCS and
// the coefficient that gave it, which method reconstructs better at matched L0, and the
// verdict on each claim, all from the records.
import { compareAtMatchedL0, sweepRuns } from './claims.mjs';
import { methods } from './methods.mjs';

/**
 * @typedef {import('./suite.mjs').QualityRecord} QualityRecord
 * @typedef {import('./grid.mjs').MethodId} MethodId
 */

/** @param {number} v @param {number} [digits] */
const f = (v, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

/**
 * Each method's (and variant's) best sweep run at the main dictionary size.
 * @param {QualityRecord[]} records @param {number} size
 */
export function bestRuns(records, size) {
  /** @type {Map<string, QualityRecord>} */
  const best = new Map();
  for (const r of records) {
    if (r.section !== 'sweep' || r.dictionarySize !== size) continue;
    const current = best.get(r.label);
    if (current === undefined || r.mmcs > current.mmcs) best.set(r.label, r);
  }
  return [...best.values()];
}

/**
 * FISTA against each SAE variant, and RICA against FISTA, at matched L0: which reconstructs better.
 * @param {QualityRecord[]} records @param {number} size @returns {string[]}
 */
export function matchedL0Lines(records, size) {
  const lines = [];
  /** @type {[MethodId, MethodId][]} */
  const pairs = [['fista', 'sae-untied'], ['fista', 'sae-tied'], ['fista', 'sae-topk'], ['fista', 'sae-batchtopk'], ['sae-topk', 'sae-untied'], ['sae-tied', 'sae-untied'], ['rica', 'fista']];
  for (const [a, b] of pairs) {
    if (sweepRuns(records, a, size).length === 0 || sweepRuns(records, b, size).length === 0) continue;
    const points = compareAtMatchedL0(records, a, b, size);
    const la = methods[a].label;
    const lb = methods[b].label;
    if (points.length === 0) {
      lines.push(`${la} vs ${lb}: no common L0 range (>= 1), not compared`);
      continue;
    }
    const aBetter = points.filter((p) => p.fvuA < p.fvuB).length;
    const detail = points.map((p) => `L0 ${f(p.l0, 1)}: ${f(p.fvuA, 4)} vs ${f(p.fvuB, 4)}`).join(', ');
    const who = aBetter === points.length ? la : aBetter === 0 ? lb : 'neither throughout';
    lines.push(`${la} vs ${lb}: better reconstruction (lower FVU) at matched L0: ${who} (${aBetter}/${points.length} points to ${la}; ${detail})`);
  }
  return lines;
}

/**
 * @param {{ records: QualityRecord[], mainSize: number, claims: import('./claims.mjs').Claim[], wallSeconds: number, grid: string,
 *   patches: any }} quality
 * @returns {string}
 */
export function summaryText(quality) {
  const { records, mainSize } = quality;
  const lines = [`saekit quality benchmark (grid '${quality.grid}', ${(quality.wallSeconds / 60).toFixed(1)} min): dictionary size ${mainSize}`, '', 'Best MMCS per method:'];
  for (const r of bestRuns(records, mainSize)) {
    lines.push(
      `  ${r.label.padEnd(36)} MMCS ${f(r.mmcs)} at ${r.coefficientName} ${r.coefficient} (MCC ${f(r.mcc)}, FVU ${f(r.fvu, 4)}, L0 ${f(r.l0, 1)}${r.l0Kind === 'soft' ? ' soft' : ''}, ` +
        `${r.samplesSeen.toLocaleString('en-US')} samples, ${f(r.trainSeconds, 1)} s)`,
    );
  }
  lines.push('', 'At matched L0 (interpolated along each frontier, FVU on held-out samples):');
  for (const line of matchedL0Lines(records, mainSize)) lines.push(`  ${line}`);
  lines.push('', 'Claims:');
  quality.claims.forEach((c, i) => {
    lines.push(`  ${c.id === 'variants' ? '*' : `${i + 1}.`} ${c.claim}`, `     -> ${c.verdict.toUpperCase()}: ${c.finding}`);
  });
  if (quality.patches?.runs) {
    lines.push('', `Natural-image patches (${quality.patches.features} filters, no ground truth; FVU and L0 on ${quality.patches.heldOut} held-out patches):`);
    for (const r of quality.patches.runs) {
      lines.push(`  ${r.label.padEnd(36)} FVU ${f(r.fvu)} L0 ${f(r.l0, 1)}${r.l0Kind === 'soft' ? ' (soft)' : ''}, locality ${f(r.locality)} (random ${f(quality.patches.random.locality)}), kurtosis ${f(r.kurtosis, 1)} (random ${f(quality.patches.random.kurtosis, 1)})`);
    }
  } else if (quality.patches?.skipped) {
    lines.push('', `Natural-image patches: skipped (${quality.patches.skipped})`);
  }
  return lines.join('\n');
}
