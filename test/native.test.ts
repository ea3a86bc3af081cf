// What the addon reports about itself, and that it is safe on any x86-64 CPU.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { backends, FistaCoder, Rica, SparseAutoencoder } from '../lib/index.js';
import { addon, type NativeRica, type NativeSae } from '../lib/native.js';

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
});
