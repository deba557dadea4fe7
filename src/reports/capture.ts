import type { Clock } from '../lib/clock.ts';
import { errorMessage, isRingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { parseReport } from './parse.ts';
import type { ReportStore } from './store.ts';

// What the request path calls with each report an agent PUTs. `capture` only queues and returns:
// parsing and storing happen after it, a bounded number at a time, so the agent's request never
// waits on the store and a slow, full or broken store costs memory up to the queue limits and
// nothing else. Every report ends in exactly one counter: captured, invalid, failed or dropped.
// Problems are logged at most once a minute per kind, with the number of occurrences since.

export type CaptureInput = {
  /** The verified certname (the name in the URL, which auth.conf ties to the client certificate). */
  certname: string;
  /** The body exactly as received. */
  body: Buffer;
  /** ms since the epoch. */
  receivedAt: number;
  /** The member that served the catalog, when the caller knows; else what `noteCatalog` recorded. */
  compiler?: string | undefined;
  /** The `environment` query parameter, used when the body has none. */
  environment?: string | undefined;
};

export type CaptureOutcome = 'queued' | 'dropped';

export type ReportCaptureOptions = {
  store: ReportStore;
  clock: Clock;
  log: Log;
  /** Reports waiting or being stored; one more is dropped. */
  maxQueue?: number;
  /** Bytes of bodies waiting or being stored; a report that would pass it is dropped. */
  maxQueueBytes?: number;
  /** Stores at once. The SQLite store batches the adds it holds into one transaction. */
  concurrency?: number;
  /** Nodes whose last catalog's compiler is remembered, and for how long. */
  catalogMemory?: { maxNodes?: number; maxAgeMs?: number };
};

type Item = { input: CaptureInput; compiler: string | null; catalogTransaction: string | null };
type Noted = { member: string; at: number; transactionUuid: string | null };
type Problem = 'invalid' | 'failed' | 'dropped';

const logEveryMs = 60_000;

export class ReportCapture {
  #store: ReportStore;
  #clock: Clock;
  #log: Log;
  #maxQueue: number;
  #maxQueueBytes: number;
  #concurrency: number;
  #maxNodes: number;
  #maxAgeMs: number;
  #waiting: Item[] = [];
  #inFlight = 0;
  #bytes = 0;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  #catalogs = new Map<string, Noted>();
  #counts = { captured: 0, invalid: 0, failed: 0, dropped: 0 };
  #lastLog = new Map<Problem, { at: number; suppressed: number }>();

  constructor(options: ReportCaptureOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#maxQueue = options.maxQueue ?? 1000;
    this.#maxQueueBytes = options.maxQueueBytes ?? 64 * 1024 * 1024;
    this.#concurrency = options.concurrency ?? 16;
    this.#maxNodes = options.catalogMemory?.maxNodes ?? 200_000;
    this.#maxAgeMs = options.catalogMemory?.maxAgeMs ?? 2 * 3600_000;
  }

  /** Reports stored. */
  get captured(): number { return this.#counts.captured; }
  /** Bodies that were not Puppet reports (RM_REPORT_INVALID). */
  get invalid(): number { return this.#counts.invalid; }
  /** Reports the store refused or failed on. */
  get failed(): number { return this.#counts.failed; }
  /** Reports not queued: queue full (by count or bytes) or capture closed. */
  get dropped(): number { return this.#counts.dropped; }
  /** Reports waiting or being stored, and their bytes. */
  get queued(): number { return this.#waiting.length + this.#inFlight; }
  get queuedBytes(): number { return this.#bytes; }

  /** Queues a report for storing; never throws and never waits. */
  capture(input: CaptureInput): CaptureOutcome {
    try {
      const size = input.body.length;
      if (this.#closed || this.queued >= this.#maxQueue || this.#bytes + size > this.#maxQueueBytes) {
        this.#counts.dropped++;
        this.#problem('dropped', { certname: input.certname, bytes: size, queued: this.queued, queuedBytes: this.#bytes, closed: this.#closed }, 'report not stored: the capture queue is full');
        return 'dropped';
      }
      const noted = this.#noted(input.certname);
      this.#waiting.push({ input, compiler: input.compiler ?? noted?.member ?? null, catalogTransaction: input.compiler === undefined ? (noted?.transactionUuid ?? null) : null });
      this.#bytes += size;
      this.#pump();
      return 'queued';
    } catch (err) {
      this.#counts.failed++;
      this.#problem('failed', { certname: input?.certname, err: errorMessage(err) }, 'report not stored');
      return 'dropped';
    }
  }

  /**
   * Records that `member` served `certname` a catalog, so its coming report names the compiler.
   * With the catalog's transaction UUID, a report of another run (a cached catalog) names none.
   */
  noteCatalog(certname: string, member: string, transactionUuid?: string): void {
    this.#catalogs.delete(certname);
    this.#catalogs.set(certname, { member, at: this.#clock.now(), transactionUuid: transactionUuid ?? null });
    // Map order is insertion order: the first entries are the oldest.
    for (const [name, entry] of this.#catalogs) {
      if (this.#catalogs.size <= this.#maxNodes && this.#clock.now() - entry.at <= this.#maxAgeMs) break;
      this.#catalogs.delete(name);
    }
  }

  /** Resolves once nothing is waiting or being stored. */
  idle(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Takes no more reports (they count as dropped); waits up to `deadlineMs` for the queue to empty. */
  async close(deadlineMs = 5000): Promise<void> {
    this.#closed = true;
    if (this.queued === 0) return;
    let timer: { cancel(): void } | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => { timer = this.#clock.setTimeout(resolve, deadlineMs); })]);
    timer?.cancel();
  }

  #noted(certname: string): Noted | undefined {
    const entry = this.#catalogs.get(certname);
    return entry && this.#clock.now() - entry.at <= this.#maxAgeMs ? entry : undefined;
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#waiting.length > 0) {
      const item = this.#waiting.shift() as Item;
      this.#inFlight++;
      // Parsing waits for the next turn, so capture() itself stays O(1) for the request path.
      void new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#store1(item))
        .finally(() => {
          this.#inFlight--;
          this.#bytes -= item.input.body.length;
          this.#pump();
          if (this.queued === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
        });
    }
  }

  async #store1(item: Item): Promise<void> {
    const { input } = item;
    let report;
    try {
      report = parseReport(input.body, { certname: input.certname, environment: input.environment });
    } catch (err) {
      this.#counts.invalid++;
      this.#problem('invalid', { certname: input.certname, code: 'RM_REPORT_INVALID', err: errorMessage(err) }, 'report not stored: not a Puppet report');
      return;
    }
    // A report from a cached catalog, or of another run than the noted catalog, has no compiler.
    const cached = report.cachedCatalogStatus === 'explicitly_requested' || report.cachedCatalogStatus === 'on_failure';
    const otherRun = item.catalogTransaction !== null && report.transactionUuid !== null && item.catalogTransaction !== report.transactionUuid;
    const compiler = cached || otherRun ? null : item.compiler;
    try {
      const id = await this.#store.add({ report, receivedAt: input.receivedAt, compiler, body: input.body });
      this.#counts.captured++;
      this.#log.debug({ certname: input.certname, id, status: report.status, compiler }, 'report stored');
    } catch (err) {
      this.#counts.failed++;
      this.#problem('failed', { certname: input.certname, code: isRingmasterError(err) ? err.code : 'RM_REPORTS_STORE', err: errorMessage(err) }, 'report not stored: the reports store failed');
    }
  }

  #problem(kind: Problem, fields: Record<string, unknown>, message: string): void {
    const now = this.#clock.now();
    const last = this.#lastLog.get(kind);
    if (last && now - last.at < logEveryMs) {
      last.suppressed++;
      return;
    }
    this.#lastLog.set(kind, { at: now, suppressed: 0 });
    const counters = { ...this.#counts, suppressedSinceLastLog: last?.suppressed ?? 0 };
    this.#log.warn({ ...fields, ...counters }, message);
  }
}
