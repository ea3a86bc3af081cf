// @ts-check
// The quality suite: the coefficient sweeps, then each method's noise sweep and correlated run
// at its best coefficient, then the natural-image section. Returns results.json's `quality`
// part; nothing here decides what the numbers mean (claims.mjs does, from the records).
import { loadavg } from 'node:os';

import { createRunner, methodLabel, methods } from './methods.mjs';
import { measure, meanRowNorm, toyData } from './evaluation.mjs';
import { naturalImageSection } from './patches.mjs';
import { commitInfo, machineInfo } from './results.mjs';
import { evaluateClaims } from './claims.mjs';

/**
 * @typedef {import('./grid.mjs').Grid} Grid
 * @typedef {import('./grid.mjs').MethodId} MethodId
 * @typedef {import('./evaluation.mjs').ToyData} ToyData
 * @typedef {import('./evaluation.mjs').DataSetting} DataSetting
 * @typedef {import('./evaluation.mjs').Measurements} Measurements
 *
 * @typedef {Measurements & {
 *   id: string,
 *   section: 'sweep' | 'noise' | 'correlated',
 *   method: MethodId,
 *   label: string,
 *   resample: boolean,
 *   coefficientName: string,
 *   coefficient: number,
 *   dictionarySize: number,
 *   data: DataSetting,
 *   options: Record<string, unknown>,
 *   training: Record<string, unknown>,
 *   samplesSeen: number,
 *   sampleEvaluations: number,
 *   steps: number,
 *   finalLoss: number,
 *   trainSeconds: number,
 *   trainCpuSeconds: number,
 *   evalSeconds: number,
 *   backend: string,
 * }} QualityRecord
 */

/** @param {number} seconds */
const clock = (seconds) => {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
};

/**
 * @param {Grid} grid
 * @param {{ log: (line: string) => void, dataDir: string | undefined, outDir: string }} io
 */
export async function runQuality(grid, io) {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const loadAtStart = loadavg()[0];
  const elapsed = () => (performance.now() - started) / 1000;
  const machine = machineInfo();
  const commit = commitInfo(); // at the start: the code that ran, whatever changes while it runs
  /** @type {QualityRecord[]} */
  const records = [];

  const clean = toyData(grid.toy, grid.heldOut);
  const meanNorm = meanRowNorm(clean.heldOut);
  io.log(
    `toy setting: dim ${grid.toy.dim}, ${grid.toy.numFeatures} true features, ${grid.toy.expectedActive} active per sample on average ` +
      `(independent, p = ${grid.toy.expectedActive}/${grid.toy.numFeatures} each), magnitudes U[0,1); E||x|| = ${meanNorm.toFixed(4)}; ` +
      `${grid.heldOut} held-out samples; grid '${grid.name}'`,
  );

  /**
   * @param {'sweep' | 'noise' | 'correlated'} section @param {MethodId} id @param {number} coefficient
   * @param {number} dictionarySize @param {ToyData} data @param {boolean} resample
   */
  async function run(section, id, coefficient, dictionarySize, data, resample) {
    const method = methods[id];
    const runner = createRunner(id, {
      dIn: grid.toy.dim, dHidden: dictionarySize, coefficient, resample, seed: grid.modelSeed, budgets: grid.budgets,
    });
    try {
      const trainStarted = performance.now();
      const cpuStarted = process.cpuUsage();
      const summary = await runner.train(data.stream());
      const trainSeconds = (performance.now() - trainStarted) / 1000;
      const cpu = process.cpuUsage(cpuStarted);
      const evalStarted = performance.now();
      const measured = await measure(method, runner, data);
      const evalSeconds = (performance.now() - evalStarted) / 1000;
      const setting = data.setting;
      /** @type {QualityRecord} */
      const record = {
        id: [section, id + (resample ? '+resample' : ''), `${method.coefficientName}=${coefficient}`, `m=${dictionarySize}`,
          ...(setting.noiseRatio > 0 ? [`noise=${setting.noiseRatio}`] : []), ...(setting.correlated ? ['correlated'] : [])].join('/'),
        section, method: id, label: methodLabel(id, resample), resample,
        coefficientName: method.coefficientName, coefficient, dictionarySize, data: setting,
        options: runner.options, training: runner.training,
        ...measured,
        ...summary,
        trainSeconds, trainCpuSeconds: (cpu.user + cpu.system) / 1e6, evalSeconds, backend: `${runner.model.device} (${machine.cpuKernels} kernels)`,
      };
      records.push(record);
      io.log(
        `[${clock(elapsed())}] ${record.id}: MMCS ${record.mmcs.toFixed(3)} MCC ${record.mcc.toFixed(3)} rec ${record.recovered90.toFixed(2)} ` +
          `FVU ${record.fvu.toFixed(4)} L0 ${record.l0.toFixed(1)} dead ${record.deadFraction.toFixed(3)} | ` +
          `${record.samplesSeen} samples, train ${trainSeconds.toFixed(1)} s (CPU ${record.trainCpuSeconds.toFixed(1)} s), eval ${evalSeconds.toFixed(1)} s`,
      );
      return record;
    } finally {
      runner.model.dispose();
    }
  }

  for (const size of grid.dictionarySizes) {
    for (const sweep of grid.sweeps) {
      for (const coefficient of sweep.coefficients) await run('sweep', sweep.method, coefficient, size, clean, sweep.resample ?? false);
    }
  }

  /** @type {Partial<Record<MethodId, QualityRecord>>} */
  const best = {};
  for (const id of grid.noiseMethods) best[id] = bestOf(records, id, grid.mainSize);
  for (const ratio of grid.noiseRatios.filter((r) => r > 0)) {
    const noisy = toyData(grid.toy, grid.heldOut, { noiseRatio: ratio, meanNorm });
    for (const id of grid.noiseMethods) {
      const b = /** @type {QualityRecord} */ (best[id]);
      await run('noise', id, b.coefficient, grid.mainSize, noisy, false);
    }
  }
  if (grid.correlated) {
    const correlated = toyData(grid.toy, grid.heldOut, { correlated: true });
    for (const id of grid.noiseMethods) await run('correlated', id, /** @type {QualityRecord} */ (best[id]).coefficient, grid.mainSize, correlated, false);
  }

  const patches = await naturalImageSection(grid.patches, { log: (line) => io.log(`[${clock(elapsed())}] ${line}`), dataDir: io.dataDir, outDir: io.outDir });

  const quality = {
    grid: grid.name,
    date: new Date().toISOString(),
    wallSeconds: elapsed(),
    machine,
    commit,
    setting: {
      ...grid.toy,
      probabilities: `each feature independently active with probability ${grid.toy.expectedActive}/${grid.toy.numFeatures} (ToyDataset decay 1), so the number active is Binomial(${grid.toy.numFeatures}, ${grid.toy.expectedActive}/${grid.toy.numFeatures}) with mean ${grid.toy.expectedActive}`,
      magnitudes: 'U[0, 1)',
      features: 'unit vectors drawn from N(0, I) and normalised',
      heldOut: grid.heldOut,
      meanNorm,
      noise: 'per-coordinate Gaussian noise with std = r * E||x|| / sqrt(dim), E||x|| of the noiseless held-out samples',
      correlated: 'ToyDataset correlated: true (Gaussian copula, rank 4, strength 0.5)',
    },
    budgets: grid.budgets,
    dictionarySizes: grid.dictionarySizes,
    mainSize: grid.mainSize,
    sweeps: grid.sweeps,
    noiseRatios: grid.noiseRatios,
    best: Object.fromEntries(Object.entries(best).map(([id, r]) => [id, r?.id])),
    records,
    patches,
    claims: evaluateClaims(records, grid.mainSize),
  };
  quality.wallSeconds = elapsed();
  const cpu = process.cpuUsage(cpuStarted);
  // CPU time counts the work whatever else runs on the machine; wall time depends on both.
  return { ...quality, cpuSeconds: (cpu.user + cpu.system) / 1e6, loadAverage: { start: loadAtStart, end: loadavg()[0] } };
}

/**
 * The sweep run of `id` (without resampling) at dictionary size `size` with the highest MMCS.
 * @param {QualityRecord[]} records @param {MethodId} id @param {number} size
 */
export function bestOf(records, id, size) {
  const runs = records.filter((r) => r.section === 'sweep' && r.method === id && !r.resample && r.dictionarySize === size);
  if (runs.length === 0) throw new Error(`no sweep runs of ${id} at dictionary size ${size}`);
  return runs.reduce((a, b) => (b.mmcs > a.mmcs ? b : a));
}
