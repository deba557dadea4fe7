import { AsyncLocalStorage } from 'node:async_hooks';
import * as fs from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic, appendFileDurable, removeFileDurable, ensureDirectory, syncDirectory } from '../lib/atomic-file.ts';
import { FileLock } from '../lib/file-lock.ts';
import { RingmasterError } from '../lib/errors.ts';
import { formatInventoryLine, formatSerial, parseInventory, parseSerialText, type InventoryEntry } from './inventory.ts';

// Owns one CA directory in the puppetserver layout (ca_crt.pem, ca_key.pem, serial, inventory.txt,
// requests/, signed/ ...). It stores PEM text and never parses X.509, so puppetserver and the
// `puppetserver ca` CLI can read what it writes and the other way round.

export type { InventoryEntry } from './inventory.ts';

export const caFileNames = {
  cert: 'ca_crt.pem', key: 'ca_key.pem', pub: 'ca_pub.pem', crl: 'ca_crl.pem',
  serial: 'serial', inventory: 'inventory.txt', requests: 'requests', signed: 'signed',
  infraCrl: 'infra_crl.pem', infraInventory: 'infra_inventory.txt',
} as const;

export type CaFileName = keyof typeof caFileNames;
export type CaPemFile = 'cert' | 'key' | 'pub' | 'crl' | 'infraCrl';
export type CaStoreOptions = { lockTimeoutMs?: number };
export type CaInitialFiles = { caCertPem: string; caKeyPem: string; caPubPem: string; crlPem: string; nextSerial: bigint };
export type NamedPem = { name: string; pem: string };

const dirMode = 0o750;
export const publicMode = 0o644;
export const keyMode = 0o640;
export const writeConcurrency = 32;
// Leftovers of interrupted writes: writeFileAtomic's `.<name>.<pid>.<hex>.tmp` and our own
// `.rm-<pid>-<hex>.tmp`. Neither puppetserver nor its CLI creates dot files in the CA directory.
const tempFilePattern = /^\..+\.tmp$/;
const lockDebrisPattern = /^\.lock\.(?:(\d+)\.[0-9a-z]+|break-\d+(?:\.break-\d+)*)$/;

// Which CA directories the current async call chain holds the lock of, and which directories this
// process holds at all: a write must be inside withLock, and not in a callback that outlived it.
const lockContext = new AsyncLocalStorage<ReadonlySet<string>>();
const heldDirs = new Set<string>();

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

function invalid(path: string, problem: string, cause?: unknown): RingmasterError {
  return new RingmasterError('RM_CA_DIR_INVALID', `${path} ${problem}`, cause === undefined ? {} : { cause });
}

/** Certnames are validated by the caller; this only guarantees that no name can leave its folder. */
function checkName(name: string): void {
  if (name === '' || name.startsWith('.') || /[/\\\0]/.test(name) || Buffer.byteLength(name) > 251) {
    throw new RingmasterError('RM_CA_CERTNAME_INVALID', `${JSON.stringify(name)} cannot name a file in the CA directory`);
  }
}

export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Creates a file that must not exist yet, with exactly `mode`, and fsyncs it. */
export async function writeNewFile(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const handle = await fs.open(path, 'wx', mode);
  try {
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.unlink(path).catch(() => undefined);
    throw err;
  }
  await handle.close();
}

/**
 * Replaces many files in one directory: temp files written and fsynced in parallel, renamed, then
 * one directory fsync for all. Temp names do not include the target name, so a certname as long
 * as puppetserver allows still fits in a file name.
 */
async function writeFilesDurable(dir: string, items: ReadonlyArray<{ file: string; data: string }>, mode: number): Promise<void> {
  const staged: string[] = [];
  try {
    await mapLimit(items, writeConcurrency, async (item) => {
      const tmp = join(dir, `.rm-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
      staged.push(tmp);
      await writeNewFile(tmp, item.data, mode);
      await fs.rename(tmp, join(dir, item.file));
    });
  } catch (err) {
    await Promise.all(staged.map((tmp) => fs.unlink(tmp).catch(() => undefined)));
    throw err;
  }
  await syncDirectory(dir);
}

/**
 * Builds a directory next to `target` and renames it into place, so `target` appears complete or
 * not at all. rename(2) refuses a non-empty target, which also settles a race between two
 * creators; an empty directory in the way is replaced.
 */
export async function buildAndPublish<T>(target: string, build: (tmp: string) => Promise<T>): Promise<T> {
  const parent = dirname(target);
  await ensureDirectory(parent, dirMode);
  const tmp = join(parent, `.${basename(target)}.new-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(tmp, { mode: dirMode });
  try {
    await fs.chmod(tmp, dirMode);
    const result = await build(tmp);
    await syncDirectory(tmp);
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new RingmasterError('RM_CA_DIR_EXISTS', `${target} already exists and is not an empty directory; move it away first`, { cause: err });
      }
      throw err;
    }
    await syncDirectory(parent);
    return result;
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

export async function makeSubdirs(dir: string): Promise<void> {
  for (const sub of [caFileNames.requests, caFileNames.signed]) {
    await fs.mkdir(join(dir, sub), { mode: dirMode });
    await fs.chmod(join(dir, sub), dirMode);
  }
}

export class CaStore {
  readonly dir: string;
  #lock: FileLock;

  constructor(dir: string, options: CaStoreOptions = {}) {
    this.dir = resolve(dir);
    this.#lock = new FileLock(join(this.dir, '.lock'), options.lockTimeoutMs === undefined ? {} : { timeoutMs: options.lockTimeoutMs });
  }

  pathOf(name: CaFileName): string {
    return join(this.dir, caFileNames[name]);
  }

  /** A CA is present when ca_crt.pem is. */
  async exists(): Promise<boolean> {
    try {
      await fs.access(this.pathOf('cert'));
      return true;
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw invalid(this.pathOf('cert'), `cannot be checked (${code ?? 'error'})`, err);
    }
  }

  /** Creates the CA directory complete, or fails leaving nothing; not to be called inside withLock. */
  async initialize(files: CaInitialFiles): Promise<void> {
    if (files.nextSerial < 1n) throw new RingmasterError('RM_INTERNAL', `initial serial ${files.nextSerial} is not positive`);
    for (const [field, pem] of Object.entries(files)) {
      if (typeof pem === 'string' && pem.trim() === '') throw new RingmasterError('RM_INTERNAL', `initialize: ${field} is empty`);
    }
    if (await this.exists()) throw new RingmasterError('RM_CA_DIR_EXISTS', `a CA already exists in ${this.dir}`);
    await buildAndPublish(this.dir, async (tmp) => {
      await writeNewFile(join(tmp, caFileNames.cert), files.caCertPem, publicMode);
      await writeNewFile(join(tmp, caFileNames.key), files.caKeyPem, keyMode);
      await writeNewFile(join(tmp, caFileNames.pub), files.caPubPem, publicMode);
      await writeNewFile(join(tmp, caFileNames.crl), files.crlPem, publicMode);
      await writeNewFile(join(tmp, caFileNames.serial), formatSerial(files.nextSerial), publicMode);
      await writeNewFile(join(tmp, caFileNames.inventory), '', publicMode);
      await makeSubdirs(tmp);
    });
  }

  /** Serialises against other processes (lock file <dir>/.lock) and other callers here; re-entrant. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const outer = lockContext.getStore();
    if (outer?.has(this.dir) === true && heldDirs.has(this.dir)) return fn();
    let entered = false;
    try {
      return await this.#lock.withLock(async () => {
        entered = true;
        heldDirs.add(this.dir);
        try {
          return await lockContext.run(new Set([...(outer ?? []), this.dir]), fn);
        } finally {
          heldDirs.delete(this.dir);
        }
      });
    } catch (err) {
      if (!entered && errno(err) === 'ENOENT') {
        throw new RingmasterError('RM_CA_NOT_INITIALISED', `no CA directory at ${this.dir}`, { cause: err });
      }
      throw err;
    }
  }

  #assertLocked(operation: string): void {
    if (lockContext.getStore()?.has(this.dir) !== true || !heldDirs.has(this.dir)) {
      throw new RingmasterError('RM_INTERNAL', `CaStore.${operation} called outside withLock for ${this.dir}`);
    }
  }

  async #readText(path: string): Promise<string> {
    try {
      return await fs.readFile(path, 'utf8');
    } catch (err) {
      throw invalid(path, errno(err) === 'ENOENT' ? 'is missing' : 'cannot be read', err);
    }
  }

  async readFile(name: CaPemFile): Promise<string> {
    const text = await this.#readText(this.pathOf(name));
    if (text.trim() === '') throw invalid(this.pathOf(name), 'is empty');
    return text;
  }

  async writeCrl(pem: string): Promise<void> {
    this.#assertLocked('writeCrl');
    await writeFileAtomic(this.pathOf('crl'), pem, { mode: publicMode });
  }

  /** infra_crl.pem (the infrastructure CRL, src/ca/infra-crl.ts). */
  async writeInfraCrl(pem: string): Promise<void> {
    this.#assertLocked('writeInfraCrl');
    await writeFileAtomic(this.pathOf('infraCrl'), pem, { mode: publicMode });
  }

  async hasInfraCrl(): Promise<boolean> {
    return fs.access(this.pathOf('infraCrl')).then(() => true, () => false);
  }

  /** The certnames in infra_inventory.txt, one per line (puppetserver's format); none when the file is missing. */
  async readInfraInventory(): Promise<string[]> {
    const text = await fs.readFile(this.pathOf('infraInventory'), 'utf8').catch((err: unknown) => {
      if (errno(err) === 'ENOENT') return '';
      throw invalid(this.pathOf('infraInventory'), 'cannot be read', err);
    });
    return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  }

  async mtime(name: 'cert' | 'crl' | 'infraCrl'): Promise<number> {
    const path = this.pathOf(name);
    try {
      return (await fs.stat(path)).mtimeMs;
    } catch (err) {
      throw invalid(path, 'is missing', err);
    }
  }

  async readNextSerial(): Promise<bigint> {
    const text = await this.#readText(this.pathOf('serial'));
    const serial = parseSerialText(text);
    if (serial === undefined) {
      throw invalid(this.pathOf('serial'), `does not hold a hexadecimal serial number: ${JSON.stringify(text.slice(0, 40))}`);
    }
    return serial;
  }

  /** Reserves n serials; the bump is durable before they are returned, so a crash can skip serials but never reuse one. */
  async allocateSerials(n: number): Promise<bigint[]> {
    this.#assertLocked('allocateSerials');
    if (!Number.isSafeInteger(n) || n < 0) throw new RingmasterError('RM_INTERNAL', `cannot allocate ${n} serials`);
    if (n === 0) return [];
    const first = await this.readNextSerial();
    await writeFileAtomic(this.pathOf('serial'), formatSerial(first + BigInt(n)), { mode: publicMode });
    return Array.from({ length: n }, (_, i) => first + BigInt(i));
  }

  async #readInventoryText(): Promise<string> {
    try {
      return await fs.readFile(this.pathOf('inventory'), 'utf8');
    } catch (err) {
      // puppetserver creates it on its first append; so do we.
      if (errno(err) === 'ENOENT') return '';
      throw invalid(this.pathOf('inventory'), 'cannot be read', err);
    }
  }

  /** Entries of inventory.txt; a torn last line and unparsable lines are skipped. */
  async readInventory(): Promise<InventoryEntry[]> {
    return parseInventory(await this.#readInventoryText()).entries;
  }

  /** One durable append for all entries. */
  async appendInventory(entries: readonly InventoryEntry[]): Promise<void> {
    this.#assertLocked('appendInventory');
    if (entries.length === 0) return;
    const text = entries.map(formatInventoryLine).join('');
    if (!(await this.#inventoryEndsCleanly())) await this.#dropTornInventoryTail(await this.#readInventoryText());
    await appendFileDurable(this.pathOf('inventory'), text);
  }

  async #inventoryEndsCleanly(): Promise<boolean> {
    const handle = await fs.open(this.pathOf('inventory'), 'r').catch((err: unknown) => {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (handle === undefined) return true;
    try {
      const { size } = await handle.stat();
      return size === 0 || (await handle.read(Buffer.alloc(1), 0, 1, size - 1)).buffer[0] === 0x0a;
    } finally {
      await handle.close();
    }
  }

  /** Returns the removed line, if there was one. */
  async #dropTornInventoryTail(text: string, parsed = parseInventory(text)): Promise<string | undefined> {
    if (parsed.tornTail === undefined) return undefined;
    await writeFileAtomic(this.pathOf('inventory'), text.slice(0, parsed.keepLength), { mode: publicMode });
    return parsed.tornTail;
  }

  // requests/<name>.pem and signed/<name>.pem. Names are checked only so no path can escape.
  getRequest = (name: string): Promise<string | undefined> => this.#get(caFileNames.requests, name);
  putRequest = (name: string, pem: string): Promise<void> => this.#put('putRequest', caFileNames.requests, [{ name, pem }]);
  deleteRequest = (name: string): Promise<boolean> => this.#delete('deleteRequest', caFileNames.requests, name);
  listRequests = (): Promise<string[]> => this.#list(caFileNames.requests);
  getSigned = (name: string): Promise<string | undefined> => this.#get(caFileNames.signed, name);
  putSigned = (name: string, pem: string): Promise<void> => this.#put('putSigned', caFileNames.signed, [{ name, pem }]);
  /** Writes a signed batch with one directory fsync; every file is durable when this resolves. */
  putSignedMany = (certs: readonly NamedPem[]): Promise<void> => this.#put('putSignedMany', caFileNames.signed, certs);
  deleteSigned = (name: string): Promise<boolean> => this.#delete('deleteSigned', caFileNames.signed, name);
  listSigned = (): Promise<string[]> => this.#list(caFileNames.signed);

  async #get(sub: string, name: string): Promise<string | undefined> {
    checkName(name);
    try {
      return await fs.readFile(join(this.dir, sub, `${name}.pem`), 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async #put(operation: string, sub: string, items: readonly NamedPem[]): Promise<void> {
    this.#assertLocked(operation);
    for (const item of items) checkName(item.name);
    if (items.length === 0) return;
    const files = items.map((item) => ({ file: `${item.name}.pem`, data: item.pem }));
    const dir = join(this.dir, sub);
    try {
      await writeFilesDurable(dir, files, publicMode);
    } catch (err) {
      // `puppetserver ca setup` creates signed/ but not requests/.
      if (errno(err) !== 'ENOENT') throw err;
      // Not recursive: a CA directory that has gone must not come back as an empty shell.
      await fs.mkdir(dir, { mode: dirMode }).catch((e: unknown) => {
        if (errno(e) !== 'EEXIST') throw e;
      });
      await syncDirectory(this.dir);
      await writeFilesDurable(dir, files, publicMode);
    }
  }

  async #delete(operation: string, sub: string, name: string): Promise<boolean> {
    this.#assertLocked(operation);
    checkName(name);
    return removeFileDurable(join(this.dir, sub, `${name}.pem`));
  }

  async #list(sub: string): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(join(this.dir, sub));
    } catch (err) {
      if (errno(err) === 'ENOENT') return [];
      throw err;
    }
    return names.filter((n) => n.endsWith('.pem') && !n.startsWith('.')).map((n) => n.slice(0, -4)).sort();
  }

  /** Start-up checks under the lock; returns one line per thing fixed or found, for the log. */
  async repair(): Promise<string[]> {
    this.#assertLocked('repair');
    const report: string[] = [];
    const inventoryText = await this.#readInventoryText();
    const parsed = parseInventory(inventoryText);
    const torn = await this.#dropTornInventoryTail(inventoryText, parsed);
    if (torn !== undefined) report.push(`${this.pathOf('inventory')}: removed a torn last line ${JSON.stringify(torn.slice(0, 120))}`);
    if (parsed.invalidLines.length > 0) {
      report.push(`${this.pathOf('inventory')}: kept ${parsed.invalidLines.length} line(s) that cannot be parsed: ${parsed.invalidLines.slice(0, 20).join(', ')}`);
    }
    report.push(...(await this.#removeLeftovers()));
    // inventory.txt is the record of what was issued: the next serial must be past all of it.
    const next = await this.readNextSerial();
    const max = parsed.maxSerialSeen;
    if (max !== undefined && next <= max) {
      await writeFileAtomic(this.pathOf('serial'), formatSerial(max + 1n), { mode: publicMode });
      report.push(`${this.pathOf('serial')}: next serial ${formatSerial(next)} was not past inventory serial 0x${formatSerial(max)}; raised to ${formatSerial(max + 1n)}`);
    }
    return report;
  }

  async #removeLeftovers(): Promise<string[]> {
    const report: string[] = [];
    const removeAll = async (dir: string, test: (name: string) => Promise<boolean>): Promise<void> => {
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (!(await test(name))) continue;
        await fs.rm(join(dir, name), { recursive: true, force: true });
        report.push(`removed leftover ${join(dir, name)}`);
      }
    };
    // Under the lock no other writer is active, so every temp file is from an interrupted write,
    // whatever pid wrote it (after a container restart our own pid may be the one).
    for (const dir of [this.dir, join(this.dir, caFileNames.requests), join(this.dir, caFileNames.signed)]) {
      await removeAll(dir, (name) => Promise.resolve(tempFilePattern.test(name)));
    }
    // A pid file or break guard of a process killed while it was taking the lock.
    await removeAll(this.dir, async (name) => {
      const m = lockDebrisPattern.exec(name);
      if (m === null) return false;
      const pid = Number.parseInt(m[1] ?? (await fs.readFile(join(this.dir, name), 'utf8').catch(() => '')), 10);
      return !(pid > 0) || pid === process.pid || !pidAlive(pid);
    });
    // A half-built directory from an initialize or import that crashed; one still being built
    // by a live process is left alone.
    const prefix = `.${basename(this.dir)}.new-`;
    await removeAll(dirname(this.dir), (name) => {
      const m = /^(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length));
      return Promise.resolve(name.startsWith(prefix) && m !== null && !pidAlive(Number(m[1])));
    });
    return report;
  }
}
