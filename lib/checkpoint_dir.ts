// Saving a directory of files so that, at every instant, `dir` holds either the complete old
// checkpoint or the complete new one, and recovering from a crash at any point of a save.
//
// A save goes through three sibling names of `dir`:
//   1. write every file into `<dir>.saekit-partial-<random>`, fsync each file and the directory;
//   2. rename it to `<dir>.saekit-staged`: from here on a complete new checkpoint exists;
//   3. rename `dir` (if any) to `<dir>.saekit-previous`, rename the staged one to `dir`, fsync
//      the parent, then delete the previous one.
// A crash in 1 leaves `dir` untouched (the partial directory is garbage, removed next time). A
// crash in 3 can leave `dir` missing with the staged (new) and previous (old) checkpoints
// beside it: `resolveCheckpoint` finishes the swap (or reads the staged copy directly when the
// directory cannot be renamed). Renames within one directory are atomic on POSIX file systems.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

const staged = (dir: string) => `${dir}.saekit-staged`;
const previous = (dir: string) => `${dir}.saekit-previous`;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function removeStalePartials(dir: string): Promise<void> {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.saekit-partial-`;
  for (const entry of await readdir(parent)) {
    if (entry.startsWith(prefix)) await rm(join(parent, entry), { recursive: true, force: true });
  }
}

/** Atomically replaces `dir` with a directory holding exactly `files` (name -> bytes). */
export async function writeDirectoryAtomic(target: string, files: Record<string, Uint8Array>): Promise<void> {
  const dir = resolve(target);
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  // Finish whatever an interrupted save left, so its pieces are not mistaken for ours.
  await resolveCheckpoint(dir).catch(() => {});
  await removeStalePartials(dir);

  const partial = `${dir}.saekit-partial-${randomBytes(6).toString('hex')}`;
  await mkdir(partial);
  try {
    for (const [name, bytes] of Object.entries(files)) {
      const handle = await open(join(partial, name), 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    await syncPath(partial);
    await rm(staged(dir), { recursive: true, force: true });
    await rename(partial, staged(dir));
  } catch (error) {
    await rm(partial, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
  await syncPath(parent);
  const hadOld = await exists(dir);
  if (hadOld) {
    await rm(previous(dir), { recursive: true, force: true });
    await rename(dir, previous(dir));
  }
  await rename(staged(dir), dir);
  await syncPath(parent);
  if (hadOld) await rm(previous(dir), { recursive: true, force: true });
}

/**
 * The directory to read the checkpoint at `target` from, after repairing an interrupted save
 * where possible. Throws if there is no checkpoint there at all.
 */
export async function resolveCheckpoint(target: string): Promise<string> {
  const dir = resolve(target);
  if (await exists(dir)) {
    // A save that got as far as installing the new directory: only the old copy is left.
    if (await exists(previous(dir))) await rm(previous(dir), { recursive: true, force: true }).catch(() => {});
    return dir;
  }
  for (const candidate of [staged(dir), previous(dir)]) {
    if (!(await exists(candidate))) continue;
    try {
      await rename(candidate, dir);
      await syncPath(dirname(dir)).catch(() => {});
      if (candidate === staged(dir)) await rm(previous(dir), { recursive: true, force: true }).catch(() => {});
      return dir;
    } catch {
      return candidate; // read-only parent: read it where it is
    }
  }
  const error = new Error(`No checkpoint at ${dir}: the directory does not exist`) as Error & { code: string };
  error.code = 'ENOENT';
  throw error;
}
