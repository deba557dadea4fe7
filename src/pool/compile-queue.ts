import type { Clock, TimerHandle } from '../lib/clock.ts';

// The compiles waiting for a free slot in one pool, first come first served, each with its own
// deadline on the injected clock. The pool calls `serve` whenever a slot may have opened (a
// compile finished, a member became eligible, a slow-start step passed); `serve` hands slots out
// in arrival order. A waiter that cannot use any free slot (it excludes the members that are
// free, as a retry does) lets later ones pass rather than blocking the whole queue.

export type Waiter<G> = {
  readonly seq: number;
  readonly enqueuedAt: number;
  /** Member names this compile must not go to (already tried). */
  readonly exclude: ReadonlySet<string> | undefined;
  readonly key: string | undefined;
  resolve(grant: G): void;
  reject(err: Error): void;
};

type Entry<G> = Waiter<G> & { timer: TimerHandle; done: boolean };

export class CompileQueue<G> {
  #clock: Clock;
  #entries: Entry<G>[] = [];
  #seq = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Age in ms of the oldest waiter, 0 when none waits. */
  oldestWaitMs(): number {
    const first = this.#entries[0];
    return first ? this.#clock.now() - first.enqueuedAt : 0;
  }

  /**
   * Adds a waiter; `onTimeout` is called (and the waiter removed) if no slot was handed to it
   * within `timeoutMs`. Returns a function that withdraws it (the agent went away).
   */
  add(w: Omit<Waiter<G>, 'seq' | 'enqueuedAt'>, timeoutMs: number, onTimeout: (waitedMs: number) => Error): () => void {
    const enqueuedAt = this.#clock.now();
    const entry: Entry<G> = {
      ...w,
      seq: this.#seq++,
      enqueuedAt,
      done: false,
      timer: this.#clock.setTimeout(() => {
        if (!this.#remove(entry)) return;
        entry.reject(onTimeout(this.#clock.now() - enqueuedAt));
      }, timeoutMs),
    };
    this.#entries.push(entry);
    return () => {
      if (this.#remove(entry)) entry.timer.cancel();
    };
  }

  /**
   * Offers slots to the waiters in arrival order: `grant` returns a grant for a waiter (taking
   * the slot) or undefined when no free slot suits it. Stops early when `more()` says no slot is
   * left for anyone. Returns how many were served.
   */
  serve(grant: (w: Waiter<G>) => G | undefined, more: () => boolean): number {
    let served = 0;
    for (const entry of [...this.#entries]) {
      if (!more()) break;
      if (entry.done) continue;
      const g = grant(entry);
      if (g === undefined) continue;
      this.#remove(entry);
      entry.timer.cancel();
      served++;
      entry.resolve(g);
    }
    return served;
  }

  /** Answers every waiter with `err` (the pool is stopping, or lost all its members). */
  rejectAll(err: () => Error): void {
    const entries = this.#entries;
    this.#entries = [];
    for (const entry of entries) {
      entry.done = true;
      entry.timer.cancel();
      entry.reject(err());
    }
  }

  #remove(entry: Entry<G>): boolean {
    if (entry.done) return false;
    entry.done = true;
    const i = this.#entries.indexOf(entry);
    if (i !== -1) this.#entries.splice(i, 1);
    return true;
  }
}
