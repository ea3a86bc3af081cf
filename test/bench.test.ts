// The benchmark suite (`npm run bench`, bench/quality.mjs): a smoke run of its smallest grid
// into a temporary directory must produce every output in a form a reader (or a later
// script) can use, and the claim verdicts must follow the numbers, not a script.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { compareAtMatchedL0, evaluateClaims, frontier, interpolate, matchedL0s } from '../bench/quality/claims.mjs';
import { makeGrid } from '../bench/quality/grid.mjs';
import { writeReport } from '../bench/quality/report.mjs';
import { readResults, updateResults } from '../bench/quality/results.mjs';
import { runQuality } from '../bench/quality/suite.mjs';
import type { QualityRecord } from '../bench/quality/suite.mjs';
import { sharedDataDir } from './rica_fixtures.js';

const root = resolve(import.meta.dirname, '..');
const figures = ['mmcs_vs_coefficient.svg', 'frontier.svg', 'mmcs_vs_noise.svg', 'dead_vs_coefficient.svg'];
const filterImages = ['filters_sae-untied.png', 'filters_fista.png', 'filters_rica.png'];

/**
 * Well-formed XML with an <svg> root: every tag closed in order, attributes quoted, one root.
 * (Enough to catch a truncated or hand-mangled file; the content is vega's.)
 */
function parseSvg(text: string): { root: string; elements: number; texts: string[] } {
  const stack: string[] = [];
  const texts: string[] = [];
  let root = '';
  let elements = 0;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>/g;
  let last = 0;
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    const between = text.slice(last, m.index);
    if (between.includes('<')) throw new Error(`malformed markup near ${JSON.stringify(between.slice(between.indexOf('<'), between.indexOf('<') + 40))}`);
    if (between.trim() && stack.length === 0) throw new Error('text outside the root element');
    if (between.trim()) texts.push(between.trim());
    last = tag.lastIndex;
    if (m[2] === undefined) continue; // comment, declaration
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`);
      continue;
    }
    if (stack.length === 0) {
      if (root) throw new Error('more than one root element');
      root = name;
    }
    elements++;
    if (!selfClosing) stack.push(name);
  }
  if (text.slice(last).trim()) throw new Error('text after the root element');
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements, texts };
}

describe('npm run bench (smoke grid)', () => {
  const out = mkdtempSync(join(tmpdir(), 'saekit-bench-'));
  let stdout = '';
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  beforeAll(async () => {
    const result = await promisify(execFile)(process.execPath, [join(root, 'bench', 'quality.mjs'), '--smoke', '--out', out], {
      cwd: root,
      env: { ...process.env, SAEKIT_DATA: sharedDataDir },
      maxBuffer: 64 * 1024 * 1024,
    });
    stdout = result.stdout;
  }, 120_000);

  it('writes results.json with one complete record per run of the grid, and the machine and commit', () => {
    const results = readResults(out);
    const grid = makeGrid('smoke');
    expect(results.schemaVersion).toBe(1);
    expect(results.speed).toBeNull();
    expect(results.machine).toMatchObject({ cores: expect.any(Number), node: process.version, backend: 'cpu' });
    expect(results.commit?.hash).toMatch(/^[0-9a-f]{40}$/);
    const quality = results.quality;
    expect(quality.grid).toBe('smoke');
    const records: QualityRecord[] = quality.records;
    const sweeps = grid.sweeps.reduce((n, s) => n + s.coefficients.length, 0);
    const noise = grid.noiseMethods.length * grid.noiseRatios.filter((r) => r > 0).length;
    expect(records.filter((r) => r.section === 'sweep')).toHaveLength(sweeps);
    expect(records.filter((r) => r.section === 'noise')).toHaveLength(noise);
    expect(records.filter((r) => r.section === 'correlated')).toHaveLength(grid.noiseMethods.length);
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    for (const r of records) {
      for (const key of ['mmcs', 'mcc', 'recovered90', 'fvu', 'mse', 'l0', 'deadFraction', 'samplesSeen', 'trainSeconds'] as const) {
        expect(Number.isFinite(r[key]), `${r.id} ${key}`).toBe(true);
      }
      expect(r.mmcs).toBeGreaterThanOrEqual(0);
      expect(r.mmcs).toBeLessThanOrEqual(1);
      expect(r.deadFraction).toBeGreaterThanOrEqual(0);
      expect(r.cosine).toBe(r.method === 'rica' ? 'absolute' : 'signed');
      expect(r.l0Kind).toBe(r.method === 'rica' ? 'soft' : 'exact');
      expect(r.backend).toMatch(/^cpu/);
      expect(r.samplesSeen).toBe(r.method === 'rica' ? grid.budgets.rica.samples : r.method === 'fista' ? grid.budgets.fista.samples : grid.budgets.sae.samples);
    }
    // The noise runs are at each method's best coefficient, with the stated noise level.
    for (const r of records.filter((x) => x.section === 'noise')) {
      const best = records.find((x) => x.id === quality.best[r.method]);
      expect(r.coefficient).toBe(best?.coefficient);
      expect(r.data.noiseStd).toBeCloseTo((r.data.noiseRatio * quality.setting.meanNorm) / Math.sqrt(grid.toy.dim), 12);
    }
    expect(quality.claims.map((c: { id: string }) => c.id)).toEqual(['recovery', 'fista-reconstruction', 'noise', 'tied', 'variants']);
    expect(quality.patches.runs.map((r: { method: string }) => r.method)).toEqual(['sae-untied', 'fista', 'rica']);
  });

  it('renders every figure as a well-formed SVG with labelled axes, and the filter grids as PNG', () => {
    for (const file of figures) {
      const svg = parseSvg(readFileSync(join(out, file), 'utf8'));
      expect(svg.root, file).toBe('svg');
      expect(svg.elements, file).toBeGreaterThan(50);
      expect(svg.texts.some((t) => t.includes('SAE untied (ReLU + L1)')), `${file} legend`).toBe(true);
    }
    const frontierText = parseSvg(readFileSync(join(out, 'frontier.svg'), 'utf8')).texts.join(' ');
    expect(frontierText).toContain('L0 (active units per sample, log scale)');
    expect(frontierText).toContain('FVU (fraction of variance unexplained, log scale)');
    for (const file of filterImages) {
      const png = readFileSync(join(out, file));
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
      expect(png.readUInt32BE(16)).toBeGreaterThan(0);
    }
  });

  it('writes report.html with the claims, the figures inline and a note that speed was not run', () => {
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('What the run showed');
    expect(html.match(/<svg /g)?.length).toBe(figures.length);
    expect(html).toContain('No ground truth exists here');
    expect(html).toContain('data:image/png;base64,');
    expect(html).toContain('npm run bench:speed');
  });

  it('prints a summary with each method\'s best MMCS and a verdict on each claim', () => {
    const summary = stdout.slice(stdout.indexOf('Best MMCS per method:'));
    for (const label of ['SAE untied (ReLU + L1)', 'SAE tied (ReLU + L1)', 'SAE TopK', 'FISTA dictionary learning', 'RICA (L-BFGS)']) {
      expect(summary).toMatch(new RegExp(`${label.replace(/[()+]/g, '\\$&')}\\s+MMCS \\d\\.\\d{3} at \\w+ [\\d.]+`));
    }
    expect(summary).toContain('At matched L0');
    expect(summary.match(/-> (CONFIRMED|PARTLY CONFIRMED|NOT CONFIRMED|CANNOT BE JUDGED|THEY DIFFER|NO CLEAR DIFFERENCE):/g)).toHaveLength(4);
  });

  it('keeps the quality part when the speed part is written, and the report then shows the speed table', async () => {
    const before = readResults(out).quality;
    updateResults(out, 'speed', {
      date: '2026-01-01T00:00:00.000Z', machine: readResults(out).machine, commit: { hash: null, dirty: null }, raw: {},
      rows: [
        { operation: 'SAE training step, ReLU untied', shape: 'd 512, m 4096', ms: 70, samplesPerSecond: 14628, gflops: 307, flops: '10·B·d·m', reference: { name: 'PyTorch', ms: 250 }, ratio: 250 / 70 },
        { operation: 'FISTA encode', shape: '2000 rows', ms: 40, samplesPerSecond: 50000, gflops: null, flops: null, reference: { name: 'scikit-learn', ms: null, note: 'scikit-learn not available' }, ratio: null },
      ],
    });
    expect(readResults(out).quality).toEqual(before);
    await writeReport(out);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('3.57x');
    expect(html).toContain('not run (scikit-learn not available)');
    expect(html).not.toContain('No speed figures in results.json yet');
    expect(existsSync(join(out, 'frontier.svg'))).toBe(true);
  });
});

describe('the --full grid\'s extra runs (dictionary sizes, BatchTopK, resampling) on a tiny budget', () => {
  it('records each variant with its options, judges variants at matched L0 and draws one panel per size', { timeout: 60_000 }, async () => {
    const smoke = makeGrid('smoke');
    const full = makeGrid('full');
    expect(full.dictionarySizes).toEqual([512, 1024, 2048]);
    const grid = {
      ...smoke,
      dictionarySizes: [128, 256],
      sweeps: full.sweeps.filter((s) => s.method === 'sae-batchtopk' || s.resample).map((s) => ({ ...s, coefficients: s.coefficients.slice(2, 3) })),
      noiseMethods: [],
      correlated: false,
    };
    const logs: string[] = [];
    const out = mkdtempSync(join(tmpdir(), 'saekit-bench-full-'));
    try {
      const quality = await runQuality(grid, { log: (line) => logs.push(line), dataDir: undefined, outDir: out });
      const records: QualityRecord[] = quality.records;
      expect(records).toHaveLength(2 * 4);
      const batchTopK = records.find((r) => r.method === 'sae-batchtopk' && !r.resample);
      expect(batchTopK?.options).toMatchObject({ activation: 'batchtopk', k: 5, thresholdStartStep: 15 });
      const resampled = records.find((r) => r.method === 'sae-untied' && r.resample);
      expect(resampled?.label).toBe('SAE untied (ReLU + L1) + resampling');
      expect(resampled?.training).toMatchObject({ resample: { every: 3, window: 768, untilStep: 22 } });
      expect(quality.patches).toEqual({ skipped: expect.stringContaining('SAEKIT_DATA') });
      const variants = quality.claims.find((c) => c.id === 'variants');
      expect(variants?.finding).toContain('SAE BatchTopK + resampling: best MMCS');
      updateResults(out, 'quality', quality);
      await writeReport(out);
      const frontierSvg = parseSvg(readFileSync(join(out, 'frontier.svg'), 'utf8'));
      expect(frontierSvg.texts).toEqual(expect.arrayContaining(['128 atoms', '256 atoms']));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('claim verdicts', () => {
  // Sweep records with given (L0, FVU, MMCS) points; everything else fixed.
  function runs(method: QualityRecord['method'], points: Array<[number, number, number]>, section: QualityRecord['section'] = 'sweep'): QualityRecord[] {
    return points.map(([l0, fvu, mmcs], i) => ({
      id: `${section}/${method}/${i}`, section, method, label: method, resample: false, coefficientName: 'c', coefficient: i + 1, dictionarySize: 1024,
      data: { noiseRatio: section === 'noise' ? 0.2 : 0, noiseStd: 0, correlated: section === 'correlated' },
      options: {}, training: {}, mmcs, cosine: 'signed', mcc: mmcs, recovered90: 0, fvu, mse: fvu / 100, l0, l0Kind: 'exact', deadFraction: 0,
      samplesSeen: 1, sampleEvaluations: 1, steps: 1, finalLoss: 0, trainSeconds: 1, trainCpuSeconds: 2, evalSeconds: 0, backend: 'cpu',
    }));
  }
  const byId = (claims: ReturnType<typeof evaluateClaims>, id: string) => claims.find((c) => c.id === id);

  it('matches sparsity along the frontier: dominated runs are dropped, and L0 is interpolated in log space', () => {
    const points = frontier(runs('fista', [[2, 0.4, 0.9], [8, 0.1, 0.9], [4, 0.5, 0.9], [1, 0.8, 0.9]]));
    expect(points.map((p) => p.l0)).toEqual([1, 2, 8]); // (4, 0.5) is beaten by (2, 0.4)
    expect(interpolate(points, 4, 'fvu')).toBeCloseTo(0.2, 12); // halfway from 2 to 8 in log L0, geometric mean of 0.4 and 0.1
    expect(interpolate(points, 16, 'fvu')).toBeNaN();
    const matched = matchedL0s(points, frontier(runs('sae-untied', [[0.5, 0.9, 0.9], [4, 0.3, 0.9]])));
    expect(matched).toEqual([1, 2 ** 0.5, 2, 2 ** 1.5, 4].map((v) => expect.closeTo(v, 12)));
  });

  it('confirms claim 2 when FISTA reconstructs better at every matched L0, and not when the numbers are swapped', () => {
    const better: Array<[number, number, number]> = [[1, 0.5, 0.9], [4, 0.2, 0.99], [16, 0.05, 0.95]];
    const worse: Array<[number, number, number]> = [[1, 0.6, 0.9], [4, 0.3, 0.99], [16, 0.08, 0.95]];
    const confirmed = evaluateClaims([...runs('fista', better), ...runs('sae-untied', worse), ...runs('sae-tied', worse)], 1024);
    expect(byId(confirmed, 'fista-reconstruction')?.verdict).toBe('confirmed');
    const swapped = evaluateClaims([...runs('fista', worse), ...runs('sae-untied', better), ...runs('sae-tied', better)], 1024);
    expect(byId(swapped, 'fista-reconstruction')?.verdict).toBe('not confirmed');
    const mixed = evaluateClaims([...runs('fista', better), ...runs('sae-untied', worse), ...runs('sae-tied', better)], 1024);
    expect(byId(mixed, 'fista-reconstruction')?.verdict).toBe('partly confirmed');
    const apart = evaluateClaims([...runs('fista', [[1, 0.5, 0.9], [2, 0.4, 0.9]]), ...runs('sae-untied', [[8, 0.1, 0.9], [16, 0.05, 0.9]])], 1024);
    expect(byId(apart, 'fista-reconstruction')?.verdict).toBe('cannot be judged');
    expect(compareAtMatchedL0([...runs('fista', better), ...runs('sae-untied', worse)], 'fista', 'sae-untied', 1024)[2]).toMatchObject({
      l0: expect.closeTo(4, 12), fvuA: expect.closeTo(0.2, 12), fvuB: expect.closeTo(0.3, 12),
    });
  });

  it('decides claims 1, 3 and 4 from the thresholds it states', () => {
    const untied = runs('sae-untied', [[3, 0.2, 0.9], [6, 0.05, 0.995], [20, 0.02, 0.95]]);
    const tied = runs('sae-tied', [[3, 0.3, 0.85], [6, 0.1, 0.97], [20, 0.03, 0.9]]);
    const claims = evaluateClaims([...untied, ...tied], 1024);
    expect(byId(claims, 'recovery')?.verdict).toBe('confirmed');
    expect(byId(claims, 'tied')?.verdict).toBe('they differ');
    expect(byId(claims, 'noise')?.verdict).toBe('cannot be judged');
    const exact = evaluateClaims([...runs('sae-untied', [[6, 0.001, 0.995]]), ...runs('sae-tied', [[6, 0.001, 0.994]])], 1024);
    expect(byId(exact, 'recovery')?.verdict).toBe('not confirmed'); // recovers, but reconstructs almost exactly
    expect(byId(exact, 'tied')?.verdict).toBe('no clear difference');

    const noisy = (mmcs: number, fvu: number) => runs('sae-untied', [[6, fvu, mmcs]], 'noise').map((r) => ({ ...r, coefficient: 2 }));
    expect(byId(evaluateClaims([...untied, ...noisy(0.97, 0.09)], 1024), 'noise')?.verdict).toBe('confirmed');
    expect(byId(evaluateClaims([...untied, ...noisy(0.995, 0.09)], 1024), 'noise')?.verdict).toBe('partly confirmed'); // reconstruction only
    expect(byId(evaluateClaims([...untied, ...noisy(0.995, 0.04)], 1024), 'noise')?.verdict).toBe('not confirmed');
  });
});
