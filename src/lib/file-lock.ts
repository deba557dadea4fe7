import { writeFile, link, readFile, unlink, rename } from 'node:fs/promises';
import { RingmasterError } from './errors.ts';

// A cross-process exclusive lock: a lock file created with O_EXCL that holds the owner's pid.
// The server and the CLI both take it before touching the CA directory. A holder that was killed
// (SIGKILL leaves the file behind) is detected by its pid no longer existing, and the lock is
// taken over. Inside one process, callers are queued so the file is created once at a time.

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

export class FileLock {
  readonly path: string;
  #tail: Promise<unknown> = Promise.resolve();
  #timeoutMs: number;
  #retryMs: number;
  #alive: (pid: number) => boolean;

  constructor(path: string, options: FileLockOptions = {}) {
    this.path = path;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#retryMs = options.retryMs ?? 5;
    this.#alive = options.isProcessAlive ?? processAlive;
  }

  /** Runs `fn` while holding the lock; callers in this process run one after another. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(async () => {
      await this.#acquire();
      try {
        return await fn();
      } finally {
        await unlink(this.path).catch(() => undefined);
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #acquire(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      // The pid is written to a private file first and hard-linked into place, so the lock file
      // never exists without its owner in it.
      const mine = `${this.path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      await writeFile(mine, `${process.pid}\n`, { mode: 0o600 });
      try {
        await link(mine, this.path);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await unlink(mine).catch(() => undefined);
      }
      await this.#breakIfStale();
      if (Date.now() > deadline) {
        throw new RingmasterError('RM_CA_LOCK_TIMEOUT', `could not lock ${this.path} within ${this.#timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, this.#retryMs));
    }
  }

  async #breakIfStale(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return;
    }
    const pid = Number.parseInt(text, 10);
    if (Number.isInteger(pid) && pid !== process.pid && !this.#alive(pid)) {
      // Move it aside first so two breakers cannot both delete a lock a third process just took.
      const aside = `${this.path}.stale.${process.pid}`;
      try {
        await rename(this.path, aside);
        const again = await readFile(aside, 'utf8').catch(() => '');
        if (again !== text) {
          // Someone re-took the lock between our read and rename; give it back.
          await rename(aside, this.path).catch(() => undefined);
          return;
        }
        await unlink(aside).catch(() => undefined);
      } catch {
        // Another breaker won the race.
      }
    }
  }
}
