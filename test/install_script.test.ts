// The install-time decision (scripts/install.mjs) as a pure function of the environment and
// the tools found: which variant is built, and whether a failed CUDA build may fall back.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { findTools, installPlan, parseArchs, parseCudaSetting } from '../scripts/install.mjs';

const both = { nvcc: '/opt/cuda/bin/nvcc', cmake: '/usr/bin/cmake' };

describe('installPlan', () => {
  it('builds CUDA when nvcc and cmake are found, falling back to the CPU build if that fails', () => {
    expect(installPlan({}, both)).toEqual({ variant: 'cuda', strict: false, why: 'nvcc (/opt/cuda/bin/nvcc) and cmake found' });
  });

  it.each([
    [{ cmake: '/usr/bin/cmake' }, 'nvcc not found'],
    [{ nvcc: '/opt/cuda/bin/nvcc' }, 'cmake not found'],
    [{}, 'nvcc and cmake not found'],
  ])('builds the CPU variant when a tool is missing (%o)', (tools, why) => {
    expect(installPlan({}, tools)).toEqual({ variant: 'cpu', strict: true, why });
  });

  it('SAEKIT_CUDA=0 builds the CPU variant even where CUDA could be built', () => {
    expect(installPlan({ SAEKIT_CUDA: '0' }, both)).toEqual({ variant: 'cpu', strict: true, why: 'SAEKIT_CUDA=0' });
    expect(installPlan({ SAEKIT_CUDA: 'off' }, both).variant).toBe('cpu');
  });

  it('SAEKIT_CUDA=1 builds CUDA with no fall-back, and refuses at once when a tool is missing', () => {
    expect(installPlan({ SAEKIT_CUDA: '1' }, both)).toEqual({ variant: 'cuda', strict: true, why: 'SAEKIT_CUDA=1' });
    expect(installPlan({ SAEKIT_CUDA: '1' }, { cmake: '/usr/bin/cmake' }).error).toBe(
      'SAEKIT_CUDA=1 asks for the CUDA build, but nvcc was not found on PATH (nvcc is also looked for in CUDACXX, CUDA_PATH, CUDA_HOME and /usr/local/cuda)',
    );
    expect(installPlan({ SAEKIT_CUDA: 'true' }, {}).error).toMatch(/^SAEKIT_CUDA=1 asks for the CUDA build, but nvcc and cmake were not found/);
  });

  it('passes SAEKIT_CUDA_ARCHS on in CMake form', () => {
    expect(installPlan({ SAEKIT_CUDA_ARCHS: '90' }, both).archs).toBe('90');
    expect(installPlan({ SAEKIT_CUDA: '1', SAEKIT_CUDA_ARCHS: '8.6, sm_90' }, both)).toEqual({ variant: 'cuda', strict: true, why: 'SAEKIT_CUDA=1', archs: '86;90' });
    expect(installPlan({ SAEKIT_CUDA_ARCHS: '' }, both).archs).toBeUndefined();
  });

  it('refuses values it does not understand, naming them', () => {
    expect(installPlan({ SAEKIT_CUDA: 'maybe' }, both).error).toBe("Expected SAEKIT_CUDA to be 1 or 0 (or unset) but received 'maybe'");
    expect(installPlan({ SAEKIT_CUDA_ARCHS: '75' }, both).error).toBe(
      "Expected SAEKIT_CUDA_ARCHS to list compute capabilities of 8.0 or newer (such as 80,86,89,90) but received '75'",
    );
    expect(installPlan({ SAEKIT_CUDA: '0', SAEKIT_CUDA_ARCHS: 'banana' }, both).error).toBeUndefined();
  });
});

describe('parseCudaSetting and parseArchs', () => {
  it.each([
    [undefined, 'auto'],
    ['', 'auto'],
    [' AUTO ', 'auto'],
    ['1', 'on'],
    ['ON', 'on'],
    ['yes', 'on'],
    ['0', 'off'],
    ['False', 'off'],
    ['2', undefined],
  ])('SAEKIT_CUDA=%o is %o', (value, expected) => {
    expect(parseCudaSetting(value)).toBe(expected);
  });

  it.each([
    ['80,86,89,90', '80;86;89;90'],
    ['90a', '90a'],
    ['compute_120 100', '120;100'],
    ['9.0;8.9', '90;89'],
  ])('SAEKIT_CUDA_ARCHS=%o is %o', (value, expected) => {
    expect(parseArchs(value)).toBe(expected);
  });
});

describe('findTools', () => {
  const dir = mkdtempSync(join(tmpdir(), 'saekit-tools-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const tool = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, '#!/bin/sh\n');
    chmodSync(path, 0o755);
    return path;
  };

  it('finds executables on PATH, and nvcc through CUDACXX or a CUDA home', () => {
    const cmake = tool('cmake');
    const empty = mkdtempSync(join(dir, 'empty-'));
    expect(findTools({ PATH: `${empty}:${dir}`, CUDA_PATH: empty }, [])).toEqual({ nvcc: undefined, cmake });
    const nvcc = tool('nvcc');
    expect(findTools({ PATH: dir, CUDA_PATH: empty }, []).nvcc).toBe(nvcc);
    expect(findTools({ PATH: empty, CUDACXX: nvcc }, [])).toEqual({ nvcc, cmake: undefined });
    expect(findTools({ PATH: dir, CUDACXX: join(empty, 'missing') }, []).nvcc).toBeUndefined();
  });

  it('looks in bin/ of CUDA_PATH and of the default CUDA homes when PATH has no nvcc', () => {
    const home = mkdtempSync(join(dir, 'cuda-'));
    mkdirSync(join(home, 'bin'));
    const nvcc = join(home, 'bin', 'nvcc');
    writeFileSync(nvcc, '#!/bin/sh\n');
    chmodSync(nvcc, 0o755);
    expect(findTools({ PATH: '/nonexistent', CUDA_PATH: home }, []).nvcc).toBe(nvcc);
    expect(findTools({ PATH: '/nonexistent' }, [home]).nvcc).toBe(nvcc);
    expect(findTools({ PATH: '/nonexistent' }, []).nvcc).toBeUndefined();
  });

  it('does not take a file that is not executable', () => {
    const plain = join(dir, 'plain');
    writeFileSync(plain, '');
    expect(findTools({ PATH: '/nonexistent', CUDACXX: plain }, []).nvcc).toBeUndefined();
  });
});
