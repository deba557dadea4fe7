import * as fs from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { syncDirectory } from '../lib/atomic-file.ts';
import { RingmasterError } from '../lib/errors.ts';
import { parseSerialText } from './inventory.ts';
import {
  CaStore, buildAndPublish, caFileNames, errno, keyMode, makeSubdirs, mapLimit, publicMode, writeConcurrency, writeNewFile,
} from './store.ts';

export type ImportResult = {
  /** Files copied from the top of the source directory. */
  files: number;
  signed: number;
  requests: number;
};

const requiredForImport = [caFileNames.cert, caFileNames.key, caFileNames.crl, caFileNames.serial];

async function problemsWithSource(source: string): Promise<string[]> {
  const problems: string[] = [];
  for (const name of requiredForImport) {
    const info = await fs.stat(join(source, name)).catch((err: unknown) => errno(err) ?? 'error');
    if (typeof info === 'string') problems.push(info === 'ENOENT' ? `${name} is missing` : `${name} cannot be read (${info})`);
    else if (!info.isFile()) problems.push(`${name} is not a file`);
    else if (info.size === 0) problems.push(`${name} is empty`);
    else if (name === caFileNames.serial && parseSerialText(await fs.readFile(join(source, name), 'utf8')) === undefined) {
      problems.push(`${name} does not hold a hexadecimal serial number`);
    }
  }
  return problems;
}

/** Copies the regular, non-dot files of `from` into `to`, each fsynced; returns how many. */
async function copyFiles(from: string, to: string): Promise<number> {
  const names = (await fs.readdir(from)).filter((n) => !n.startsWith('.'));
  let copied = 0;
  await mapLimit(names, writeConcurrency, async (name) => {
    // stat, not lstat: a symlinked file is copied as its content.
    const info = await fs.stat(join(from, name));
    if (!info.isFile()) return;
    const mode = info.mode & (name.endsWith('_key.pem') ? keyMode : publicMode);
    await writeNewFile(join(to, name), await fs.readFile(join(from, name)), mode);
    copied += 1;
  });
  return copied;
}

/**
 * `ringmaster ca import DIR`: copies a CA directory made by `puppetserver ca setup` (or a
 * puppetserver cadir) to `target`, which appears complete or not at all. Nothing is derived:
 * ca_pub.pem stays absent if it was, and only an empty inventory.txt and the requests/ and signed/
 * folders are created when missing.
 */
export async function importCaDirectory(source: string, target: string): Promise<ImportResult> {
  const from = resolve(source);
  const to = resolve(target);
  if (to === from || to.startsWith(`${from}/`)) {
    throw new RingmasterError('RM_CA_IMPORT_INVALID', `cannot import ${from} into itself (${to})`);
  }
  const info = await fs.stat(from).catch(() => undefined);
  if (info?.isDirectory() !== true) throw new RingmasterError('RM_CA_IMPORT_INVALID', `${from} is not a directory`);
  const problems = await problemsWithSource(from);
  if (problems.length > 0) {
    const message = `${from} is not a usable puppetserver CA directory: ${problems.join('; ')}`;
    throw new RingmasterError('RM_CA_IMPORT_INVALID', message, { details: { problems } });
  }
  if (await new CaStore(to).exists()) throw new RingmasterError('RM_CA_DIR_EXISTS', `a CA already exists in ${to}`);
  return buildAndPublish(to, async (tmp) => {
    const files = await copyFiles(from, tmp);
    await makeSubdirs(tmp);
    const counts = { requests: 0, signed: 0 };
    for (const sub of [caFileNames.requests, caFileNames.signed] as const) {
      const subInfo = await fs.stat(join(from, sub)).catch(() => undefined);
      if (subInfo?.isDirectory() === true) counts[sub] = await copyFiles(join(from, sub), join(tmp, sub));
      await syncDirectory(join(tmp, sub));
    }
    const inventory = join(tmp, caFileNames.inventory);
    if (!(await fs.stat(inventory).catch(() => undefined))) await writeNewFile(inventory, '', publicMode);
    return { files, ...counts };
  });
}
