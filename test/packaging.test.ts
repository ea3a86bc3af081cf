// The package as a consumer gets it: `npm pack`, install the tarball into a fresh project
// (which compiles the addon there), then import it from ESM and type-check a TypeScript user.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'saekit-pack-'));

function run(command: string, args: string[], cwd: string): string {
  try {
    // One CUDA architecture (when the install builds CUDA) is enough to check the packaging.
    const env = { ...process.env, npm_config_loglevel: 'error', SAEKIT_CUDA_ARCHS: process.env.SAEKIT_CUDA_ARCHS ?? '90' };
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

describe('packaging', () => {
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('installs from the packed tarball and works from ESM and TypeScript', { timeout: 600_000 }, () => {
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root)) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = packed[0].files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'binding.gyp', 'CMakeLists.txt', 'scripts/install.mjs', 'native/sources.gypi', 'native/cpu/sae_cpu.cc', 'native/cuda/sae_cuda.cu']),
    );
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/'))).toBe(false);

    const project = join(work, 'consumer');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed[0].filename)], project);
    expect(readdirSync(join(project, 'node_modules', 'saekit', 'build', 'Release'))).toContain('saekit.node');

    writeFileSync(
      join(project, 'use.mjs'),
      `import { SparseAutoencoder, ToyDataset, metrics, backends } from 'saekit';
const toy = new ToyDataset({ dim: 8, numFeatures: 16, expectedActive: 2, seed: 1 });
const sae = new SparseAutoencoder({ dIn: 8, dHidden: 32, l1Coeff: 0.1, seed: 1 });
const stats = await sae.trainStep(toy.sample(64).x);
console.log(JSON.stringify({ l0: stats.l0, mmcs: metrics.mmcs(sae.dictionary(), toy.features), cpu: backends()[0].available, cudaBuilt: backends()[1].built }));
sae.dispose();
`,
    );
    expect(run(join(project, 'node_modules', '.bin', 'saekit'), ['--help'], project)).toContain('Usage: saekit <command>');
    const result = JSON.parse(run('node', ['use.mjs'], project));
    expect(result.cpu).toBe(true);
    // The install built what SAEKIT_CUDA asked for (unset: CUDA where nvcc and cmake are found).
    if (process.env.SAEKIT_CUDA === '1') expect(result.cudaBuilt).toBe(true);
    if (process.env.SAEKIT_CUDA === '0') expect(result.cudaBuilt).toBe(false);
    expect(result.l0).toBeGreaterThan(0);
    expect(result.mmcs).toBeGreaterThan(0);

    writeFileSync(
      join(project, 'use.ts'),
      `import { SparseAutoencoder, type Matrix, type StepStats } from 'saekit';
const sae = new SparseAutoencoder({ dIn: 8, dHidden: 32, l1Coeff: 0.1 });
const x: Matrix = { rows: 1, cols: 8, data: new Float32Array(8) };
const stats: Promise<StepStats> = sae.trainStep(x);
const sparse = sae.encode(x, { format: 'sparse' }).then((codes) => codes.indptr.length);
// @ts-expect-error l1Coeff is required
new SparseAutoencoder({ dIn: 8, dHidden: 32 });
void stats; void sparse;
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: [] }, files: ['use.ts'] }),
    );
    run('node', [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project);
  });
});
