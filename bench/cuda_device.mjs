// @ts-check
// The GPU a CUDA benchmark runs on, from its --device argument ('cuda' or 'cuda:N', as the
// models take it): its name, or why it cannot be used here.
import { backends } from '../dist/index.js';

/**
 * @param {string} device
 * @returns {{ device: `cuda:${number}` | 'cuda', gpu: string } | { reason: string }}
 */
export function cudaDevice(device) {
  const match = /^cuda(?::(0|[1-9]\d*))?$/.exec(device);
  if (match === null) return { reason: `--device must be 'cuda' or 'cuda:N' but received '${device}'` };
  const cuda = backends().find((b) => b.name === 'cuda');
  if (!cuda?.available) return { reason: `CUDA is not available here (${cuda?.reason ?? 'not built'})` };
  const index = Number(match[1] ?? 0);
  const gpus = cuda.gpus ?? [];
  if (index >= gpus.length) return { reason: `there is no GPU ${index}: the CUDA runtime sees ${gpus.length}` };
  return { device: /** @type {`cuda:${number}` | 'cuda'} */ (device), gpu: gpus[index] };
}
