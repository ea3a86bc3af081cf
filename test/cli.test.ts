// The command line, end to end on a small .npy in a temporary directory: train, eval, encode,
// resume, Ctrl-C, and the exit codes of bad command lines.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadNpy, saveNpy, SparseAutoencoder, ToyDataset } from '../lib/index.js';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const work = mkdtempSync(join(tmpdir(), 'saekit-cli-'));
const acts = join(work, 'acts.npy');
const toy = new ToyDataset({ dim: 16, numFeatures: 32, expectedActive: 3, seed: 1 });

function saekit(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: work });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  // The CLI runs from dist/: build it from the current sources.
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')]);
  await saveNpy(acts, toy.sample(3000).x);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('saekit train / eval / encode', () => {
  it('trains with checkpoints, evaluates, encodes and resumes', async () => {
    const out = join(work, 'sae');
    const train = saekit('train', '--data', acts, '--d-hidden', '64', '--l1', '0.3', '--lr', '0.003', '--steps', '300', '--batch-size', '128', '--checkpoint-every', '100', '--out', out);
    expect(train.stderr).toContain('trained 300 steps');
    expect(train.stderr).toMatch(/step 300\/300 \| \d+ samples\/s \| loss [\d.]+ \| L0 [\d.]+ \| ETA \d+ s/);
    expect(train.code).toBe(0);
    const sae = await SparseAutoencoder.load(out);
    expect([sae.dIn, sae.dHidden, sae.stepsTaken, sae.l1Coeff]).toEqual([16, 64, 300, 0.3]);

    const json = saekit('eval', '--sae', out, '--data', acts, '--json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.samples).toBe(3000);
    expect(report.fvu).toBeGreaterThan(0);
    expect(report.fvu).toBeLessThan(0.5);
    expect(report.l0).toBeGreaterThan(0);
    expect(report.deadFraction).toBeGreaterThanOrEqual(0);
    const text = saekit('eval', '--sae', out, '--data', acts);
    expect(text.stdout).toMatch(/^samples +3000\nMSE +[\d.e-]+\nFVU +[\d.e-]+\nL0 +[\d.]+\ndead features +[\d.]+%\ndensity +min/);

    const codesPath = join(work, 'codes.npy');
    expect(saekit('encode', '--sae', out, '--data', acts, '--out', codesPath).code).toBe(0);
    const codes = await loadNpy(codesPath);
    const x = await loadNpy(acts);
    expect([codes.rows, codes.cols]).toEqual([3000, 64]);
    const direct = await sae.encode({ rows: 10, cols: 16, data: x.data.subarray(0, 160) });
    expect(codes.data.subarray(0, 640)).toEqual(direct.data);

    const resumed = saekit('train', '--data', acts, '--steps', '400', '--batch-size', '128', '--out', out, '--resume');
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('resuming at step 300');
    expect((await SparseAutoencoder.load(out)).stepsTaken).toBe(400);
    sae.dispose();
  });

  it('trains a TopK model with schedules and resampling from the command line', async () => {
    const out = join(work, 'topk');
    const run = saekit('train', '--data', acts, '--d-hidden', '48', '--activation', 'topk', '--k', '3', '--steps', '60', '--batch-size', '100',
      '--checkpoint-every', '25', '--lr-warmup-steps', '10', '--lr-decay-fraction', '0.2', '--resample-every', '20', '--init-decoder-bias', 'mean', '--out', out);
    expect(run.code).toBe(0);
    const sae = await SparseAutoencoder.load(out);
    expect([sae.activation, sae.k, sae.stepsTaken]).toEqual(['topk', 3, 60]);
    sae.dispose();
    const missing = saekit('train', '--data', acts, '--d-hidden', '48', '--activation', 'topk', '--steps', '5', '--out', join(work, 'nok'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing --k');
  });

  it('Ctrl-C saves a checkpoint and exits with 130', async () => {
    const out = join(work, 'interrupted');
    const child = spawn(process.execPath, [cli, 'train', '--data', acts, '--d-hidden', '64', '--l1', '0.1', '--steps', '1000000', '--batch-size', '64', '--out', out], { cwd: work });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (stderr.includes('step ') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(stderr).toMatch(/interrupted at step \d+: checkpoint saved to/);
    expect(code).toBe(130);
    const sae = await SparseAutoencoder.load(out);
    expect(sae.stepsTaken).toBeGreaterThan(0);
    sae.dispose();
  });

  it.each([
    [['train', '--data', 'a.npy', '--steps', '10', '--out', 'o', '--frobnicate'], "saekit train: Unknown option '--frobnicate'"],
    [['train', '--data', 'a.npy', '--steps', 'ten', '--out', 'o'], "saekit train: --steps expects a positive integer but received 'ten' (see saekit train --help)"],
    [['train', '--steps', '10', '--out', 'o'], 'saekit train: missing --data (2-D float .npy file of activations) (see saekit train --help)'],
    [['train', '--data', 'a.npy', '--steps', '10', '--out', 'o', '--device', 'tpu'], "saekit train: --device expects cpu, cuda or cuda:N (N a GPU index) but received 'tpu' (see saekit train --help)"],
    [['train', '--data', 'a.npy', '--steps', '10', '--out', 'o', '--device', 'cuda:x'], "saekit train: --device expects cpu, cuda or cuda:N (N a GPU index) but received 'cuda:x' (see saekit train --help)"],
    [['eval', '--sae', 'x'], 'saekit eval: missing --data (2-D float .npy file of activations) (see saekit eval --help)'],
    [['fly'], "saekit: unknown command 'fly' (commands: train, eval, encode, demo) (see saekit --help)"],
  ])('%j exits with 2 and one line', (args, message) => {
    const result = saekit(...args);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(message);
  });

  it('refuses to overwrite a checkpoint without --resume, and to resume nothing', () => {
    const out = join(work, 'sae'); // written by the first test
    const again = saekit('train', '--data', acts, '--d-hidden', '8', '--l1', '0.1', '--steps', '5', '--out', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already holds a checkpoint: pass --resume to continue it, or choose another --out');
    const nothing = saekit('train', '--data', acts, '--steps', '5', '--out', join(work, 'none'), '--resume');
    expect(nothing.code).toBe(2);
    expect(existsSync(join(work, 'none'))).toBe(false);
  });

  it('runtime failures exit with 1 and say why', () => {
    const missing = saekit('eval', '--sae', join(work, 'nowhere'), '--data', acts);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`No checkpoint at ${join(work, 'nowhere')}`);
  });

  it('--help works for every command', () => {
    for (const command of ['train', 'eval', 'encode', 'demo']) {
      const help = saekit(command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: saekit ${command}`);
    }
    expect(saekit('--help').stdout).toContain('Commands:');
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
  });
});
