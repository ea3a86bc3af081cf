// @ts-check
// The report's figures as vega-lite specifications, rendered to SVG headless by vega (no
// browser, no canvas: vega estimates text widths without one). Both are dev dependencies:
// only the benchmark draws figures, the package never does.
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

import { methods } from './methods.mjs';

/**
 * @typedef {import('./suite.mjs').QualityRecord} QualityRecord
 * @typedef {{ file: string, title: string, caption: string, spec: Record<string, any> }} Figure
 */

const mmcsTitle = 'MMCS';
const panelWidth = 230;
const panelHeight = 170;

/** Keeps one color per method label across every figure. @param {QualityRecord[]} records */
function colorScale(records) {
  const labels = [...new Set(records.map((r) => r.label))];
  return { domain: labels, scheme: 'tableau10' };
}

/** @param {QualityRecord} r */
const sizeLabel = (r) => `${r.dictionarySize} atoms`;

/**
 * @param {QualityRecord[]} records
 * @param {{ field: string, title: string, domain?: [number, number] }} y
 * @param {string} title
 */
function perMethodSweep(records, y, title) {
  const runs = records.filter((r) => r.section === 'sweep');
  const sizes = new Set(runs.map((r) => r.dictionarySize));
  const labels = [...new Set(runs.map((r) => r.label))];
  const color = colorScale(records);
  return {
    title,
    columns: 3,
    concat: labels.map((label) => {
      const own = runs.filter((r) => r.label === label);
      return {
        title: label,
        width: panelWidth,
        height: panelHeight,
        data: { values: own.map((r) => ({ label: r.label, coefficient: r.coefficient, value: /** @type {any} */ (r)[y.field], size: sizeLabel(r) })) },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'coefficient', type: 'quantitative', scale: { type: 'log' }, title: methods[own[0].method].coefficientLabel },
          y: { field: 'value', type: 'quantitative', title: y.title, ...(y.domain ? { scale: { domain: y.domain } } : {}) },
          color: { field: 'label', type: 'nominal', scale: color, title: 'method' },
          ...(sizes.size > 1 ? { strokeDash: { field: 'size', type: 'nominal', title: 'dictionary size' }, shape: { field: 'size', type: 'nominal', title: 'dictionary size' } } : {}),
        },
      };
    }),
  };
}

/** @param {QualityRecord[]} records @param {number} mainSize @returns {Figure[]} */
export function qualityFigures(records, mainSize) {
  const sweep = records.filter((r) => r.section === 'sweep');
  const color = colorScale(records);
  const sizes = [...new Set(sweep.map((r) => r.dictionarySize))].sort((a, b) => a - b);
  /** @type {Figure[]} */
  const figures = [
    {
      file: 'mmcs_vs_coefficient.svg',
      title: 'Feature recovery against the sparsity coefficient',
      caption:
        'MMCS (mean over the true features of the largest cosine with a learned direction; 1 is perfect recovery) of each sweep run against the coefficient it varies: the L1 coefficient (SAE ReLU), k (TopK, BatchTopK) or lambda (FISTA, RICA). ' +
        'RICA\'s codes are signed, so its cosines are compared as |cos|; every other method uses the signed cosine.',
      spec: perMethodSweep(records, { field: 'mmcs', title: mmcsTitle, domain: [0, 1] }, 'MMCS against the coefficient, per method'),
    },
    {
      file: 'frontier.svg',
      title: 'Reconstruction against sparsity',
      caption:
        'FVU on the held-out samples against L0 for every sweep run, one curve per method (joined in order of L0). Lower and further left is better. ' +
        'RICA\'s codes are dense: its L0 is a soft count (|code| > sqrt(epsilon)).',
      spec: frontierSpec(sweep, sizes, color),
    },
    {
      file: 'mmcs_vs_noise.svg',
      title: 'Recovery and reconstruction against noise',
      caption:
        'Each method at its best coefficient (highest MMCS in its sweep), trained and evaluated on data with Gaussian noise whose norm is r times the mean signal norm ' +
        '(per-coordinate std r E||x|| / sqrt(dim)); r = 0 is the sweep run itself. FVU is measured on held-out samples of the same noisy distribution.',
      spec: noiseSpec(records, mainSize, color),
    },
    {
      file: 'dead_vs_coefficient.svg',
      title: 'Dead units against the sparsity coefficient',
      caption: 'Fraction of learned units never active on the held-out samples, per sweep run.',
      spec: perMethodSweep(records, { field: 'deadFraction', title: 'dead fraction', domain: [0, 1] }, 'Dead fraction against the coefficient, per method'),
    },
  ];
  return figures.filter((figure) => figure.file !== 'mmcs_vs_noise.svg' || records.some((r) => r.section === 'noise'));
}

/**
 * @param {QualityRecord[]} sweep @param {number[]} sizes @param {ReturnType<typeof colorScale>} color
 */
function frontierSpec(sweep, sizes, color) {
  const unit = {
    width: 420,
    height: 300,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'l0', type: 'quantitative', scale: { type: 'log' }, title: 'L0 (active units per sample, log scale)' },
      y: { field: 'fvu', type: 'quantitative', scale: { type: 'log' }, title: 'FVU (fraction of variance unexplained, log scale)' },
      color: { field: 'label', type: 'nominal', scale: color, title: 'method' },
      order: { field: 'l0', type: 'quantitative' },
    },
  };
  const data = {
    values: sweep.filter((r) => r.l0 > 0 && r.fvu > 0).map((r) => ({ label: r.label, l0: r.l0, fvu: r.fvu, coefficient: r.coefficient, size: sizeLabel(r) })),
  };
  const title = 'Reconstruction-sparsity frontier (held-out samples)';
  if (sizes.length === 1) return { title, data, ...unit };
  return { title, data, columns: sizes.length, facet: { field: 'size', type: 'nominal', title: 'dictionary size', sort: sizes.map((s) => `${s} atoms`) }, spec: unit };
}

/**
 * @param {QualityRecord[]} records @param {number} mainSize @param {ReturnType<typeof colorScale>} color
 */
function noiseSpec(records, mainSize, color) {
  const noisy = records.filter((r) => r.section === 'noise' && r.dictionarySize === mainSize);
  /** @type {{ label: string, r: number, mmcs: number, fvu: number }[]} */
  const values = [];
  for (const method of new Set(noisy.map((r) => r.method))) {
    const own = noisy.filter((r) => r.method === method);
    const clean = records.filter((r) => r.section === 'sweep' && r.method === method && !r.resample && r.dictionarySize === mainSize && r.coefficient === own[0].coefficient);
    for (const r of [...clean, ...own]) values.push({ label: r.label, r: r.data.noiseRatio, mmcs: r.mmcs, fvu: r.fvu });
  }
  /** @param {'mmcs' | 'fvu'} field @param {string} title */
  const panel = (field, title) => ({
    width: 320,
    height: 230,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'r', type: 'quantitative', title: 'noise ratio r (noise norm / mean signal norm)' },
      y: { field, type: 'quantitative', title, ...(field === 'fvu' ? { scale: { type: 'log' } } : { scale: { zero: false } }) },
      color: { field: 'label', type: 'nominal', scale: color, title: 'method' },
      order: { field: 'r', type: 'quantitative' },
    },
  });
  return {
    title: 'Noise sweep at each method\'s best coefficient',
    data: { values },
    hconcat: [panel('mmcs', mmcsTitle), panel('fvu', 'FVU on noisy held-out samples (log scale)')],
  };
}

/**
 * Renders a vega-lite specification to SVG text, headless.
 * @param {Record<string, any>} spec @returns {Promise<string>}
 */
export async function renderSvg(spec) {
  const compiled = vegaLite.compile(/** @type {any} */ ({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', config: { legend: { labelLimit: 0 } }, ...spec })).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
