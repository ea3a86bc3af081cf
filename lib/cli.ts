#!/usr/bin/env node
// `saekit`: train, evaluate and apply sparse autoencoders on .npy activations from the shell.
// Exit codes: 0 done, 1 failed, 2 bad command line, 130 interrupted (after saving a checkpoint).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import cliProgress from 'cli-progress';

import { resolveCheckpoint } from './checkpoint_dir.js';
import { runDemo } from './demo.js';
import { evaluate, type EvaluationReport } from './evaluate.js';
import type { Matrix } from './matrix.js';
import type { Device, Progress } from './model.js';
import { NpyWriter } from './npy.js';
import { npyBatches } from './npy_batches.js';
import { SparseAutoencoder, type SparseAutoencoderOptions } from './sparse_autoencoder.js';
import { isDevice } from './validate.js';
import { packageVersion } from './version.js';

class UsageError extends Error {}

type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'strings';
interface Flag {
  kind: Kind;
  help: string;
  required?: boolean;
  default?: string | boolean;
  choices?: readonly string[];
  /** Smallest allowed value of an integer flag (default 1). */
  min?: number;
}
interface Command {
  summary: string;
  usage: string;
  flags: Record<string, Flag>;
  run: (values: Record<string, unknown>) => Promise<number>;
}

function usageOf(name: string, command: Command): string {
  const lines = [`Usage: saekit ${name} ${command.usage}`, '', command.summary, '', 'Options:'];
  for (const [flag, spec] of Object.entries(command.flags)) {
    const value = spec.kind === 'boolean' ? '' : spec.choices ? ` <${spec.choices.join('|')}>` : ` <${spec.kind === 'strings' ? 'path' : spec.kind}>`;
    const notes = [spec.required ? 'required' : '', spec.default !== undefined && spec.kind !== 'boolean' ? `default ${spec.default}` : '', spec.kind === 'strings' ? 'repeatable' : '']
      .filter(Boolean)
      .join(', ');
    lines.push(`  --${flag}${value}`.padEnd(36) + spec.help + (notes ? ` (${notes})` : ''));
  }
  lines.push('  --help'.padEnd(36) + 'show this help');
  return lines.join('\n');
}

function parse(name: string, command: Command, argv: string[]): Record<string, unknown> | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const [flag, spec] of Object.entries(command.flags)) {
    options[flag] = spec.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', ...(spec.kind === 'strings' ? { multiple: true } : {}) };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]}`);
  }
  if (values.help === true) return 'help';
  const out: Record<string, unknown> = {};
  for (const [flag, spec] of Object.entries(command.flags)) {
    const raw = values[flag] ?? spec.default;
    if (raw === undefined) {
      if (spec.required) throw new UsageError(`missing --${flag} (${spec.help})`);
      continue;
    }
    if (spec.kind === 'integer' || spec.kind === 'number') {
      const n = Number(raw);
      const min = spec.min ?? 1;
      if (raw === '' || !Number.isFinite(n) || (spec.kind === 'integer' && (!Number.isSafeInteger(n) || n < min))) {
        const expected = spec.kind === 'number' ? 'number' : min === 1 ? 'positive integer' : `integer of at least ${min}`;
        throw new UsageError(`--${flag} expects a ${expected} but received '${String(raw)}'`);
      }
      out[flag] = n;
    } else if (spec.choices && !spec.choices.includes(raw as string)) {
      throw new UsageError(`--${flag} expects one of ${spec.choices.join(', ')} but received '${String(raw)}'`);
    } else {
      out[flag] = raw;
    }
  }
  return out;
}

// Progress on stderr: a bar on a terminal, a line every few seconds otherwise (logs, CI).
function progressReporter(total: number, start: number): { update: (p: Progress, stepsTaken: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'training |{bar}| step {value}/{total} | {rate} samples/s | loss {loss} | L0 {l0} | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, start, { rate: '-', loss: '-', l0: '-' });
    return {
      update: (p, stepsTaken) =>
        bar.update(stepsTaken, { rate: Math.round(p.samplesPerSecond).toLocaleString('en-US'), loss: p.loss.toFixed(4), l0: p.l0.toFixed(1) }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (p, stepsTaken) => {
      const now = Date.now();
      if (now - last < 2000 && stepsTaken < total) return;
      last = now;
      const stepsPerSecond = p.samplesPerSecond / (p.samplesSeen / p.step);
      const eta = Math.round((total - stepsTaken) / stepsPerSecond);
      process.stderr.write(
        `step ${stepsTaken}/${total} | ${Math.round(p.samplesPerSecond)} samples/s | loss ${p.loss.toFixed(4)} | L0 ${p.l0.toFixed(1)} | ETA ${eta} s\n`,
      );
    },
    stop: () => {},
  };
}

async function hasCheckpoint(dir: string): Promise<boolean> {
  try {
    return existsSync(join(await resolveCheckpoint(dir), 'cfg.json'));
  } catch {
    return false;
  }
}

async function train(v: Record<string, unknown>): Promise<number> {
  const out = v.out as string;
  const paths = v.data as string[];
  const resume = v.resume === true;
  const device = v.device as Device;
  if (!isDevice(device)) throw new UsageError(`--device expects cpu, cuda or cuda:N (N a GPU index) but received '${String(device)}'`);
  const threads = v.threads as number | undefined;
  const exists = await hasCheckpoint(out);
  if (resume && !exists) throw new UsageError(`--resume: there is no checkpoint at ${out} to continue`);
  if (!resume && exists) throw new UsageError(`${out} already holds a checkpoint: pass --resume to continue it, or choose another --out`);

  if (!resume && v['d-hidden'] === undefined) throw new UsageError('missing --d-hidden (dictionary size)');
  if (!resume && v.l1 === undefined && v.activation === 'relu') throw new UsageError('missing --l1 (L1 coefficient; needed with --activation relu)');
  if (!resume && v.activation !== 'relu' && v.k === undefined) throw new UsageError(`missing --k (active features per row, for --activation ${v.activation})`);
  const loaded = resume ? await SparseAutoencoder.load(out, { device, ...(threads ? { threads } : {}) }) : undefined;
  // A resumed run draws a different order (it cannot know which rows it saw); a resumed model
  // scales raw rows itself (its inputScale), so only a new one normalises the stream.
  const batches = npyBatches(paths, {
    batchSize: v['batch-size'] as number,
    seed: (v.seed as number) + (loaded?.stepsTaken ?? 0),
    epochs: Infinity,
    normalize: loaded ? 'none' : (v.normalize as 'none' | 'expected-norm'),
    ...(v['buffer-rows'] !== undefined ? { bufferRows: v['buffer-rows'] as number } : {}),
  });
  const { rows, cols } = await batches.open();
  if (loaded && loaded.dIn !== cols) {
    throw new Error(`${out} was trained on ${loaded.dIn} features per row but ${paths.join(', ')} has ${cols}`);
  }
  const model =
    loaded ??
    new SparseAutoencoder({
      dIn: cols,
      dHidden: v['d-hidden'] as number,
      activation: v.activation as 'relu' | 'topk' | 'batchtopk',
      ...(v.k !== undefined ? { k: v.k as number } : {}),
      ...(v.l1 !== undefined ? { l1Coeff: v.l1 as number } : {}),
      initDecoderBias: v['init-decoder-bias'] as 'zeros' | 'mean' | 'geometric-median',
      lr: v.lr as number,
      tied: v.tied === true,
      seed: v.seed as number,
      device,
      ...(threads ? { threads } : {}),
    } as SparseAutoencoderOptions); // checked at run time: the flags above were checked for their activation
  const total = v.steps as number;
  process.stderr.write(
    `saekit ${packageVersion}: ${rows.toLocaleString('en-US')} rows x ${cols} from ${paths.length} file(s); ` +
      `${model.dHidden} features, l1 ${model.l1Coeff}, ${resume ? `resuming at step ${model.stepsTaken}` : 'new model'} -> ${out}\n`,
  );
  if (model.stepsTaken >= total) {
    process.stderr.write(`already trained for ${model.stepsTaken} steps (--steps ${total}); nothing to do\n`);
    return 0;
  }

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // One stream across checkpoint segments: each fit draws from the same iterator, and the
  // facade has no `return`, so ending a segment does not close it.
  const iterator = batches[Symbol.asyncIterator]();
  const stream: AsyncIterable<Matrix> = { [Symbol.asyncIterator]: () => ({ next: () => iterator.next() }) };
  const reporter = progressReporter(total, model.stepsTaken);
  const every = v['checkpoint-every'] as number;
  try {
    while (model.stepsTaken < total) {
      const segment = Math.min(every, total - model.stepsTaken);
      const base = model.stepsTaken;
      await model.fit(stream, {
        steps: segment,
        signal: controller.signal,
        onProgress: (p) => reporter.update(p, base + p.step),
        scheduleEndStep: total,
        ...(v['lr-warmup-steps'] !== undefined ? { lrWarmupSteps: v['lr-warmup-steps'] as number } : {}),
        ...(v['lr-decay-fraction'] !== undefined ? { lrDecayFraction: v['lr-decay-fraction'] as number } : {}),
        ...(v['l1-warmup-steps'] !== undefined ? { l1WarmupSteps: v['l1-warmup-steps'] as number } : {}),
        ...(v['resample-every'] !== undefined ? { resample: { every: v['resample-every'] as number, window: (v['resample-window'] as number | undefined) ?? 25 * (v['resample-every'] as number) * (v['batch-size'] as number) } } : {}),
      });
      await model.save(out);
    }
  } catch (error) {
    reporter.stop();
    if (controller.signal.aborted) {
      await model.save(out);
      process.stderr.write(`interrupted at step ${model.stepsTaken}: checkpoint saved to ${out} (continue with --resume)\n`);
      return 130;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await iterator.return?.();
  }
  reporter.stop();
  process.stderr.write(`trained ${model.stepsTaken} steps; saved to ${out}\n`);
  model.dispose();
  return 0;
}

function printReport(report: EvaluationReport, json: boolean): void {
  const { featureDensity: _perFeature, ...summary } = report;
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  process.stdout.write(
    [
      `samples        ${report.samples}`,
      `MSE            ${report.mse.toPrecision(5)}`,
      `FVU            ${report.fvu.toPrecision(5)}`,
      `L0             ${report.l0.toFixed(2)}`,
      `dead features  ${pct(report.deadFraction)}`,
      `density        min ${report.density.min.toExponential(2)}, median ${report.density.median.toExponential(2)}, max ${report.density.max.toExponential(2)}`,
      `               ${pct(report.density.above10Percent)} of features fire on > 10% of samples, ${pct(report.density.below1e4)} on < 0.01%`,
    ].join('\n') + '\n',
  );
}

async function evalCommand(v: Record<string, unknown>): Promise<number> {
  const sae = await SparseAutoencoder.load(v.sae as string);
  const batches = npyBatches(v.data as string[], { batchSize: v['batch-size'] as number, shuffle: false });
  const { cols } = await batches.open();
  if (cols !== sae.dIn) throw new Error(`${v.sae} expects ${sae.dIn} features per row but the data has ${cols}`);
  printReport(await evaluate(sae, batches), v.json === true);
  sae.dispose();
  return 0;
}

async function encodeCommand(v: Record<string, unknown>): Promise<number> {
  const sae = await SparseAutoencoder.load(v.sae as string);
  const batches = npyBatches(v.data as string[], { batchSize: v['batch-size'] as number, shuffle: false });
  const { rows, cols } = await batches.open();
  if (cols !== sae.dIn) throw new Error(`${v.sae} expects ${sae.dIn} features per row but the data has ${cols}`);
  const writer = await NpyWriter.create(v.out as string, rows, sae.dHidden);
  try {
    for await (const batch of batches) await writer.append((await sae.encode(batch)).data);
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  process.stderr.write(`wrote codes [${rows}, ${sae.dHidden}] to ${v.out}\n`);
  sae.dispose();
  return 0;
}

const commands: Record<string, Command> = {
  train: {
    summary: 'Train a sparse autoencoder on activations in .npy files (rows = samples), with checkpoints; Ctrl-C saves one and exits.',
    usage: '--data acts.npy [--data more.npy] --d-hidden N --l1 X --steps N --out DIR [options]',
    flags: {
      data: { kind: 'strings', help: '2-D float .npy file of activations', required: true },
      'd-hidden': { kind: 'integer', help: 'dictionary size (number of features)' },
      l1: { kind: 'number', help: 'L1 coefficient (required with relu)' },
      activation: { kind: 'string', help: 'encoder activation', default: 'relu', choices: ['relu', 'topk', 'batchtopk'] },
      k: { kind: 'integer', help: 'active features per row (topk, batchtopk)' },
      'init-decoder-bias': { kind: 'string', help: 'b_dec from the first batch', default: 'zeros', choices: ['zeros', 'mean', 'geometric-median'] },
      'lr-warmup-steps': { kind: 'integer', help: 'linear learning-rate warm-up', min: 0 },
      'lr-decay-fraction': { kind: 'number', help: 'decay lr linearly to 0 over this last fraction of steps' },
      'l1-warmup-steps': { kind: 'integer', help: 'linear L1 warm-up', min: 0 },
      'resample-every': { kind: 'integer', help: 'resample dead features every N steps' },
      'resample-window': { kind: 'integer', help: 'samples without firing that make a feature dead (default 25 * every * batch size)' },
      steps: { kind: 'integer', help: 'total training steps', required: true },
      out: { kind: 'string', help: 'checkpoint directory (SAELens layout)', required: true },
      'batch-size': { kind: 'integer', help: 'rows per step', default: '1024' },
      lr: { kind: 'number', help: 'Adam learning rate', default: '0.001' },
      tied: { kind: 'boolean', help: 'tie decoder and encoder weights' },
      seed: { kind: 'integer', help: 'seed for initialisation and data order', default: '0', min: 0 },
      device: { kind: 'string', help: 'compute device: cpu, cuda, or cuda:N for the GPU at index N', default: 'cpu' },
      threads: { kind: 'integer', help: 'CPU threads (default: all cores)' },
      normalize: { kind: 'string', help: 'scale rows to mean squared norm d_in', default: 'none', choices: ['none', 'expected-norm'] },
      'buffer-rows': { kind: 'integer', help: 'rows in the shuffle buffer' },
      'checkpoint-every': { kind: 'integer', help: 'save a checkpoint every N steps', default: '1000' },
      resume: { kind: 'boolean', help: 'continue the checkpoint in --out' },
    },
    run: train,
  },
  eval: {
    summary: 'Evaluate a saved sparse autoencoder: MSE, FVU, L0, dead features and feature density.',
    usage: '--sae DIR --data acts.npy [--json]',
    flags: {
      sae: { kind: 'string', help: 'checkpoint directory', required: true },
      data: { kind: 'strings', help: '2-D float .npy file of activations', required: true },
      'batch-size': { kind: 'integer', help: 'rows per batch', default: '4096' },
      json: { kind: 'boolean', help: 'print one JSON object' },
    },
    run: evalCommand,
  },
  encode: {
    summary: 'Write the codes of every row of the data as a [rows, d_sae] float32 .npy file.',
    usage: '--sae DIR --data acts.npy --out codes.npy',
    flags: {
      sae: { kind: 'string', help: 'checkpoint directory', required: true },
      data: { kind: 'strings', help: '2-D float .npy file of activations', required: true },
      out: { kind: 'string', help: 'output .npy file', required: true },
      'batch-size': { kind: 'integer', help: 'rows per batch', default: '4096' },
    },
    run: encodeCommand,
  },
  demo: {
    summary: 'Train on synthetic data with known features and report how well they are recovered.',
    usage: '',
    flags: {},
    run: async () => {
      await runDemo();
      return 0;
    },
  },
};

const overview = [
  `saekit ${packageVersion}: sparse autoencoders for Node`,
  '',
  'Usage: saekit <command> [options]',
  '',
  'Commands:',
  ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)}${c.summary}`),
  '',
  'Run "saekit <command> --help" for a command\'s options.',
].join('\n');

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${overview}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`${packageVersion}\n`);
    return 0;
  }
  const command = commands[name];
  try {
    if (command === undefined) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(commands).join(', ')})`);
    const values = parse(name, command, rest);
    if (values === 'help') {
      process.stdout.write(`${usageOf(name, command)}\n`);
      return 0;
    }
    return await command.run(values);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`saekit${command ? ` ${name}` : ''}: ${error.message} (see saekit ${command ? `${name} ` : ''}--help)\n`);
      return 2;
    }
    process.stderr.write(`saekit ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
