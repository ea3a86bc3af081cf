// @ts-check
// The research claims the suite tests, each decided from the measured records by a rule stated
// here and in the report: nothing below knows what the numbers "should" be.
//
// Sparsity is matched by interpolation along each method's reconstruction-sparsity frontier:
// the sweep runs that no other run of the same method beats on both L0 and FVU, joined
// piecewise linearly in (log L0, log FVU). Methods are compared at points spread
// log-uniformly over the L0 range both frontiers cover, with L0 >= 1 (below that a model
// reconstructs almost nothing and every method's FVU is about 1).

/**
 * @typedef {import('./suite.mjs').QualityRecord} QualityRecord
 * @typedef {import('./grid.mjs').MethodId} MethodId
 * @typedef {'confirmed' | 'partly confirmed' | 'not confirmed' | 'cannot be judged' | 'they differ' | 'no clear difference' | 'observed'} Verdict
 * @typedef {{ id: string, claim: string, verdict: Verdict, rule: string, finding: string, numbers: Record<string, unknown> }} Claim
 * @typedef {{ l0: number, fvu: number, mmcs: number, coefficient: number }} FrontierPoint
 */

export const minimumMatchedL0 = 1;
export const matchedPoints = 5;
const nearlyPerfectMmcs = 0.99;
const imperfectFvu = 0.01;
const mmcsTolerance = 0.002;
const mmcsDifference = 0.005;
const fvuRelativeDifference = 0.05;

/** @param {number} v @param {number} [digits] */
const f = (v, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
/** @param {number} v */
const pct = (v) => `${(100 * v).toFixed(1)}%`;

/**
 * @param {QualityRecord[]} records @param {MethodId} method @param {number} size
 * @param {{ resample?: boolean, section?: QualityRecord['section'] }} [o]
 */
export function sweepRuns(records, method, size, o = {}) {
  return records.filter((r) => r.section === (o.section ?? 'sweep') && r.method === method && r.resample === (o.resample ?? false) && r.dictionarySize === size);
}

/**
 * The Pareto-efficient runs (lowest FVU for their L0), by increasing L0.
 * @param {QualityRecord[]} runs @returns {FrontierPoint[]}
 */
export function frontier(runs) {
  const points = runs
    .filter((r) => r.l0 > 0 && r.fvu > 0 && Number.isFinite(r.fvu))
    .map((r) => ({ l0: r.l0, fvu: r.fvu, mmcs: r.mmcs, coefficient: r.coefficient }))
    .sort((a, b) => a.l0 - b.l0 || a.fvu - b.fvu);
  /** @type {FrontierPoint[]} */
  const kept = [];
  for (const p of points) if (kept.every((q) => q.fvu > p.fvu)) kept.push(p);
  return kept;
}

/**
 * FVU (in log space) or MMCS at `l0` along a frontier, linear in log L0; NaN outside its range.
 * @param {FrontierPoint[]} points @param {number} l0 @param {'fvu' | 'mmcs'} key
 */
export function interpolate(points, l0, key) {
  if (points.length === 0 || l0 < points[0].l0 || l0 > points[points.length - 1].l0) return NaN;
  const value = (/** @type {FrontierPoint} */ p) => (key === 'fvu' ? Math.log(p.fvu) : p.mmcs);
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (p.l0 === l0) return key === 'fvu' ? p.fvu : p.mmcs;
    const q = points[i + 1];
    if (q !== undefined && p.l0 <= l0 && l0 <= q.l0) {
      const t = (Math.log(l0) - Math.log(p.l0)) / (Math.log(q.l0) - Math.log(p.l0));
      const v = value(p) + t * (value(q) - value(p));
      return key === 'fvu' ? Math.exp(v) : v;
    }
  }
  return NaN;
}

/**
 * Where two frontiers can be compared: `matchedPoints` L0 values log-uniform over the range both
 * cover (from minimumMatchedL0), or none.
 * @param {FrontierPoint[]} a @param {FrontierPoint[]} b @returns {number[]}
 */
export function matchedL0s(a, b) {
  if (a.length === 0 || b.length === 0) return [];
  const low = Math.max(a[0].l0, b[0].l0, minimumMatchedL0);
  const high = Math.min(a[a.length - 1].l0, b[b.length - 1].l0);
  if (!(high >= low)) return [];
  if (high === low) return [low];
  // The ends exactly, so that rounding never puts them outside a frontier.
  return Array.from({ length: matchedPoints }, (_, i) =>
    i === 0 ? low : i === matchedPoints - 1 ? high : Math.exp(Math.log(low) + ((Math.log(high) - Math.log(low)) * i) / (matchedPoints - 1)));
}

/**
 * FVU and MMCS of two methods at matched L0s.
 * @param {QualityRecord[]} records @param {MethodId} a @param {MethodId} b @param {number} size
 * @param {{ resampleA?: boolean, resampleB?: boolean }} [o]
 */
export function compareAtMatchedL0(records, a, b, size, o = {}) {
  const fa = frontier(sweepRuns(records, a, size, { resample: o.resampleA }));
  const fb = frontier(sweepRuns(records, b, size, { resample: o.resampleB }));
  return matchedL0s(fa, fb).map((l0) => ({
    l0,
    fvuA: interpolate(fa, l0, 'fvu'),
    fvuB: interpolate(fb, l0, 'fvu'),
    mmcsA: interpolate(fa, l0, 'mmcs'),
    mmcsB: interpolate(fb, l0, 'mmcs'),
  }));
}

/** @param {QualityRecord[]} runs */
function bestRun(runs) {
  return runs.length === 0 ? undefined : runs.reduce((x, y) => (y.mmcs > x.mmcs ? y : x));
}

/** @param {QualityRecord} r */
const describeRun = (r) => `${r.coefficientName} ${r.coefficient}: MMCS ${f(r.mmcs)}, FVU ${f(r.fvu, 4)}, L0 ${f(r.l0, 1)}`;

/** @param {QualityRecord[]} records @param {number} size @returns {Claim} */
function claimRecovery(records, size) {
  const rule = `confirmed when the untied SAE's best MMCS over its L1 sweep is at least ${nearlyPerfectMmcs} while its FVU on held-out samples at that L1 is at least ${imperfectFvu}`;
  const untied = bestRun(sweepRuns(records, 'sae-untied', size));
  const claim = 'SAEs recover the true features almost perfectly at a well-chosen L1 (MMCS close to 1) while still reconstructing imperfectly.';
  if (untied === undefined) return { id: 'recovery', claim, verdict: 'cannot be judged', rule, finding: 'no untied SAE runs', numbers: {} };
  const others = /** @type {MethodId[]} */ (['sae-tied', 'sae-topk', 'sae-batchtopk'])
    .map((id) => bestRun(sweepRuns(records, id, size)))
    .filter((r) => r !== undefined);
  const recovers = untied.mmcs >= nearlyPerfectMmcs;
  const imperfect = untied.fvu >= imperfectFvu;
  const verdict = recovers && imperfect ? 'confirmed' : 'not confirmed';
  const finding =
    `Best untied SAE at ${describeRun(untied)}, recovered fraction (cos >= 0.9) ${f(untied.recovered90)}: ` +
    `${recovers ? 'near-perfect recovery' : `MMCS below ${nearlyPerfectMmcs}`} and ${imperfect ? `an imperfect reconstruction (FVU ${f(untied.fvu, 4)} >= ${imperfectFvu})` : `an almost exact reconstruction (FVU ${f(untied.fvu, 4)} < ${imperfectFvu})`}.` +
    (others.length > 0 ? ` For comparison: ${others.map((r) => `${r.label} best at ${describeRun(r)}`).join('; ')}.` : '');
  return { id: 'recovery', claim, verdict, rule, finding, numbers: { untied: pick(untied), others: others.map(pick) } };
}

/** @param {QualityRecord[]} records @param {number} size @returns {Claim} */
function claimFistaReconstruction(records, size) {
  const claim = 'FISTA dictionaries reach lower reconstruction error than SAEs at the same sparsity (L0).';
  const rule =
    `FVU of FISTA dictionary learning and of each SAE variant compared at ${matchedPoints} L0 values log-uniform over the L0 range both frontiers cover (L0 >= ${minimumMatchedL0}); ` +
    'confirmed when FISTA is lower at every matched L0 against every SAE variant, partly when at some, not confirmed when at none';
  const saes = /** @type {MethodId[]} */ (['sae-untied', 'sae-tied', 'sae-topk', 'sae-batchtopk']).filter((id) => sweepRuns(records, id, size).length > 0);
  const comparisons = saes.map((id) => ({ id, label: sweepRuns(records, id, size)[0].label, points: compareAtMatchedL0(records, 'fista', id, size) }))
    .filter((c) => c.points.length > 0);
  if (comparisons.length === 0) {
    return { id: 'fista-reconstruction', claim, verdict: 'cannot be judged', rule, finding: 'the L0 ranges of FISTA and the SAEs do not overlap above L0 1', numbers: {} };
  }
  let wins = 0;
  let total = 0;
  const parts = comparisons.map((c) => {
    const lower = c.points.filter((p) => p.fvuA < p.fvuB).length;
    wins += lower;
    total += c.points.length;
    const ratios = c.points.map((p) => p.fvuA / p.fvuB);
    const mid = c.points[Math.floor(c.points.length / 2)];
    return `vs ${c.label}: FISTA lower at ${lower} of ${c.points.length} matched L0 in [${f(c.points[0].l0, 1)}, ${f(c.points[c.points.length - 1].l0, 1)}] ` +
      `(FVU ratio FISTA/SAE ${f(Math.min(...ratios), 2)} to ${f(Math.max(...ratios), 2)}; at L0 ${f(mid.l0, 1)}: ${f(mid.fvuA, 4)} vs ${f(mid.fvuB, 4)})`;
  });
  const verdict = wins === total ? 'confirmed' : wins === 0 ? 'not confirmed' : 'partly confirmed';
  return {
    id: 'fista-reconstruction', claim, verdict, rule,
    finding: `${parts.join('; ')}.`,
    numbers: Object.fromEntries(comparisons.map((c) => [c.id, c.points])),
  };
}

/** @param {QualityRecord[]} records @param {number} size @returns {Claim} */
function claimNoise(records, size) {
  const claim = 'Noise degrades recovery and reconstruction.';
  const rule =
    `for each method at its best coefficient, recovery degrades when MMCS at the largest noise ratio r is below MMCS at r = 0 by more than ${mmcsTolerance}, ` +
    'and reconstruction degrades when FVU on held-out samples (of the same noisy distribution) is higher; confirmed when both degrade for every method, ' +
    'partly confirmed when either degrades for some method, not confirmed when neither does for any';
  const noisy = records.filter((r) => r.section === 'noise' && r.dictionarySize === size);
  const ids = [...new Set(noisy.map((r) => r.method))];
  if (ids.length === 0) return { id: 'noise', claim, verdict: 'cannot be judged', rule, finding: 'no noise runs', numbers: {} };
  let recoveryDegraded = 0;
  let reconstructionDegraded = 0;
  /** @type {Record<string, { r: number, mmcs: number, fvu: number }[]>} */
  const numbers = {};
  const parts = ids.map((id) => {
    const clean = /** @type {QualityRecord} */ (bestRun(sweepRuns(records, id, size)));
    const series = [clean, ...noisy.filter((r) => r.method === id)].sort((a, b) => a.data.noiseRatio - b.data.noiseRatio);
    numbers[id] = series.map((r) => ({ r: r.data.noiseRatio, mmcs: r.mmcs, fvu: r.fvu }));
    const last = series[series.length - 1];
    const recoveryWorse = last.mmcs < clean.mmcs - mmcsTolerance;
    const reconstructionWorse = last.fvu > clean.fvu;
    if (recoveryWorse) recoveryDegraded++;
    if (reconstructionWorse) reconstructionDegraded++;
    return `${clean.label}: MMCS ${series.map((r) => f(r.mmcs)).join(' → ')}, FVU ${series.map((r) => f(r.fvu, 3)).join(' → ')}`;
  });
  const n = ids.length;
  const verdict = recoveryDegraded === n && reconstructionDegraded === n ? 'confirmed'
    : recoveryDegraded + reconstructionDegraded === 0 ? 'not confirmed' : 'partly confirmed';
  const ratios = [...new Set(noisy.map((r) => r.data.noiseRatio))].sort((a, b) => a - b);
  const finding = `Up to r = ${ratios[ratios.length - 1]}, reconstruction degraded for ${reconstructionDegraded} of ${n} methods and recovery for ${recoveryDegraded} of ${n}. ` +
    `For r = 0, ${ratios.join(', ')}: ${parts.join('; ')}.`;
  return { id: 'noise', claim, verdict, rule, finding, numbers };
}

/** @param {QualityRecord[]} records @param {number} size @returns {Claim} */
function claimTied(records, size) {
  const claim = 'Tied and untied SAEs differ.';
  const rule =
    `they differ when their best MMCS differ by at least ${mmcsDifference}, or their FVU at matched L0 by at least ${pct(fvuRelativeDifference)} on average, ` +
    `or their MMCS on correlated features by at least ${mmcsDifference}`;
  const untied = bestRun(sweepRuns(records, 'sae-untied', size));
  const tied = bestRun(sweepRuns(records, 'sae-tied', size));
  if (untied === undefined || tied === undefined) return { id: 'tied', claim, verdict: 'cannot be judged', rule, finding: 'tied or untied runs missing', numbers: {} };
  const matched = compareAtMatchedL0(records, 'sae-untied', 'sae-tied', size);
  const fvuChange = matched.length > 0 ? matched.reduce((s, p) => s + p.fvuA / p.fvuB - 1, 0) / matched.length : NaN;
  const mmcsChange = matched.length > 0 ? matched.reduce((s, p) => s + p.mmcsA - p.mmcsB, 0) / matched.length : NaN;
  const correlatedUntied = sweepRuns(records, 'sae-untied', size, { section: 'correlated' })[0];
  const correlatedTied = sweepRuns(records, 'sae-tied', size, { section: 'correlated' })[0];
  const findings = [
    `best MMCS untied ${f(untied.mmcs)} (L1 ${untied.coefficient}, L0 ${f(untied.l0, 1)}, dead ${f(untied.deadFraction)}) vs tied ${f(tied.mmcs)} (L1 ${tied.coefficient}, L0 ${f(tied.l0, 1)}, dead ${f(tied.deadFraction)})`,
  ];
  if (matched.length > 0) {
    findings.push(
      `at matched L0 in [${f(matched[0].l0, 1)}, ${f(matched[matched.length - 1].l0, 1)}] the untied SAE's FVU is ${fvuChange < 0 ? `${pct(-fvuChange)} lower` : `${pct(fvuChange)} higher`} on average ` +
        `and its MMCS ${mmcsChange >= 0 ? 'higher' : 'lower'} by ${f(Math.abs(mmcsChange))}`,
    );
  }
  if (correlatedUntied && correlatedTied) {
    findings.push(`on correlated features MMCS untied ${f(correlatedUntied.mmcs)} vs tied ${f(correlatedTied.mmcs)}, FVU ${f(correlatedUntied.fvu, 4)} vs ${f(correlatedTied.fvu, 4)}`);
  }
  const differ =
    Math.abs(untied.mmcs - tied.mmcs) >= mmcsDifference ||
    (Number.isFinite(fvuChange) && Math.abs(fvuChange) >= fvuRelativeDifference) ||
    (correlatedUntied !== undefined && correlatedTied !== undefined && Math.abs(correlatedUntied.mmcs - correlatedTied.mmcs) >= mmcsDifference);
  return {
    id: 'tied', claim, verdict: differ ? 'they differ' : 'no clear difference', rule,
    finding: `${findings.join('; ')}.`,
    numbers: { untied: pick(untied), tied: pick(tied), matched, correlatedUntied: correlatedUntied && pick(correlatedUntied), correlatedTied: correlatedTied && pick(correlatedTied) },
  };
}

/**
 * Not one of the four claims: ReLU + L1, TopK and BatchTopK (with and without resampling, where
 * run) side by side at matched L0, each against the untied ReLU SAE.
 * @param {QualityRecord[]} records @param {number} size @returns {Claim | undefined}
 */
function variantsFinding(records, size) {
  /** @type {{ id: MethodId, resample: boolean }[]} */
  const variants = [];
  for (const id of /** @type {MethodId[]} */ (['sae-untied', 'sae-topk', 'sae-batchtopk'])) {
    for (const resample of [false, true]) {
      if (id === 'sae-untied' && !resample) continue;
      if (sweepRuns(records, id, size, { resample }).length > 0) variants.push({ id, resample });
    }
  }
  if (variants.length === 0) return undefined;
  const parts = variants.map(({ id, resample }) => {
    const runs = sweepRuns(records, id, size, { resample });
    const b = /** @type {QualityRecord} */ (bestRun(runs));
    const points = compareAtMatchedL0(records, id, 'sae-untied', size, { resampleA: resample });
    const head = `${b.label}: best MMCS ${f(b.mmcs)} at ${b.coefficientName} ${b.coefficient} (L0 ${f(b.l0, 1)}, dead ${f(b.deadFraction)})`;
    if (points.length === 0) return `${head}; no L0 range shared with the ReLU SAE`;
    const fvu = points.reduce((s, p) => s + p.fvuA / p.fvuB - 1, 0) / points.length;
    const mmcs = points.reduce((s, p) => s + p.mmcsA - p.mmcsB, 0) / points.length;
    return `${head}; against the untied ReLU SAE at matched L0 in [${f(points[0].l0, 1)}, ${f(points[points.length - 1].l0, 1)}]: ` +
      `FVU ${fvu < 0 ? `${pct(-fvu)} lower` : `${pct(fvu)} higher`}, MMCS ${mmcs >= 0 ? 'higher' : 'lower'} by ${f(Math.abs(mmcs))} on average`;
  });
  return {
    id: 'variants',
    claim: 'SAE variants (TopK with k swept instead of L1; BatchTopK and dead-feature resampling where run) against ReLU + L1.',
    verdict: 'observed',
    rule: 'each variant against the untied ReLU SAE at matched L0 (same interpolation as claim 2); no verdict, the differences are reported as measured',
    finding: `${parts.join('; ')}.`,
    numbers: {},
  };
}

/** @param {QualityRecord} r */
function pick(r) {
  return { id: r.id, coefficient: r.coefficient, mmcs: r.mmcs, mcc: r.mcc, fvu: r.fvu, l0: r.l0, deadFraction: r.deadFraction };
}

/**
 * The four claims of the issue, in order, then the SAE-variant comparison when there is one.
 * @param {QualityRecord[]} records @param {number} size the dictionary size they are judged at
 * @returns {Claim[]}
 */
export function evaluateClaims(records, size) {
  const claims = [claimRecovery(records, size), claimFistaReconstruction(records, size), claimNoise(records, size), claimTied(records, size)];
  const variants = variantsFinding(records, size);
  return variants === undefined ? claims : [...claims, variants];
}
