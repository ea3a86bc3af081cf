// Saving and loading in the SAELens layout, atomically, and refusing bad files clearly.
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { SparseAutoencoder } from '../lib/index.js';
import { randomMatrix } from './fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'saekit-files-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => join(work, `ckpt-${counter++}`);

/** A safetensors file built by hand from the format's description, independent of lib/safetensors.ts. */
function handWrittenSafetensors(tensors: Array<{ name: string; dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; bytes: Uint8Array }>, padTo = 8): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  while (json.length % padTo !== 0) json += ' ';
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json, 'utf8'), ...tensors.map((t) => Buffer.from(t.bytes))]);
}

function f32(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

function toHalf(values: Float32Array, kind: 'F16' | 'BF16'): { bytes: Uint8Array; rounded: Float32Array } {
  const bytes = new Uint8Array(values.length * 2);
  const rounded = new Float32Array(values.length);
  const view = new DataView(bytes.buffer);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < values.length; i++) {
    if (kind === 'BF16') {
      scratch.setFloat32(0, values[i], true);
      const bits = scratch.getUint32(0, true) >>> 16; // truncation is a valid bfloat16 value
      view.setUint16(2 * i, bits, true);
      scratch.setUint32(0, bits << 16, true);
      rounded[i] = scratch.getFloat32(0, true);
    } else {
      // Values chosen in the test are multiples of 2^-10 within [-2, 2]: exact in float16.
      const v = values[i];
      const sign = v < 0 ? 0x8000 : 0;
      const a = Math.abs(v);
      let bits = sign;
      if (a !== 0) {
        const e = Math.floor(Math.log2(a));
        const mantissa = Math.round((a / 2 ** e - 1) * 1024);
        bits |= ((e + 15) << 10) | mantissa;
      }
      view.setUint16(2 * i, bits, true);
      rounded[i] = v;
    }
  }
  return { bytes, rounded };
}

function writeSaeLensDir(dir: string, cfg: Record<string, unknown>, tensors: Parameters<typeof handWrittenSafetensors>[0]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  writeFileSync(join(dir, 'sae_weights.safetensors'), handWrittenSafetensors(tensors));
}

describe('save and load', () => {
  it('round-trips parameters, settings and the encoder exactly', async () => {
    const sae = new SparseAutoencoder({ dIn: 12, dHidden: 30, l1Coeff: 0.02, lr: 0.01, seed: 3 });
    for (let i = 0; i < 3; i++) await sae.trainStep(randomMatrix(40, 12, i));
    sae.metadata = { model_name: 'toy', hook_name: 'blocks.0.hook_resid_pre' };
    const dir = freshDir();
    await sae.save(dir);
    expect(readdirSync(dir).sort()).toEqual(['cfg.json', 'sae_weights.safetensors', 'trainer_state.safetensors']);
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'));
    expect(cfg).toMatchObject({
      d_in: 12,
      d_sae: 30,
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      architecture: 'standard',
      metadata: { model_name: 'toy', hook_name: 'blocks.0.hook_resid_pre' },
      saekit: { format_version: 1, tied: false, l1_coefficient: 0.02, lr: 0.01, steps_taken: 3, seed: 3 },
    });
    const loaded = await SparseAutoencoder.load(dir);
    expect(loaded.encoderWeights()).toEqual(sae.encoderWeights());
    expect(loaded.encoderBias()).toEqual(sae.encoderBias());
    expect(loaded.decoderWeights()).toEqual(sae.decoderWeights());
    expect(loaded.decoderBias()).toEqual(sae.decoderBias());
    expect([loaded.l1Coeff, loaded.lr, loaded.seed, loaded.stepsTaken, loaded.tied]).toEqual([0.02, 0.01, 3, 3, false]);
    expect(loaded.metadata).toEqual(sae.metadata);
    const x = randomMatrix(9, 12, 77);
    expect(await loaded.encode(x)).toEqual(await sae.encode(x));
    sae.dispose();
    loaded.dispose();
  });

  it.each([false, true])('resumes training exactly (tied: %s)', async (tied) => {
    const batches = Array.from({ length: 6 }, (_, i) => randomMatrix(32, 10, 100 + i));
    const straight = new SparseAutoencoder({ dIn: 10, dHidden: 24, tied, l1Coeff: 0.05, lr: 0.01, seed: 9 });
    for (const b of batches) await straight.trainStep(b);
    const first = new SparseAutoencoder({ dIn: 10, dHidden: 24, tied, l1Coeff: 0.05, lr: 0.01, seed: 9 });
    for (const b of batches.slice(0, 3)) await first.trainStep(b);
    const dir = freshDir();
    await first.save(dir);
    first.dispose();
    const resumed = await SparseAutoencoder.load(dir);
    expect(resumed.tied).toBe(tied);
    for (const b of batches.slice(3)) await resumed.trainStep(b);
    expect(resumed.stepsTaken).toBe(6);
    expect(resumed.decoderWeights()).toEqual(straight.decoderWeights());
    expect(resumed.encoderWeights()).toEqual(straight.encoderWeights());
    expect(resumed.encoderBias()).toEqual(straight.encoderBias());
    expect(resumed.decoderBias()).toEqual(straight.decoderBias());
    straight.dispose();
    resumed.dispose();
  });

  it('replaces an existing checkpoint and leaves no temporary directories behind', async () => {
    const dir = freshDir();
    const a = new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0, seed: 1 });
    const b = new SparseAutoencoder({ dIn: 4, dHidden: 8, l1Coeff: 0, seed: 2 });
    await a.save(dir);
    await b.save(dir);
    const loaded = await SparseAutoencoder.load(dir);
    expect(loaded.decoderWeights()).toEqual(b.decoderWeights());
    expect(readdirSync(work).filter((n) => n.startsWith(`${dir.split('/').pop()}.`))).toEqual([]);
    [a, b, loaded].forEach((m) => m.dispose());
  });
});

describe('a model with an input scale', () => {
  it('saves weights folded for raw activations (as SAELens expects) and restores the exact model', async () => {
    const sae = new SparseAutoencoder({ dIn: 6, dHidden: 12, l1Coeff: 0.01, lr: 0.01, inputScale: 4, seed: 2 });
    for (let i = 0; i < 3; i++) await sae.trainStep(randomMatrix(20, 6, i));
    const dir = freshDir();
    await sae.save(dir);
    expect(JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'))).toMatchObject({
      normalize_activations: 'expected_average_only_in',
      saekit: { input_scale: 4 },
    });
    const exact = await SparseAutoencoder.load(dir);
    expect(exact.inputScale).toBe(4);
    expect(exact.decoderWeights()).toEqual(sae.decoderWeights());
    const x = randomMatrix(5, 6, 9);
    expect(await exact.reconstruct(x)).toEqual(await sae.reconstruct(x));
    // Without our trainer state (as SAELens would ship it): the folded raw-activation model.
    rmSync(join(dir, 'trainer_state.safetensors'));
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const folded = await SparseAutoencoder.load(dir);
    warnings.mockRestore();
    expect(folded.inputScale).toBe(1);
    const a = (await folded.reconstruct(x)).data;
    const b = (await sae.reconstruct(x)).data;
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    expect(await folded.encode(x)).toEqual(await sae.encode(x));
    [sae, exact, folded].forEach((m) => m.dispose());
  });
});

describe('files written by others', () => {
  const dIn = 6;
  const dHidden = 10;
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.round(Math.sin(seed * 7 + i * 1.3) * 1024) / 1024);

  function reference(applyBDecToInput: boolean, wEnc: Float32Array, bEnc: Float32Array, wDec: Float32Array, bDec: Float32Array) {
    const sae = new SparseAutoencoder({ dIn, dHidden, l1Coeff: 0, applyBDecToInput });
    sae._setParameter('encoderWeights', wEnc);
    sae._setParameter('encoderBias', bEnc);
    sae._setParameter('decoderWeights', wDec);
    sae._setParameter('decoderBias', bDec);
    return sae;
  }

  it.each(['F32', 'F16', 'BF16'] as const)('a SAELens-layout %s file written by hand loads and encodes like the in-memory model', async (dtype) => {
    const raw = { W_enc: values(dIn * dHidden, 1), b_enc: values(dHidden, 2), W_dec: values(dHidden * dIn, 3), b_dec: values(dIn, 4) };
    const encoded = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, dtype === 'F32' ? { bytes: f32(v), rounded: v } : toHalf(v, dtype)]),
    ) as Record<keyof typeof raw, { bytes: Uint8Array; rounded: Float32Array }>;
    const dir = freshDir();
    writeSaeLensDir(
      dir,
      { d_in: dIn, d_sae: dHidden, dtype: dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16', device: 'cuda', apply_b_dec_to_input: false, architecture: 'standard', normalize_activations: 'none', metadata: { model_name: 'gpt2' } },
      [
        { name: 'b_dec', dtype, shape: [dIn], bytes: encoded.b_dec.bytes },
        { name: 'W_dec', dtype, shape: [dHidden, dIn], bytes: encoded.W_dec.bytes },
        { name: 'W_enc', dtype, shape: [dIn, dHidden], bytes: encoded.W_enc.bytes },
        { name: 'b_enc', dtype, shape: [dHidden], bytes: encoded.b_enc.bytes },
      ],
    );
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const loaded = await SparseAutoencoder.load(dir);
    expect(warnings).toHaveBeenCalledWith(expect.stringContaining('decoder rows are not unit norm'), expect.objectContaining({ code: 'SAEKIT_DECODER_NORM' }));
    warnings.mockRestore();
    expect(loaded.applyBDecToInput).toBe(false);
    expect(loaded.metadata).toEqual({ model_name: 'gpt2' });
    expect(loaded.decoderWeights().data).toEqual(encoded.W_dec.rounded); // not renormalised
    const expected = reference(false, encoded.W_enc.rounded, encoded.b_enc.rounded, encoded.W_dec.rounded, encoded.b_dec.rounded);
    const x = randomMatrix(7, dIn, 5);
    expect(await loaded.encode(x)).toEqual(await expected.encode(x));
    expect(await loaded.reconstruct(x)).toEqual(await expected.reconstruct(x));
    loaded.dispose();
    expected.dispose();
  });
});

describe('bad checkpoints give errors that name the file and the problem', () => {
  async function saved(): Promise<string> {
    const dir = freshDir();
    const sae = new SparseAutoencoder({ dIn: 3, dHidden: 5, l1Coeff: 0 });
    await sae.save(dir);
    sae.dispose();
    return dir;
  }

  it('a truncated weights file', async () => {
    const dir = await saved();
    const path = join(dir, 'sae_weights.safetensors');
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 10));
    await expect(SparseAutoencoder.load(dir)).rejects.toThrow(new RegExp(`^${path}: tensor b_dec ends at byte 152 of the data but the file holds only 142 \\(truncated\\?\\)$`));
  });

  it('a bad header length', async () => {
    const dir = await saved();
    const path = join(dir, 'sae_weights.safetensors');
    const bytes = readFileSync(path);
    bytes.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(path, bytes);
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({
      code: 'SAFETENSORS_FORMAT',
      message: `${path}: bad header length 1099511627776 (the file has ${bytes.length - 8} bytes after it)`,
    });
  });

  it('a missing tensor, a wrong shape and an unsupported dtype', async () => {
    const dir = freshDir();
    const base = { d_in: 2, d_sae: 3, architecture: 'standard' };
    const t = (name: string, shape: number[], dtype: 'F32' = 'F32') => ({ name, dtype, shape, bytes: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
    writeSaeLensDir(dir, base, [t('W_enc', [2, 3]), t('b_enc', [3]), t('W_dec', [3, 2])]);
    const path = join(dir, 'sae_weights.safetensors');
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({
      code: 'CHECKPOINT_MISSING_TENSOR',
      message: `${path}: missing tensor b_dec (it has W_enc, b_enc, W_dec)`,
    });
    writeSaeLensDir(dir, base, [t('W_enc', [3, 2]), t('b_enc', [3]), t('W_dec', [3, 2]), t('b_dec', [2])]);
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({
      code: 'CHECKPOINT_SHAPE_MISMATCH',
      message: `${path}: tensor W_enc has shape [3, 2] but cfg.json's d_in and d_sae require [2, 3]`,
    });
    writeSaeLensDir(dir, base, [{ ...t('W_enc', [2, 3]), dtype: 'I64' as 'F32', bytes: new Uint8Array(48) }, t('b_enc', [3]), t('W_dec', [3, 2]), t('b_dec', [2])]);
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({
      code: 'SAFETENSORS_FORMAT',
      message: `${path}: tensor W_enc has unsupported dtype "I64" (F32, F16, BF16 and F64 are supported)`,
    });
  });

  it('an architecture saekit does not implement', async () => {
    for (const architecture of ['gated', 'jumprelu', 'matryoshka']) {
      const dir = freshDir();
      writeSaeLensDir(dir, { d_in: 2, d_sae: 3, architecture }, []);
      await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({
        code: 'UNSUPPORTED_ARCHITECTURE',
        message: `${join(dir, 'cfg.json')}: architecture "${architecture}" is not supported by saekit (only "standard", "topk" and "batchtopk")`,
      });
    }
  });

  it('a missing directory, a missing cfg.json and an invalid one', async () => {
    const dir = freshDir();
    await expect(SparseAutoencoder.load(dir)).rejects.toThrow(`No checkpoint at ${dir}: the directory does not exist`);
    mkdirSync(dir);
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({ code: 'CHECKPOINT_MISSING_FILE' });
    writeFileSync(join(dir, 'cfg.json'), '{"d_in": 3,');
    await expect(SparseAutoencoder.load(dir)).rejects.toMatchObject({ code: 'CHECKPOINT_CONFIG', message: expect.stringContaining(`${join(dir, 'cfg.json')}: not valid JSON`) });
    writeFileSync(join(dir, 'cfg.json'), '{"d_in": 3, "d_sae": -1}');
    await expect(SparseAutoencoder.load(dir)).rejects.toThrow(`${join(dir, 'cfg.json')}: expected a positive integer for d_sae but found -1`);
  });
});

describe('a save interrupted by a crash', () => {
  // The states a crash can leave (see lib/checkpoint_dir.ts), built by hand.
  async function twoCheckpoints() {
    const dir = freshDir();
    const old = new SparseAutoencoder({ dIn: 3, dHidden: 4, l1Coeff: 0, seed: 1 });
    const fresh = new SparseAutoencoder({ dIn: 3, dHidden: 4, l1Coeff: 0, seed: 2 });
    await old.save(dir);
    await fresh.save(`${dir}.new`);
    return { dir, old: old.decoderWeights(), fresh: fresh.decoderWeights() };
  }

  it('while writing the new files: the old checkpoint loads and the partial files are cleaned up by the next save', async () => {
    const { dir, old } = await twoCheckpoints();
    renameSync(`${dir}.new`, `${dir}.saekit-partial-abc123`);
    rmSync(join(`${dir}.saekit-partial-abc123`, 'cfg.json'));
    expect((await SparseAutoencoder.load(dir)).decoderWeights()).toEqual(old);
    const next = new SparseAutoencoder({ dIn: 3, dHidden: 4, l1Coeff: 0, seed: 5 });
    await next.save(dir);
    expect(existsSync(`${dir}.saekit-partial-abc123`)).toBe(false);
  });

  it('between moving the old checkpoint aside and installing the new one: load completes the swap', async () => {
    const { dir, fresh } = await twoCheckpoints();
    renameSync(dir, `${dir}.saekit-previous`);
    renameSync(`${dir}.new`, `${dir}.saekit-staged`);
    expect((await SparseAutoencoder.load(dir)).decoderWeights()).toEqual(fresh);
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(`${dir}.saekit-previous`)).toBe(false);
    expect(existsSync(`${dir}.saekit-staged`)).toBe(false);
  });

  it('after installing the new one but before deleting the old: the new one loads', async () => {
    const { dir, old, fresh } = await twoCheckpoints();
    renameSync(dir, `${dir}.saekit-previous`);
    renameSync(`${dir}.new`, dir);
    expect((await SparseAutoencoder.load(dir)).decoderWeights()).toEqual(fresh);
    expect(old).not.toEqual(fresh);
    expect(existsSync(`${dir}.saekit-previous`)).toBe(false);
  });

  it('with only the previous checkpoint left: it is put back', async () => {
    const { dir, old } = await twoCheckpoints();
    renameSync(dir, `${dir}.saekit-previous`);
    expect((await SparseAutoencoder.load(dir)).decoderWeights()).toEqual(old);
  });
});
