// What the addon reports about itself, and that it is safe on any x86-64 CPU.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { backends, FistaCoder, FistaDictionary, Rica, SparseAutoencoder } from '../lib/index.js';
import { addon, type NativeFista, type NativeRica, type NativeSae } from '../lib/native.js';

const cpuFlags = existsSync('/proc/cpuinfo')
  ? (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [])
  : [];

describe('the native addon', () => {
  it('reports the CPU backend as built and available', () => {
    expect(backends()).toContainEqual({ name: 'cpu', built: true, available: true });
    const cuda = backends().find((b) => b.name === 'cuda');
    expect(cuda).toBeDefined();
    if (!cuda!.available) expect(cuda!.reason).toMatch(/\S/);
  });

  it('uses AVX2 kernels where the CPU has AVX2 and FMA, and always has the portable set', () => {
    const sets = addon.cpuKernelSets();
    expect(sets[0]).toBe('generic');
    if (process.arch === 'x64' && cpuFlags.includes('avx2') && cpuFlags.includes('fma')) {
      expect(sets).toContain('avx2');
      if (process.env.SAEKIT_SIMD === undefined) expect(addon.cpuKernels()).toBe('avx2');
    }
  });

  it('refuses a kernel set the CPU cannot run', () => {
    expect(() => SparseAutoencoder._withCpuKernels({ dIn: 2, dHidden: 2, l1Coeff: 0 }, 'avx9000')).toThrow(
      new RangeError("CPU kernel set 'avx9000' is not available on this CPU"),
    );
  });

  // A function compiled for AVX2 that the linker let other code call would crash CPUs without
  // it. Only the dispatched kernels may contain 256-bit (ymm) instructions.
  it.skipIf(process.arch !== 'x64')('keeps AVX instructions inside the dispatched AVX2 kernels', () => {
    const binary = resolve(import.meta.dirname, '..', 'build', 'Release', 'saekit.node');
    let listing: string;
    try {
      listing = execFileSync('objdump', ['-d', '--no-show-raw-insn', binary], { encoding: 'utf8', maxBuffer: 1 << 28 });
    } catch {
      return; // no objdump here: nothing to inspect
    }
    const withYmm = new Map<string, number>();
    for (const fn of listing.split(/\n(?=[0-9a-f]+ <)/)) {
      const name = fn.match(/^[0-9a-f]+ <([^>]+)>:/)?.[1];
      if (name && /%ymm/.test(fn)) withYmm.set(name, (withYmm.get(name) ?? 0) + 1);
    }
    const kernels = ['microkernel', 'dot', 'axpy', 'adam', 'extractAbove', 'reluBias', 'firstNonFinite', 'firstAbove', 'combineRows', 'fistaStep', 'largestGradient', 'workingSetPriorities',
      'indicesAtOrBelow', 'subtractRows', 'fistaStepSums'];
    for (const [name, copies] of withYmm) {
      expect(name, `${name} uses ymm registers`).toMatch(new RegExp(`^_ZN6saekit3cpu12_GLOBAL__N_1\\d+(${kernels.join('|')})E`));
      expect(copies).toBe(1);
    }
    expect(withYmm.size).toBe(kernels.length);
  });
});

describe('the native classes and functions, called directly', () => {
  // The TypeScript layer checks data.length === rows * cols exactly; the addon re-checks it in
  // int64, where rows 2^52 times 4096 columns wraps to 0 and would pass with an empty array,
  // then read and write far beyond it.
  const rows = 2 ** 52;
  const none = new Float32Array(0);
  const beyond = /to be at most 2\^53 - 1 elements/;
  const nativeOf = <N>(model: object): N => (model as { usable(): N }).usable();

  it('refuses row counts whose element count no typed array holds, as a RangeError, before any work', async () => {
    const sae = new SparseAutoencoder({ dIn: 4096, dHidden: 8, l1Coeff: 0, seed: 1 });
    const rica = new Rica({ dIn: 4096, dHidden: 8, lambda: 0.1, seed: 1 });
    const coder = new FistaCoder({ dictionary: { rows: 8, cols: 4096, data: new Float32Array(8 * 4096).fill(1 / 64) }, lambda: 0.1 });
    const calls: Array<[string, () => unknown]> = [
      ['SAE trainStep', () => nativeOf<NativeSae>(sae).trainStep(none, rows)],
      ['SAE encode', () => nativeOf<NativeSae>(sae).encode(none, rows, none)],
      ['SAE reconstruct', () => nativeOf<NativeSae>(sae).reconstruct(none, rows, none)],
      ['RICA encode', () => nativeOf<NativeRica>(rica).encode(none, rows, none)],
      ['RICA adamStep', () => nativeOf<NativeRica>(rica).adamStep(none, rows)],
      ['FISTA encode', () => (nativeOf(coder) as { encode(...args: unknown[]): unknown }).encode(none, rows, undefined, none)],
      ['matmul', () => addon.matmul(none, false, none, rows, 4096, 1, none, 1)],
      ['cosineSimilarity', () => addon.cosineSimilarity(none, rows, none, 1, 4096, none, 1)],
    ];
    try {
      for (const [name, call] of calls) {
        expect(call, name).toThrow(RangeError);
        expect(call, name).toThrow(beyond);
      }
    } finally {
      sae.dispose();
      rica.dispose();
      coder.dispose();
    }
  });

  // Index lists are checked when a call is made and used by its job on another thread; what
  // the caller writes to them in between must not reach the job (it did: out-of-bounds reads
  // and writes).
  it('a job works on the index lists as they were at the call, whatever the caller writes to them after', async () => {
    const sae = new SparseAutoencoder({ dIn: 64, dHidden: 64, l1Coeff: 0, seed: 1 });
    const native = nativeOf<NativeSae>(sae);
    const rows = 20_000;
    const indptr = () => Int32Array.from({ length: rows + 1 }, (_, i) => i);
    const indices = () => Int32Array.from({ length: rows }, (_, i) => i % 64);
    const values = new Float32Array(rows).fill(1);
    const expected = new Float32Array(rows * 64);
    await native.decodeSparse(indptr(), indices(), values, rows, expected);
    const [changedIndptr, changedIndices, out] = [indptr(), indices(), new Float32Array(rows * 64)];
    const decoding = native.decodeSparse(changedIndptr, changedIndices, values, rows, out);
    changedIndices.fill(2 ** 30);
    changedIndptr.fill(2 ** 30);
    await decoding;
    expect(out).toEqual(expected);

    const features = Int32Array.from([3, 5, 7]);
    const resampling = native.resample(features, new Float32Array(64 * 500).map((_, i) => Math.sin(i)), 500, 1);
    features.fill(2 ** 30);
    expect(await resampling).toBe(3);
    sae.dispose();

    const dictionary = new FistaDictionary({ dIn: 32, dHidden: 64, lambda: 0.1, seed: 1 });
    const rowIds = Int32Array.from({ length: 200 }, (_, i) => i);
    const step = nativeOf<NativeFista>(dictionary).learnStep(new Float32Array(32 * 200).map((_, i) => Math.cos(i)), 200, rowIds);
    rowIds.fill(-1);
    expect((await step).l0).toBeGreaterThan(0);
    dictionary.dispose();
  });

  it('takes no array memory before every getter and list element has been read (a getter may detach an array)', async () => {
    const detach = (array: ArrayBufferView) => void structuredClone(array.buffer, { transfer: [array.buffer as ArrayBuffer] });
    const spec = {
      dim: 16,
      numFeatures: 32,
      features: new Float32Array(16 * 32).fill(0.25),
      probabilities: new Float64Array(32).fill(0.5),
      rank: 0,
      loadings: null,
      thresholds: null,
      noise: 0,
      magnitude: 'uniform' as const,
      seed: 1,
    };
    Object.defineProperty(spec, 'threads', { enumerable: true, get: () => (detach(spec.features), 1) });
    expect(() => addon.toySample(spec as never, 0, 4, new Float32Array(64), null)).toThrow('Expected 512 elements in features but received 0');

    const f64 = (n: number) => new Float64Array(n).fill(1);
    const g = f64(4);
    const y: Float64Array[] = [];
    Object.defineProperty(y, 0, { enumerable: true, get: () => (detach(g), f64(4)) });
    expect(() => addon.lbfgsDirection(g, [f64(4)], y, f64(1), 1, f64(4), 1)).toThrow('Expected 0 elements in s[0] but received 4');
  });

  it('refuses FISTA row ids whose warm-start slots would not fit in memory, as a RangeError', async () => {
    const dictionary = new FistaDictionary({ dIn: 8, dHidden: 16, lambda: 0.1, seed: 1 });
    const step = nativeOf<NativeFista>(dictionary).learnStep(new Float32Array(8).fill(0.3), 1, Int32Array.from([2 ** 31 - 1]));
    await expect(step).rejects.toThrow(RangeError);
    await expect(nativeOf<NativeFista>(dictionary).learnStep(new Float32Array(8).fill(0.3), 1, Int32Array.from([0]))).resolves.toBeDefined();
    dictionary.dispose();
  });
});
