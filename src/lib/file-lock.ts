import { writeFile, link, readFile, unlink, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RingmasterError } from './errors.ts';

// A cross-process exclusive lock: a lock file created with O_EXCL semantics that holds the owner's
// pid. The server and the CLI both take it before touching the CA directory. A holder that was
// killed (SIGKILL leaves the file behind) is detected by its pid no longer existing, and the lock
// is taken over. Inside one process, every FileLock on the same path shares one queue, so the file
// is contended only between processes.

export type FileLockOptions = {
  timeoutMs?: number;
  retryMs?: number;
  isProcessAlive?: (pid: number) => boolean;
};

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Keyed by resolved path: two FileLock objects for one file must not race each other through the
// file, because both would write the same pid into it.
const queues = new Map<string, Promise<unknown>>();

// A file without a pid in it can only be left by a power loss before its data reached the disk;
// it is treated as stale once it is older than this.
const unownedGraceMs = 5_000;

/** The pid in the file, 0 if it holds none, undefined if the file is gone. */
async function readOwner(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

/** Creates `path` holding our pid, or returns false if it exists. */
async function createOwned(path: string): Promise<boolean> {
  // The pid is written to a private file first and hard-linked into place, so the file never
  // exists without its owner in it.
  const mine = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    await link(mine, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

export class FileLock {
  readonly path: string;
  #timeoutMs: number;
  #retryMs: number;
  #alive: (pid: number) => boolean;

  constructor(path: string, options: FileLockOptions = {}) {
    this.path = resolve(path);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#retryMs = options.retryMs ?? 5;
    this.#alive = options.isProcessAlive ?? processAlive;
  }

  /** Runs `fn` while holding the lock; callers in this process run one after another. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const tail = queues.get(this.path) ?? Promise.resolve();
    const run = tail.then(async () => {
      await this.#acquire();
      try {
        return await fn();
      } finally {
        await unlink(this.path).catch(() => undefined);
      }
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(this.path, settled);
    void settled.then(() => {
      if (queues.get(this.path) === settled) queues.delete(this.path);
    });
    return run;
  }

  async #acquire(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      if (await createOwned(this.path)) return;
      await this.#removeIfStale(this.path, 0);
      if (Date.now() > deadline) {
        throw new RingmasterError('RM_CA_LOCK_TIMEOUT', `could not lock ${this.path} within ${this.#timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, this.#retryMs));
    }
  }

  // Our own pid in the file means a previous process with the same pid (a restarted container
  // is pid 1 again): this process's queue lets only one caller acquire at a time, and it does not
  // hold the lock while it is acquiring.
  async #stale(file: string, pid: number): Promise<boolean> {
    if (pid === 0) {
      const info = await stat(file).catch(() => undefined);
      return info !== undefined && Date.now() - info.mtimeMs > unownedGraceMs;
    }
    return pid === process.pid || !this.#alive(pid);
  }

  // Removing another process's file is check-then-act, so breakers of one dead owner's file are
  // serialised by a guard file named after that owner, and the owner is read again under the
  // guard: a lock someone took after our first read is never removed. A breaker that died
  // holding the guard leaves a guard with a dead owner, which is broken the same way.
  async #removeIfStale(file: string, depth: number): Promise<void> {
    const owner = await readOwner(file);
    if (owner === undefined || !(await this.#stale(file, owner))) return;
    const guard = `${file}.break-${owner}`;
    if (!(await createOwned(guard))) {
      if (depth < 3) await this.#removeIfStale(guard, depth + 1);
      return;
    }
    try {
      const again = await readOwner(file);
      if (again === owner && (await this.#stale(file, again))) await unlink(file).catch(() => undefined);
    } finally {
      await unlink(guard).catch(() => undefined);
    }
  }
}
