import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

// Every durable write goes through here: write a temporary file in the same directory, fsync it,
// rename it over the target, fsync the directory. A crash at any instant leaves either the old
// file or the new one, never a torn one.

export type WriteOptions = { mode?: number };

export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dir);
}

/** Appends and fsyncs. Used for append-only logs whose readers tolerate a torn last line. */
export async function appendFileDurable(path: string, data: string): Promise<void> {
  const handle = await open(path, 'a', 0o644);
  let created: boolean;
  try {
    await handle.appendFile(data);
    await handle.sync();
    // Only what we just wrote is in it: the file may be new, and its directory entry must be
    // made durable too or a crash could lose the whole file.
    created = (await handle.stat()).size === Buffer.byteLength(data);
  } finally {
    await handle.close();
  }
  if (created) await syncDirectory(dirname(path));
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

export async function ensureDirectory(dir: string, mode = 0o755): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

/** Unlinks a file and makes the removal durable; a missing file is not an error. */
export async function removeFileDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await syncDirectory(dirname(path));
  return true;
}
