#!/usr/bin/env node
// @ts-check
// `npm install` of saekit: builds the native addon.
//
//   SAEKIT_CUDA unset  the CUDA variant (cmake-js, CMakeLists.txt) when nvcc and cmake are found,
//                      else the CPU build (node-gyp, binding.gyp). A failed CUDA build falls back
//                      to the CPU build with one warning: an install never fails for want of CUDA.
//   SAEKIT_CUDA=1      the CUDA variant, and a failed CUDA build fails the install (CI sets it,
//                      so that a broken kernel cannot hide behind the fall-back).
//   SAEKIT_CUDA=0      the CPU build.
//   SAEKIT_CUDA_ARCHS  compute capabilities to compile for, e.g. "90" or "86,90" (default
//                      80,86,89,90, plus PTX of the newest for later GPUs).
//
// `node scripts/install.mjs --cuda` is SAEKIT_CUDA=1 (npm run build:cuda).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * @typedef {{ variant: 'cpu' | 'cuda', strict: boolean, why: string, archs?: string, error?: string }} InstallPlan
 * @typedef {{ nvcc?: string, cmake?: string }} Tools
 */

/**
 * What to build, from the environment and the tools found: a pure function, unit-tested.
 * @param {Record<string, string | undefined>} env
 * @param {Tools} tools
 * @returns {InstallPlan}
 */
export function installPlan(env, tools) {
  const setting = parseCudaSetting(env.SAEKIT_CUDA);
  if (setting === undefined) {
    return { variant: 'cpu', strict: true, why: '', error: `Expected SAEKIT_CUDA to be 1 or 0 (or unset) but received '${env.SAEKIT_CUDA}'` };
  }
  if (setting === 'off') return { variant: 'cpu', strict: true, why: 'SAEKIT_CUDA=0' };
  const archs = parseArchs(env.SAEKIT_CUDA_ARCHS);
  if (typeof archs === 'object') return { variant: 'cpu', strict: true, why: '', error: archs.error };
  const missing = [tools.nvcc ? '' : 'nvcc', tools.cmake ? '' : 'cmake'].filter(Boolean);
  if (setting === 'on') {
    const plan = { variant: /** @type {const} */ ('cuda'), strict: true, why: 'SAEKIT_CUDA=1', ...(archs ? { archs } : {}) };
    if (missing.length > 0) {
      return { ...plan, error: `SAEKIT_CUDA=1 asks for the CUDA build, but ${missing.join(' and ')} ${missing.length > 1 ? 'were' : 'was'} not found on PATH (nvcc is also looked for in CUDACXX, CUDA_PATH, CUDA_HOME and /usr/local/cuda)` };
    }
    return plan;
  }
  if (missing.length > 0) return { variant: 'cpu', strict: true, why: `${missing.join(' and ')} not found` };
  return { variant: 'cuda', strict: false, why: `nvcc (${tools.nvcc}) and cmake found`, ...(archs ? { archs } : {}) };
}

/**
 * @param {string | undefined} value
 * @returns {'on' | 'off' | 'auto' | undefined} undefined for a value that is none of these
 */
export function parseCudaSetting(value) {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (['1', 'on', 'true', 'yes'].includes(v)) return 'on';
  if (['0', 'off', 'false', 'no'].includes(v)) return 'off';
  return undefined;
}

/**
 * "90", "86,90", "8.6 9.0" or "sm_86;sm_90" to CMake's "86;90"; undefined when unset.
 * @param {string | undefined} value
 * @returns {string | undefined | { error: string }}
 */
export function parseArchs(value) {
  if (value === undefined || value.trim() === '') return undefined;
  const archs = [];
  for (const item of value.split(/[\s,;]+/).filter(Boolean)) {
    const match = /^(?:sm_|compute_)?(\d+)(?:\.(\d))?([af]?)$/.exec(item);
    const arch = match ? `${match[1]}${match[2] ?? ''}${match[3]}` : '';
    if (!match || Number.parseInt(arch, 10) < 80) {
      return { error: `Expected SAEKIT_CUDA_ARCHS to list compute capabilities of 8.0 or newer (such as 80,86,89,90) but received '${value}'` };
    }
    archs.push(arch);
  }
  return archs.join(';');
}

/**
 * The first executable `name` on PATH (or at one of `extra`), or undefined.
 * @param {string} name
 * @param {Record<string, string | undefined>} env
 * @param {string[]} [extra]
 */
export function findExecutable(name, env, extra = []) {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...dirs.map((dir) => join(dir, name)), ...extra].find((path) => isExecutable(path));
}

/** @param {string} path @param {number} [mode] */
function isExecutable(path, mode = constants.X_OK) {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/**
 * nvcc (CUDACXX, else PATH, else bin/ of CUDA_PATH, CUDA_HOME or a default home) and cmake (PATH).
 * @param {Record<string, string | undefined>} env @param {string[]} [defaultHomes]
 * @returns {Tools}
 */
export function findTools(env, defaultHomes = ['/usr/local/cuda']) {
  const cudaHomes = [env.CUDA_PATH, env.CUDA_HOME, ...defaultHomes].filter((p) => typeof p === 'string' && p.length > 0);
  const nvcc = env.CUDACXX
    ? (isExecutable(env.CUDACXX) ? env.CUDACXX : undefined)
    : findExecutable('nvcc', env, cudaHomes.map((home) => join(/** @type {string} */ (home), 'bin', 'nvcc')));
  return { nvcc, cmake: findExecutable('cmake', env) };
}

/**
 * @param {string} command @param {string[]} args @param {{ quiet?: boolean, env?: NodeJS.ProcessEnv }} [options]
 * @returns {{ ok: boolean, output: string }}
 */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: packageRoot,
    env: options.env ?? process.env,
    stdio: options.quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const output = options.quiet ? `${result.stdout ?? ''}${result.stderr ?? ''}` : '';
  if (result.error && !options.quiet) console.error(`saekit: ${command} ${args.join(' ')}: ${result.error.message}`);
  return { ok: result.status === 0, output: result.error ? `${output}${result.error.message}\n` : output };
}

/** @param {InstallPlan} plan @param {Tools} tools */
function buildCuda(plan, tools) {
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'rebuild', '--CDSAEKIT_CUDA=ON', '--CDSAEKIT_NATIVE_TESTS=OFF'];
  if (plan.archs) args.push(`--CDSAEKIT_CUDA_ARCHS=${plan.archs}`);
  // CMake looks for nvcc on PATH; point it at the one found elsewhere.
  const env = { ...process.env, ...(tools.nvcc && !process.env.CUDACXX ? { CUDACXX: tools.nvcc } : {}) };
  return run(process.execPath, args, { quiet: !plan.strict, env });
}

function buildCpu() {
  // npm gives lifecycle scripts the path of its own node-gyp; run by hand, look for npm's.
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const nodeGyp = [process.env.npm_config_node_gyp, bundled].find((p) => p !== undefined && p.length > 0 && isExecutable(p, constants.R_OK));
  return nodeGyp ? run(process.execPath, [nodeGyp, 'rebuild']) : run('node-gyp', ['rebuild']);
}



function main() {
  const env = { ...process.env };
  if (process.argv.includes('--cuda')) env.SAEKIT_CUDA = '1';
  const tools = findTools(env);
  const plan = installPlan(env, tools);
  if (plan.error) {
    console.error(`saekit: ${plan.error}`);
    process.exit(1);
  }
  if (plan.variant === 'cuda') {
    console.log(`saekit: building the CUDA variant (${plan.why}${plan.archs ? `, SAEKIT_CUDA_ARCHS=${plan.archs}` : ''})`);
    const built = buildCuda(plan, tools);
    if (built.ok) return;
    if (plan.strict) {
      console.error('saekit: the CUDA build failed and SAEKIT_CUDA=1 forbids falling back to the CPU build');
      process.exit(1);
    }
    // node-gyp starts by deleting build/, so the log is written after it.
    if (!buildCpu().ok) process.exit(1);
    const log = join(packageRoot, 'build', 'saekit-cuda-build.log');
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, built.output);
    console.warn(
      `saekit: WARNING: the CUDA build failed, so this installation is CPU-only (device: 'cuda' will say why). ` +
        `Build log: ${log}. Set SAEKIT_CUDA=0 to skip the CUDA attempt, or SAEKIT_CUDA=1 to make this failure an error.`,
    );
    return;
  }
  console.log(`saekit: building the CPU variant (${plan.why})`);
  if (!buildCpu().ok) process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
