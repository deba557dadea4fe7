import type { Clock, TimerHandle } from '../lib/clock.ts';
import { errorMessage, isRingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { ReportStore } from './store.ts';

// Applies reports.retention on a timer: every `intervalMs`, reports older than `maxAgeMs` and
// beyond the newest `maxCount` are deleted in small batches, with a turn of the event loop
// between batches, so a large backlog (after lowering the limits, or a long stop) never holds up
// requests. A failed prune is logged and retried at the next interval.

export type RetentionOptions = {
  store: ReportStore;
  clock: Clock;
  log: Log;
  maxAgeMs: number;
  maxCount: number;
  intervalMs: number;
  /** First run after start; a short delay lets the server finish starting. */
  initialDelayMs?: number;
  batchSize?: number;
  /** Between batches; a turn of the event loop by default. */
  pause?: () => Promise<void>;
};

export type RetentionRun = { at: number; deleted: number; error: string | null };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class ReportRetention {
  #options: RetentionOptions;
  #timer: TimerHandle | undefined;
  #running: Promise<number> | undefined;
  #stopped = true;
  #lastRun: RetentionRun | undefined;

  constructor(options: RetentionOptions) {
    this.#options = options;
  }

  get lastRun(): RetentionRun | undefined {
    return this.#lastRun;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(this.#options.initialDelayMs ?? 10_000);
  }

  /** Cancels the timer; a run under way stops after its current batch. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One pass until nothing is past the limits; resolves to the number deleted. Overlapping calls share the pass. */
  runOnce(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { store, clock, log, maxAgeMs, maxCount, batchSize } = this.#options;
    const pause = this.#options.pause ?? nextTurn;
    const at = clock.now();
    let deleted = 0;
    try {
      for (;;) {
        const result = await store.prune({ maxAgeMs, maxCount, now: clock.now(), batchSize });
        deleted += result.deleted;
        if (result.done || this.#stopped) break;
        await pause();
      }
      this.#lastRun = { at, deleted, error: null };
      if (deleted > 0) log.info({ deleted }, 'reports past retention deleted');
    } catch (err) {
      this.#lastRun = { at, deleted, error: errorMessage(err) };
      log.warn({ code: isRingmasterError(err) ? err.code : 'RM_REPORTS_STORE', err: errorMessage(err), deleted }, 'reports retention failed; retrying at the next interval');
    }
    return deleted;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#options.clock.setTimeout(() => {
      void this.runOnce().then(() => this.#schedule(this.#options.intervalMs));
    }, ms);
  }
}
