// @ts-check
// One runner per method behind one interface. Every model is a saekit DictionaryModel
// (fit / encode / dictionary / dispose); a runner adds what differs: how the model is built
// from a coefficient, how it consumes its budget of training data, and how it reconstructs
// (an SAE has a decoder bias; FISTA and RICA reconstruct as codes times dictionary).
import { availableParallelism } from 'node:os';

import { FistaDictionary, Rica, SparseAutoencoder } from '../../dist/index.js';
import { addon } from '../../dist/native.js';

/**
 * @typedef {import('../../dist/index.js').Matrix} Matrix
 * @typedef {import('../../dist/index.js').DictionaryModel} DictionaryModel
 * @typedef {import('./grid.mjs').MethodId} MethodId
 * @typedef {import('./grid.mjs').Budgets} Budgets
 *
 * @typedef {object} MethodInfo
 * @property {MethodId} id
 * @property {string} label             for legends and tables
 * @property {'sae' | 'fista' | 'rica'} family   which budget applies
 * @property {string} coefficientName    the option the sweep varies
 * @property {string} coefficientLabel   axis title, with its unit
 * @property {boolean} signedCodes       codes may be negative: cosines are compared as |cos|
 * @property {'exact' | 'soft'} l0Kind   soft: dense codes, counted active where |code| > sqrt(epsilon)
 *
 * @typedef {object} TrainingSummary
 * @property {number} samplesSeen        distinct training samples
 * @property {number} sampleEvaluations  samples processed, counting repeats (L-BFGS evaluates every row each time)
 * @property {number} steps              optimizer steps (SAE / FISTA batches, L-BFGS iterations)
 * @property {number} finalLoss          the model's own objective at the last step
 *
 * @typedef {{ batches(size: number): AsyncIterable<Matrix> | Iterable<Matrix>, sample(n: number): { x: Matrix } }} TrainingSource
 *   fresh batches (SAE, FISTA) or a fixed training set (RICA) of one data setting
 *
 * @typedef {object} Runner
 * @property {DictionaryModel} model
 * @property {Record<string, unknown>} options       the model's options, as recorded
 * @property {Record<string, unknown>} training      how it was trained, as recorded
 * @property {(source: TrainingSource) => Promise<TrainingSummary>} train
 * @property {(x: Matrix, codes: Matrix) => Promise<Matrix>} reconstruct
 * @property {(codes: Matrix) => Matrix} active      codes whose non-zeros are the units counted active
 */

/** @type {Record<MethodId, MethodInfo>} */
export const methods = {
  'sae-untied': {
    id: 'sae-untied', label: 'SAE untied (ReLU + L1)', family: 'sae', coefficientName: 'l1Coeff',
    coefficientLabel: 'L1 coefficient (log scale)', signedCodes: false, l0Kind: 'exact',
  },
  'sae-tied': {
    id: 'sae-tied', label: 'SAE tied (ReLU + L1)', family: 'sae', coefficientName: 'l1Coeff',
    coefficientLabel: 'L1 coefficient (log scale)', signedCodes: false, l0Kind: 'exact',
  },
  'sae-topk': {
    id: 'sae-topk', label: 'SAE TopK', family: 'sae', coefficientName: 'k',
    coefficientLabel: 'k, units kept per sample (log scale)', signedCodes: false, l0Kind: 'exact',
  },
  'sae-batchtopk': {
    id: 'sae-batchtopk', label: 'SAE BatchTopK', family: 'sae', coefficientName: 'k',
    coefficientLabel: 'k, mean units kept per sample (log scale)', signedCodes: false, l0Kind: 'exact',
  },
  fista: {
    id: 'fista', label: 'FISTA dictionary learning', family: 'fista', coefficientName: 'lambda',
    coefficientLabel: 'lambda, L1 weight (log scale)', signedCodes: false, l0Kind: 'exact',
  },
  rica: {
    id: 'rica', label: 'RICA (L-BFGS)', family: 'rica', coefficientName: 'lambda',
    coefficientLabel: 'lambda, sparsity weight (log scale)', signedCodes: true, l0Kind: 'soft',
  },
};

/** The label of a run's method, with its variant. @param {MethodId} id @param {boolean} resample */
export function methodLabel(id, resample) {
  return resample ? `${methods[id].label} + resampling` : methods[id].label;
}

/** codes [rows, k] times dictionary [k, d], natively. @param {Matrix} codes @param {Matrix} dictionary @returns {Promise<Matrix>} */
async function multiply(codes, dictionary) {
  const out = new Float32Array(codes.rows * dictionary.cols);
  await addon.matmul(codes.data, false, dictionary.data, codes.rows, codes.cols, dictionary.cols, out, availableParallelism());
  return { rows: codes.rows, cols: dictionary.cols, data: out };
}

/** @param {Matrix} codes */
const exactlyActive = (codes) => codes;

/**
 * @param {MethodId} id
 * @param {{ dIn: number, dHidden: number, coefficient: number, resample?: boolean, seed: number, budgets: Budgets }} o
 * @returns {Runner}
 */
export function createRunner(id, o) {
  const { dIn, dHidden, coefficient, seed, budgets } = o;
  switch (id) {
    case 'sae-untied':
    case 'sae-tied':
    case 'sae-topk':
    case 'sae-batchtopk': {
      const { samples, batchSize, lr } = budgets.sae;
      const steps = Math.max(1, Math.round(samples / batchSize));
      /** @type {import('../../dist/index.js').SparseAutoencoderOptions} */
      const options =
        id === 'sae-topk' ? { dIn, dHidden, activation: 'topk', k: coefficient, lr, seed }
          : id === 'sae-batchtopk'
            // The inference threshold is tracked from half-way, so that short runs have one too.
            ? { dIn, dHidden, activation: 'batchtopk', k: coefficient, thresholdStartStep: Math.min(1000, Math.floor(steps / 2)), lr, seed }
            : { dIn, dHidden, l1Coeff: coefficient, tied: id === 'sae-tied', lr, seed };
      const model = new SparseAutoencoder(options);
      // Resampling through the first 3/4 of the run, then none, so resampled features have time to settle.
      const resampleSteps = o.resample ? Math.floor((steps * 3) / 4) : 0;
      const resampleEvery = Math.max(1, Math.floor(steps / 8));
      const resample = { every: resampleEvery, window: resampleEvery * batchSize };
      return {
        model,
        options: { ...options, threads: model.threads },
        training: {
          optimizer: 'adam', batchSize, steps, samples: steps * batchSize, freshSamples: true,
          ...(o.resample ? { resample: { ...resample, untilStep: resampleSteps } } : {}),
        },
        async train(source) {
          const records = [];
          if (resampleSteps > 0) records.push(...(await model.fit(source.batches(batchSize), { steps: resampleSteps, resample })));
          records.push(...(await model.fit(source.batches(batchSize), { steps: steps - resampleSteps })));
          return { samplesSeen: steps * batchSize, sampleEvaluations: steps * batchSize, steps, finalLoss: records[records.length - 1].loss };
        },
        reconstruct: (x) => model.reconstruct(x),
        active: exactlyActive,
      };
    }
    case 'fista': {
      const { samples, batchSize } = budgets.fista;
      const steps = Math.max(1, Math.round(samples / batchSize));
      const options = { dIn, dHidden, lambda: coefficient, seed };
      const model = new FistaDictionary(options);
      return {
        model,
        options: { ...options, nonNegative: model.nonNegative, maxIter: model.maxIter, tol: model.tol, threads: model.threads },
        training: { optimizer: 'online block coordinate descent on FISTA codes', batchSize, steps, samples: steps * batchSize, freshSamples: true },
        async train(source) {
          const records = await model.fit(source.batches(batchSize), { steps });
          return { samplesSeen: steps * batchSize, sampleEvaluations: steps * batchSize, steps, finalLoss: records[records.length - 1].loss };
        },
        reconstruct: async (x, codes) => multiply(codes, model.dictionary()),
        active: exactlyActive,
      };
    }
    case 'rica': {
      const { samples, iterations } = budgets.rica;
      const options = { dIn, dHidden, lambda: coefficient, seed };
      const model = new Rica(options);
      const threshold = Math.sqrt(model.epsilon);
      return {
        model,
        options: { ...options, epsilon: model.epsilon, normalizeRows: model.normalizeRows, optimizer: model.optimizer, threads: model.threads },
        training: { optimizer: 'L-BFGS (full batch)', samples, maxIterations: iterations, freshSamples: false },
        async train(source) {
          const x = source.sample(samples).x;
          const records = await model.fit(x, { steps: iterations });
          // L-BFGS may stop before its first iteration when the start already meets its test.
          const last = records.at(-1);
          return { samplesSeen: samples, sampleEvaluations: (last?.evaluations ?? 0) * samples, steps: records.length, finalLoss: last?.loss ?? NaN };
        },
        reconstruct: async (x, codes) => multiply(codes, model.dictionary()),
        active: (codes) => ({ rows: codes.rows, cols: codes.cols, data: codes.data.map((v) => (Math.abs(v) > threshold ? 1 : 0)) }),
      };
    }
    default:
      throw new RangeError(`Unknown method ${id}`);
  }
}
