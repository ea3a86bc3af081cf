// What an embedding service needs: no lost checkpoint when the process dies mid-save, the
// addon in worker threads, and memory that does not grow over long runs.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SparseAutoencoder, ToyDataset } from '../dist/index.js';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'saekit-robust-'));
beforeAll(() => {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')]);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const gc = () => (globalThis as { gc?: () => void }).gc?.();

describe('a process killed in the middle of save()', () => {
  it('always leaves a checkpoint that loads, and it is exactly one of the saved versions', { timeout: 240_000 * scale }, async () => {
    const dir = join(work, 'ckpt');
    const batch = { rows: 16, cols: 8, data: Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)) };
    // The weights after n steps, for comparison (training is deterministic).
    const reference = new SparseAutoencoder({ dIn: 8, dHidden: 32, l1Coeff: 0.01, lr: 0.01, seed: 3, threads: 1 });
    const versions: Float32Array[] = [reference.decoderWeights().data];
    const weightsAfter = async (steps: number) => {
      while (versions.length <= steps) {
        await reference.trainStep(batch);
        versions.push(reference.decoderWeights().data);
      }
      return versions[steps];
    };
    let kills = 0;
    let acknowledged = 0; // the newest save a child reported complete, over all rounds
    for (let round = 0; round < 25 * scale; round++) {
      const child = spawn(process.execPath, [join(root, 'test', 'fuzz', 'save_child.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.on('data', (chunk: Buffer) => {
        const match = [...chunk.toString().matchAll(/saved (\d+)/g)].at(-1);
        if (match) acknowledged = Number(match[1]);
      });
      // Kill at a random moment once saving has started (a few saves in, mid-write often).
      await new Promise((done) => setTimeout(done, 150 + Math.random() * 250));
      child.kill('SIGKILL');
      await new Promise((done) => child.on('exit', done));
      kills++;
      if (acknowledged === 0) continue; // killed before the first save completed
      const loaded = await SparseAutoencoder.load(dir);
      // The last acknowledged save, or the one after it (killed after the swap, before printing).
      expect(loaded.stepsTaken).toBeGreaterThanOrEqual(acknowledged);
      expect(loaded.stepsTaken).toBeLessThanOrEqual(acknowledged + 1);
      // Exactly that version's parameters: no mix of old and new files.
      expect(loaded.decoderWeights().data).toEqual(await weightsAfter(loaded.stepsTaken));
      acknowledged = loaded.stepsTaken;
      loaded.dispose();
    }
    expect(kills).toBe(25 * scale);
    reference.dispose();
  });
});

describe('worker threads', () => {
  it('two models trained at once in two workers give the same results as one after the other', { timeout: 120_000 }, async () => {
    const run = (seed: number) =>
      new Promise<Float32Array>((done, fail) => {
        const worker = new Worker(join(root, 'test', 'fuzz', 'train_worker.mjs'), { workerData: { seed, steps: 300 } });
        worker.once('message', done);
        worker.once('error', fail);
      });
    const [a, b] = await Promise.all([run(1), run(2)]);
    const aAlone = await run(1);
    const bAlone = await run(2);
    expect(a).toEqual(aAlone);
    expect(b).toEqual(bAlone);
    expect(a).not.toEqual(b);
  });
});

// Sanitizers quarantine freed memory, so resident memory says nothing about leaks there.
const sanitized = process.env.SAEKIT_SANITIZED === '1';
// `npm run soak` (SAEKIT_SOAK=1): the same checks at ten times the size, with the same bounds.
const scale = process.env.SAEKIT_SOAK === '1' ? 10 : 1;

describe.skipIf(sanitized)('memory over long runs', () => {
  it('thousands of steps and encodes, and hundreds of models disposed or dropped, keep resident memory bounded', { timeout: 240_000 * scale }, async () => {
    expect((globalThis as { gc?: unknown }).gc, 'vitest runs with --expose-gc').toBeDefined();
    const resident = () => {
      gc();
      return process.memoryUsage().rss / 2 ** 20;
    };
    const toy = new ToyDataset({ dim: 32, numFeatures: 64, expectedActive: 3, seed: 1 });
    const x = toy.sample(256).x;
    // Warm up allocators and caches before the baseline.
    const warm = new SparseAutoencoder({ dIn: 32, dHidden: 256, l1Coeff: 0.1, seed: 1 });
    await warm.fit(toy.batches(256), { steps: 500 });
    for (let i = 0; i < 100; i++) {
      await warm.encode(x, { format: i % 2 ? 'sparse' : 'dense' });
      await warm.reconstruct(x);
    }
    const start = resident();

    await warm.fit(toy.batches(256), { steps: 3000 * scale });
    for (let i = 0; i < 500 * scale; i++) {
      await warm.encode(x, { format: i % 2 ? 'sparse' : 'dense' });
      await warm.reconstruct(x);
    }
    warm.dispose();
    const afterTraining = resident();

    // Each model holds about 7 * 64 * 1024 floats (1.8 MB) and a worker thread. The allocator
    // keeps some freed memory for reuse, so models are made in two rounds and the second is
    // measured against the first: 300 leaked models would add 540 MB.
    const models = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const sae = new SparseAutoencoder({ dIn: 64, dHidden: 1024, l1Coeff: 0.1, seed: i });
        await sae.trainStep({ rows: 8, cols: 64, data: new Float32Array(512).fill(0.1) });
        // Half disposed, half dropped: the finaliser frees a dropped model's native memory.
        if (i % 2 === 0) sae.dispose();
        if (i % 10 === 0) await new Promise((done) => setImmediate(done));
      }
      for (let i = 0; i < 4; i++) {
        gc();
        await new Promise((done) => setImmediate(done));
      }
    };
    await models(100);
    const afterFirstRound = resident();
    await models(300 * scale);
    const end = resident();
    console.log(
      `resident memory: ${start.toFixed(0)} MB at start, ${afterTraining.toFixed(0)} MB after ${3000 * scale} steps and ${1000 * scale} encodes; ` +
        `${afterFirstRound.toFixed(0)} MB after 100 models, ${end.toFixed(0)} MB after ${300 * scale} more`,
    );
    expect(afterTraining - start).toBeLessThan(32);
    expect(end - afterFirstRound).toBeLessThan(48);
  });
});
