// Fuzzing the public API in a child process: a crash is reported with the input that caused it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { backends } from '../lib/index.js';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'saekit-fuzz-test-'));
beforeAll(() => {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')]);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

// `npm run soak` (SAEKIT_SOAK=1): ten times the calls.
const calls = process.env.SAEKIT_SOAK === '1' ? 50_000 : 5000;

function fuzz(seed: number, count: number, msPerCall: number, env: Record<string, string> = {}): void {
  const log = join(work, `calls-${seed}.log`);
  // In a scratch directory: a fuzzed save('abc') or saveNpy('3') writes relative to it.
  const run = spawnSync(process.execPath, [join(root, 'test', 'fuzz', 'fuzz_worker.mjs'), String(seed), String(count), log], {
    encoding: 'utf8',
    timeout: msPerCall * count,
    cwd: work,
    env: { ...process.env, ...env },
  });
  if (run.status !== 0) {
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    throw new Error(`the fuzz process died (status ${run.status}, signal ${run.signal}) during: ${lines.at(-1)}\n${run.stderr.slice(-2000)}`);
  }
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as { calls: number; succeeded: number; violations: string[]; distinctMessages: number };
  expect(summary.violations).toEqual([]);
  expect(summary.calls).toBeGreaterThanOrEqual(count);
  expect(summary.distinctMessages).toBeGreaterThan(50);
  // Not only rejections: a fair share of calls get through validation and run natively.
  expect(summary.succeeded).toBeGreaterThan(count / 10);
}

describe('fuzzing the public API', () => {
  it.each([1, 2])(`seed %i: ${calls.toLocaleString('en')} calls, each succeeds or throws an Error with a message, and the process survives`, { timeout: 60 * calls }, (seed) => {
    fuzz(seed, calls, 56);
  });
});

// The same calls on the CUDA backends, where they can run (a GPU, or the GPU emulator's addon):
// every model that passes validation on 'cuda' or on the last GPU.
const cuda = backends().find((b) => b.name === 'cuda')!;
const lastGpu = `cuda:${(cuda.gpus?.length ?? 1) - 1}`;
describe.skipIf(!cuda.available)('fuzzing the CUDA backends', () => {
  it(`seed 3: ${calls.toLocaleString('en')} calls on 'cuda' and '${lastGpu}', each succeeds or throws an Error with a message, and the process survives`, { timeout: 300 * calls }, () => {
    fuzz(3, calls, 280, { FUZZ_DEVICES: `cuda,${lastGpu}` });
  });
});
