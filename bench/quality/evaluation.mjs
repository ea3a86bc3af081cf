// @ts-check
// The data every run of one setting shares (true features, held-out samples, the training
// stream) and the measurements taken of a trained model, all on the same held-out samples.
import { ToyDataset, metrics } from '../../dist/index.js';

/**
 * @typedef {import('../../dist/index.js').Matrix} Matrix
 * @typedef {import('./methods.mjs').MethodInfo} MethodInfo
 * @typedef {import('./methods.mjs').Runner} Runner
 *
 * @typedef {object} DataSetting
 * @property {number} noiseRatio   r: per-coordinate noise std = r * E||x|| / sqrt(dim), E||x|| of the noiseless data
 * @property {number} noiseStd
 * @property {boolean} correlated
 *
 * @typedef {object} ToyData
 * @property {DataSetting} setting
 * @property {Matrix} truth      [numFeatures, dim] the true feature directions
 * @property {Matrix} heldOut    the first `heldOut` samples of this setting's stream; no run trains on them
 * @property {() => ToyDataset} stream  a fresh stream positioned just after the held-out samples
 *
 * @typedef {object} Measurements
 * @property {number} mmcs           mean over true features of the best cosine with a learned direction (|cos| for signed codes)
 * @property {'signed' | 'absolute'} cosine
 * @property {number} mcc            mean |cos| of the one-to-one Hungarian matching
 * @property {number} recovered90    fraction of true features whose best cosine is >= 0.9
 * @property {number} fvu            on the held-out samples
 * @property {number} mse            on the held-out samples, per coordinate
 * @property {number} l0             mean active units per held-out sample
 * @property {'exact' | 'soft'} l0Kind
 * @property {number} deadFraction   learned units never active on the held-out samples
 */

/**
 * @param {{ dim: number, numFeatures: number, expectedActive: number, seed: number }} toy
 * @param {number} heldOutRows
 * @param {{ noiseRatio?: number, correlated?: boolean, meanNorm?: number }} [variation]
 * @returns {ToyData}
 */
export function toyData(toy, heldOutRows, variation = {}) {
  const noiseRatio = variation.noiseRatio ?? 0;
  const correlated = variation.correlated ?? false;
  if (noiseRatio > 0 && variation.meanNorm === undefined) throw new Error('noise needs the mean norm of the noiseless data');
  const noiseStd = noiseRatio > 0 ? (noiseRatio * /** @type {number} */ (variation.meanNorm)) / Math.sqrt(toy.dim) : 0;
  const options = { ...toy, ...(noiseStd > 0 ? { noise: noiseStd } : {}), ...(correlated ? { correlated: true } : {}) };
  const first = new ToyDataset(options);
  const heldOut = first.sample(heldOutRows).x;
  return {
    setting: { noiseRatio, noiseStd, correlated },
    truth: first.features,
    heldOut,
    stream() {
      const toyStream = new ToyDataset(options);
      toyStream.sample(heldOutRows);
      return toyStream;
    },
  };
}

/** E||x|| over the rows. @param {Matrix} x */
export function meanRowNorm(x) {
  let total = 0;
  for (let r = 0; r < x.rows; r++) {
    let sq = 0;
    for (let c = 0; c < x.cols; c++) sq += x.data[r * x.cols + c] ** 2;
    total += Math.sqrt(sq);
  }
  return total / x.rows;
}

/**
 * @param {MethodInfo} method @param {Runner} runner @param {ToyData} data
 * @returns {Promise<Measurements>}
 */
export async function measure(method, runner, data) {
  const dictionary = runner.model.dictionary();
  const absolute = method.signedCodes;
  const codes = await runner.model.encode(data.heldOut);
  const xhat = await runner.reconstruct(data.heldOut, codes);
  const active = runner.active(codes);
  return {
    mmcs: metrics.mmcs(dictionary, data.truth, { absolute }),
    cosine: absolute ? 'absolute' : 'signed',
    mcc: metrics.mcc(dictionary, data.truth),
    recovered90: metrics.recoveredFraction(dictionary, data.truth, 0.9, { absolute }),
    fvu: metrics.fvu(data.heldOut, xhat),
    mse: metrics.mse(data.heldOut, xhat),
    l0: metrics.l0(active),
    l0Kind: method.l0Kind,
    deadFraction: metrics.deadFraction(active),
  };
}
