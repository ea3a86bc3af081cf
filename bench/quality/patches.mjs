// @ts-check
// Real data: natural-image patches from the shared photographs, prepared by the recipe of
// shared/REFERENCES.md (2x2 average pooling, 12x12 patches, patch mean removed, ZCA with
// epsilon 0.1 x the mean eigenvalue: patches.naturalImagePatches). Each method learns a
// dictionary of the same size with the same runners as the toy runs; there is no ground truth,
// so what is reported is what was learned: the filters as images, FVU and L0 on held-out
// patches, and the filter measures of lib/patches.ts next to random filters.
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadNpy, metrics, patches } from '../../dist/index.js';
import { Random } from '../../dist/random.js';
import { filterGridPng } from './filter_image.mjs';
import { createRunner, methods } from './methods.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const images = ['china_gray.npy', 'flower_gray.npy'];
const seed = 1;

/**
 * @typedef {import('../../dist/index.js').Matrix} Matrix
 * @typedef {import('./grid.mjs').PatchesGrid} PatchesGrid
 * @typedef {{ locality: number, orientation: number, kurtosis: number }} FilterMeasures
 */

/** The shared data directory: $SAEKIT_DATA, or shared/data beside the repository. */
export function findDataDir() {
  return [process.env.SAEKIT_DATA, resolve(here, '..', '..', '..', 'shared', 'data')].find(
    (dir) => typeof dir === 'string' && dir.length > 0 && images.every((name) => existsSync(join(dir, name))),
  );
}

/** @param {ArrayLike<number>} values */
function mean(values) {
  let total = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) continue;
    total += values[i];
    count++;
  }
  return total / count;
}

/**
 * Endless reshuffled passes over the rows of x, for the runners' `batches`, and its first rows for `sample`.
 * @param {Matrix} x
 */
function matrixSource(x) {
  const random = new Random(seed + 17);
  return {
    /** @param {number} size */
    *batches(size) {
      const order = new Int32Array(x.rows);
      for (;;) {
        for (let i = 0; i < x.rows; i++) order[i] = i;
        random.shuffle(order);
        for (let start = 0; start + size <= x.rows; start += size) {
          const batch = new Float32Array(size * x.cols);
          for (let i = 0; i < size; i++) batch.set(x.data.subarray(order[start + i] * x.cols, (order[start + i] + 1) * x.cols), i * x.cols);
          yield { rows: size, cols: x.cols, data: batch };
        }
      }
    },
    /** @param {number} n */
    sample(n) {
      return { x: { rows: n, cols: x.cols, data: x.data.slice(0, n * x.cols) } };
    },
  };
}

/** @param {Matrix} filters @param {Matrix} heldOut @returns {Promise<FilterMeasures>} */
async function filterMeasures(filters, heldOut) {
  return {
    locality: mean(patches.filterLocality(filters)),
    orientation: mean(patches.filterOrientation(filters)),
    kurtosis: mean(await patches.responseKurtosis(filters, heldOut)),
  };
}

/**
 * @param {PatchesGrid} grid
 * @param {{ log: (line: string) => void, dataDir: string | undefined, outDir: string }} io
 */
export async function naturalImageSection(grid, io) {
  if (io.dataDir === undefined) {
    io.log('natural-image patches: shared data not found (set SAEKIT_DATA to the folder with china_gray.npy): section skipped');
    return { skipped: 'the shared data (china_gray.npy, flower_gray.npy) was not found; set SAEKIT_DATA' };
  }
  const dataDir = io.dataDir;
  const photos = await Promise.all(images.map((name) => loadNpy(join(dataDir, name))));
  const prepared = await patches.naturalImagePatches(photos, { size: 12, count: grid.train, heldOut: grid.heldOut, seed });
  const { train, heldOut } = prepared;
  const random = new Random(seed + 7);
  const randomFilters = { rows: grid.features, cols: train.cols, data: Float32Array.from({ length: grid.features * train.cols }, () => random.normal()) };
  const baseline = await filterMeasures(randomFilters, heldOut);
  io.log(`natural-image patches: ${train.rows} training and ${heldOut.rows} held-out whitened 12x12 patches; random filters: locality ${baseline.locality.toFixed(3)}, kurtosis ${baseline.kurtosis.toFixed(1)}`);

  const b = grid.budget;
  const budgets = {
    sae: { samples: b.saeSamples, batchSize: b.saeBatchSize, lr: 1e-3 },
    fista: { samples: b.fistaSamples, batchSize: 256 },
    rica: { samples: train.rows, iterations: b.ricaIterations },
  };
  const runs = [];
  for (const [id, coefficient] of /** @type {const} */ ([['sae-untied', grid.coefficients.sae], ['fista', grid.coefficients.fista], ['rica', grid.coefficients.rica]])) {
    const method = methods[id];
    const runner = createRunner(id, { dIn: train.cols, dHidden: grid.features, coefficient, seed, budgets });
    try {
      const started = performance.now();
      const summary = await runner.train(matrixSource(train));
      const trainSeconds = (performance.now() - started) / 1000;
      const filters = runner.model.dictionary();
      const codes = await runner.model.encode(heldOut);
      const xhat = await runner.reconstruct(heldOut, codes);
      const active = runner.active(codes);
      const image = `filters_${id}.png`;
      writeFileSync(join(io.outDir, image), filterGridPng(filters));
      const run = {
        method: id, label: method.label, coefficientName: method.coefficientName, coefficient,
        dictionarySize: grid.features, options: runner.options, training: runner.training, ...summary,
        // Passes over one fixed set of patches: distinct samples are at most the set's rows.
        samplesSeen: Math.min(summary.samplesSeen, train.rows), trainSeconds,
        fvu: metrics.fvu(heldOut, xhat), mse: metrics.mse(heldOut, xhat), l0: metrics.l0(active), l0Kind: method.l0Kind,
        deadFraction: metrics.deadFraction(active), ...(await filterMeasures(filters, heldOut)), image,
      };
      runs.push(run);
      io.log(
        `patches ${id} ${method.coefficientName}=${coefficient}: FVU ${run.fvu.toFixed(3)} L0 ${run.l0.toFixed(1)}${method.l0Kind === 'soft' ? ' (soft)' : ''} ` +
          `dead ${run.deadFraction.toFixed(2)} locality ${run.locality.toFixed(3)} orientation ${run.orientation.toFixed(3)} kurtosis ${run.kurtosis.toFixed(1)} | ` +
          `train ${trainSeconds.toFixed(1)} s`,
      );
    } finally {
      runner.model.dispose();
    }
  }
  return {
    recipe: 'shared/REFERENCES.md: china_gray.npy and flower_gray.npy average-pooled 2x2, random 12x12 patches, each patch\'s mean removed, ZCA-whitened with epsilon 0.1 x the mean eigenvalue (held-out patches whitened with the training whitening)',
    train: train.rows,
    heldOut: heldOut.rows,
    features: grid.features,
    random: baseline,
    runs,
  };
}
