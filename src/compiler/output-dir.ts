import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, normalize, isAbsolute, sep } from 'node:path';
import { RingmasterError } from '../lib/errors.ts';
import { syncDirectory } from '../lib/atomic-file.ts';
import type { GeneratedFile } from './files.ts';

// A generated directory appears whole or not at all: it is built under a temporary name beside
// the target and renamed into place, so an interrupted run never leaves a directory that looks
// usable but lacks, say, the private key.

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new RingmasterError('RM_CLI_USAGE', `--out: ${dir} exists and is not a directory`);
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Refuses a non-empty directory unless forced. Run before anything is issued or written. */
export async function checkOutputDir(dir: string, force: boolean): Promise<void> {
  const found = await entries(dir);
  if (found !== undefined && found.length > 0 && !force) {
    throw new RingmasterError('RM_CLI_USAGE', `--out: ${dir} is not empty; choose another directory or add --force to replace it`);
  }
}

function safeRelative(path: string): string {
  const n = normalize(path);
  if (isAbsolute(n) || n === '..' || n.startsWith(`..${sep}`) || n === '.') throw new Error(`generated file path ${JSON.stringify(path)} leaves the output directory`);
  return n;
}

async function writeOne(root: string, f: GeneratedFile): Promise<void> {
  const path = join(root, safeRelative(f.path));
  // Private key directories are not world-readable, as in a Puppet ssldir.
  await mkdir(dirname(path), { recursive: true, mode: basename(dirname(path)) === 'private_keys' ? 0o750 : 0o755 });
  const handle = await open(path, 'wx', f.mode);
  try {
    await handle.writeFile(f.content);
    await handle.chmod(f.mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `files` into `dir`, replacing a non-empty `dir` only when `force` is set. */
export async function writeOutputDir(dir: string, files: GeneratedFile[], options: { force: boolean }): Promise<void> {
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmp = join(parent, `.${basename(dir)}.${tag}.tmp`);
  const old = join(parent, `.${basename(dir)}.${tag}.old`);
  await mkdir(tmp, { mode: 0o755 });
  try {
    await chmod(tmp, 0o755);
    for (const f of files) await writeOne(tmp, f);
    // Checked again: another process may have filled the directory since checkOutputDir.
    const found = await entries(dir);
    if (found !== undefined && found.length > 0) {
      if (!options.force) throw new RingmasterError('RM_CLI_USAGE', `--out: ${dir} is not empty; choose another directory or add --force to replace it`);
      await rename(dir, old);
      try {
        await rename(tmp, dir);
      } catch (err) {
        await rename(old, dir);
        throw err;
      }
      await rm(old, { recursive: true, force: true });
    } else {
      // rename(2) replaces an empty directory in one step.
      await rename(tmp, dir);
    }
    await syncDirectory(parent);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
