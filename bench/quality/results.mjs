// @ts-check
// results.json: one file that `npm run bench` and `npm run bench:speed` both write, each
// replacing only its own part, so either can run first and neither clobbers the other:
//
//   { schemaVersion, machine, commit, quality: QualityPart | null, speed: SpeedPart | null }
//
// `machine` and `commit` at the top say who wrote last; each part carries its own as well.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backends } from '../../dist/index.js';
import { addon } from '../../dist/native.js';

export const schemaVersion = 1;
export const resultsFile = 'results.json';
const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * @typedef {object} Machine
 * @property {string} cpu
 * @property {number} cores
 * @property {number} memoryGiB
 * @property {string} node
 * @property {string} platform
 * @property {string} backend       the device every run used
 * @property {string} cpuKernels    the SIMD kernel set chosen at run time
 * @property {string[]} backendsAvailable
 *
 * @typedef {object} Commit
 * @property {string | null} hash
 * @property {boolean | null} dirty   uncommitted changes to tracked files when the benchmark ran
 *
 * @typedef {object} SpeedRow
 * @property {string} operation
 * @property {string} shape
 * @property {number} ms                 milliseconds per operation (median)
 * @property {number | null} samplesPerSecond
 * @property {number | null} gflops      effective GFLOP/s: `flops` / time
 * @property {string | null} flops       what the flop count counts
 * @property {{ name: string, ms: number | null, note?: string } | null} reference   null: no reference exists for this row
 * @property {number | null} ratio       reference ms / our ms (> 1: we are faster); null when the reference was not run
 * @property {string} [note]
 *
 * @typedef {{ date: string, machine: Machine, commit: Commit, rows: SpeedRow[], raw: Record<string, unknown> }} SpeedPart
 *
 * @typedef {{ schemaVersion: number, machine: Machine | null, commit: Commit | null, quality: any, speed: SpeedPart | null }} Results
 */

/** @returns {Machine} */
export function machineInfo() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    backend: 'cpu',
    cpuKernels: addon.cpuKernels(),
    backendsAvailable: backends().filter((b) => b.available).map((b) => b.name),
  };
}

/** @returns {Commit} */
export function commitInfo() {
  try {
    const hash = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repositoryRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repositoryRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { hash, dirty: status.trim().length > 0 };
  } catch {
    return { hash: null, dirty: null };
  }
}

/** @param {string} dir @returns {Results} */
export function readResults(dir) {
  const file = join(dir, resultsFile);
  if (!existsSync(file)) return { schemaVersion, machine: null, commit: null, quality: null, speed: null };
  const parsed = JSON.parse(readFileSync(file, 'utf8'));
  if (parsed.schemaVersion !== schemaVersion) {
    throw new Error(`${file} has schemaVersion ${parsed.schemaVersion}, this benchmark writes ${schemaVersion}: move it away first`);
  }
  return parsed;
}

/**
 * Replaces one part of results.json in `dir` (creating it), keeping the other, and returns the
 * whole. Written to a temporary file and renamed, so a reader never sees half a file.
 * @param {string} dir @param {'quality' | 'speed'} part @param {unknown} value
 * @returns {Results}
 */
export function updateResults(dir, part, value) {
  mkdirSync(dir, { recursive: true });
  const results = readResults(dir);
  results[part] = value;
  results.machine = machineInfo();
  results.commit = commitInfo();
  const file = join(dir, resultsFile);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return results;
}
