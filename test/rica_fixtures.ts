// Fixtures for the RICA tests and their shared data (natural images).
import { join, resolve } from 'node:path';

import type { Matrix } from '../lib/matrix.js';
import { npyToMatrix, readNpy } from '../lib/npy.js';
import { Random } from '../lib/random.js';
import { Rica, type RicaOptions } from '../lib/rica.js';
import type { RicaProblem } from './rica_reference.js';

/**
 * A model with random weights of uneven row norms (so that the normalisation matters) and
 * random rows x, with its float64 copies for the reference.
 */
export function ricaProblem(
  shape: { dIn: number; dHidden: number; rows: number },
  options: Partial<RicaOptions> & { seed: number; cpuKernels?: string },
): { rica: Rica; x: Matrix; w: Float64Array; problem: RicaProblem } {
  const { dIn, dHidden, rows } = shape;
  const { cpuKernels, ...modelOptions } = options;
  const settings: RicaOptions = { dIn, dHidden, lambda: 0.3, ...modelOptions };
  const rica = cpuKernels === undefined ? new Rica(settings) : Rica._withCpuKernels(settings, cpuKernels);
  const random = new Random(options.seed + 2000);
  const w = new Float32Array(dIn * dHidden);
  for (let j = 0; j < dHidden; j++) {
    const scale = (0.5 + 1.5 * random.uniform()) / Math.sqrt(dIn);
    for (let i = 0; i < dIn; i++) w[j * dIn + i] = scale * random.normal();
  }
  rica._setWeights(w);
  const x = new Float32Array(rows * dIn);
  for (let i = 0; i < x.length; i++) x[i] = random.normal();
  return {
    rica,
    x: { rows, cols: dIn, data: x },
    w: Float64Array.from(w),
    problem: { k: dHidden, d: dIn, lambda: rica.lambda, epsilon: rica.epsilon, normalizeRows: rica.normalizeRows },
  };
}

/**
 * The directory of the project's shared real data (see its README): $SAEKIT_DATA, else
 * ../shared/data beside the repository, where test/npy.test.ts reads it too.
 */
export const sharedDataDir: string = process.env.SAEKIT_DATA || join(resolve(import.meta.dirname, '..'), '..', 'shared', 'data');

/** The two grayscale photographs of the shared data as [height, width] matrices. */
export async function naturalImages(dir: string): Promise<Matrix[]> {
  return Promise.all(['china_gray.npy', 'flower_gray.npy'].map(async (name) => npyToMatrix(await readNpy(join(dir, name)), name)));
}
