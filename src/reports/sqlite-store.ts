import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { open as openFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { gzip, gunzip } from 'node:zlib';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { FailedResource } from './parse.ts';
import {
  checkReportQuery, checkStatsQuery, defaultPruneBatch, emptyBuckets, nodeCursor, pageSize, reportCursor, unavailable,
  type NewReport, type NodeQuery, type NodeSummary, type Page, type PruneLimits, type PruneResult, type ReportQuery,
  type ReportStats, type ReportStore, type ReportSummary, type StatsQuery, type StatusCounts, type StoredReport,
} from './store.ts';

// The embedded reports store: `<stateDir>/reports.sqlite` through Node's built-in SQLite, in WAL
// mode so the CLI reads while the server writes. The only importer of node:sqlite.
//
// DatabaseSync runs on the event loop, so each call must stay short: bodies are gzipped and
// gunzipped on the libuv thread pool, reports accepted meanwhile are inserted together in one
// transaction per turn of the loop (at most `maxBatch` rows and about `maxBatchBytes`: 256 rows of
// 25 KB took 60-80 ms, 1 MiB takes a few), pruning deletes one bounded batch per call, and the busy
// timeout is short (only ringmaster itself writes; a lock it cannot get quickly is an error, never
// a stall). Commits do not fsync (WAL, synchronous NORMAL); the checkpoints that do (100+ ms for a
// few MB) run in a worker thread on a connection of its own, started from this same file so that it
// stays the only importer of node:sqlite. Should the worker die, checkpoints go back inline.

export const reportsFileName = 'reports.sqlite';
export const schemaVersion = 1;
const maxBatch = 256;
const maxBatchBytes = 1024 * 1024;
const checkpointIntervalMs = 1000;
const checkpointerRole = 'ringmaster-reports-checkpointer';
const writerBusyTimeoutMs = 250;
const readerBusyTimeoutMs = 2000;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

const schemaV1 = `
CREATE TABLE reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node TEXT NOT NULL,
  environment TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('changed', 'unchanged', 'failed')),
  noop INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  duration_ms INTEGER,
  compiler TEXT,
  transaction_uuid TEXT,
  catalog_uuid TEXT,
  puppet_version TEXT,
  summary TEXT NOT NULL,
  failed_resources TEXT NOT NULL,
  body BLOB NOT NULL,
  body_encoding TEXT NOT NULL,
  body_bytes INTEGER NOT NULL
);
CREATE INDEX reports_received ON reports (received_at, status);
CREATE INDEX reports_node ON reports (node, status);
CREATE INDEX reports_status ON reports (status);
CREATE TABLE nodes (node TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
`;

const summaryColumns = 'id, node, environment, status, noop, received_at, run_at, duration_ms, compiler, transaction_uuid, catalog_uuid, puppet_version, summary, body_bytes';

type Row = Record<string, SQLInputValue>;
type Pending = { values: Row; node: string; resolve: (id: number) => void; reject: (err: unknown) => void };
/** Summary fields kept as JSON in the `summary` column: shown, never filtered on. */
type SummaryJson = Pick<ReportSummary, 'noopPending' | 'correctiveChange' | 'transactionCompleted' | 'configurationVersion' | 'codeId' | 'cachedCatalogStatus' | 'serverUsed' | 'reportFormat' | 'changes' | 'resources' | 'events' | 'timings'>;

export type SqliteStoreOptions = { readOnly?: boolean };

export class SqliteReportStore implements ReportStore {
  readonly path: string;
  #db: DatabaseSync;
  #readOnly: boolean;
  #statements = new Map<string, StatementSync>();
  #pending: Pending[] = [];
  #flushScheduled = false;
  #compressing = new Set<Promise<unknown>>();
  #state: 'open' | 'closing' | 'closed' = 'open';
  #checkpointer: Worker | undefined;
  #checkpoints = 0;

  private constructor(path: string, db: DatabaseSync, readOnly: boolean) {
    this.path = path;
    this.#db = db;
    this.#readOnly = readOnly;
  }

  /** Opens `<stateDir>/reports.sqlite`, creating it unless read-only. */
  static async openIn(stateDir: string, options: SqliteStoreOptions = {}): Promise<SqliteReportStore> {
    return SqliteReportStore.open(join(stateDir, reportsFileName), options);
  }

  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteReportStore> {
    const readOnly = options.readOnly === true;
    try {
      if (!readOnly) {
        await mkdir(dirname(path), { recursive: true, mode: 0o750 });
        // Reports carry logs and resource titles: readable by ringmaster's group only. SQLite gives
        // the -wal and -shm files the database file's mode.
        await (await openFile(path, 'a', 0o640)).close();
      }
    } catch (err) {
      throw storeError(path, err);
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly, timeout: readOnly ? readerBusyTimeoutMs : writerBusyTimeoutMs, enableForeignKeyConstraints: false });
    } catch (err) {
      if (readOnly && /unable to open/i.test(errorMessage(err))) {
        throw new RingmasterError('RM_REPORTS_UNAVAILABLE', `no reports stored yet: ${path} does not exist`, { cause: err });
      }
      throw storeError(path, err);
    }
    try {
      migrate(db, path, readOnly);
    } catch (err) {
      db.close();
      throw err instanceof RingmasterError ? err : storeError(path, err);
    }
    const store = new SqliteReportStore(path, db, readOnly);
    if (!readOnly) store.#startCheckpointer();
    return store;
  }

  /** WAL checkpoints that moved pages into the database file, made by the checkpoint worker. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  #startCheckpointer(): void {
    let worker: Worker;
    try {
      worker = new Worker(new URL(import.meta.url), { workerData: { role: checkpointerRole, path: this.path, intervalMs: checkpointIntervalMs } });
    } catch {
      return;
    }
    worker.unref();
    this.#db.exec('PRAGMA wal_autocheckpoint = 0');
    this.#checkpointer = worker;
    worker.on('message', (m: { checkpointed?: number }) => {
      if (typeof m.checkpointed === 'number' && m.checkpointed > 0) this.#checkpoints++;
    });
    const inline = () => {
      if (this.#checkpointer !== worker) return;
      this.#checkpointer = undefined;
      if (this.#state !== 'closed') this.#db.exec('PRAGMA wal_autocheckpoint = 1000');
    };
    worker.on('error', inline);
    worker.on('exit', inline);
  }

  add(input: NewReport): Promise<number> {
    if (this.#state !== 'open') return Promise.reject(unavailable());
    if (this.#readOnly) return Promise.reject(storeError(this.path, new Error('opened read-only')));
    const { failedResources, ...r } = input.report;
    const summary: SummaryJson = {
      noopPending: r.noopPending, correctiveChange: r.correctiveChange, transactionCompleted: r.transactionCompleted,
      configurationVersion: r.configurationVersion, codeId: r.codeId, cachedCatalogStatus: r.cachedCatalogStatus, serverUsed: r.serverUsed,
      reportFormat: r.reportFormat, changes: r.changes, resources: r.resources, events: r.events, timings: r.timings,
    };
    // Only the compression is tracked for close(): the insert it leads to is flushed by close() itself.
    const compressed = gzipAsync(input.body);
    this.#compressing.add(compressed);
    const forget = () => this.#compressing.delete(compressed);
    compressed.then(forget, forget);
    return compressed.then((body) => new Promise<number>((resolve, reject) => {
      const values: Row = {
        node: r.node, environment: r.environment, status: r.status, noop: r.noop ? 1 : 0, received_at: Math.round(input.receivedAt),
        run_at: Math.round(r.runAt), duration_ms: r.durationMs, compiler: input.compiler, transaction_uuid: r.transactionUuid,
        catalog_uuid: r.catalogUuid, puppet_version: r.puppetVersion, summary: JSON.stringify(summary),
        failed_resources: JSON.stringify(failedResources), body, body_encoding: 'gzip', body_bytes: input.body.length,
      };
      this.#pending.push({ values, node: r.node, resolve, reject });
      this.#scheduleFlush();
    }), (err: unknown) => Promise.reject(storeError(this.path, err)));
  }

  list(query: ReportQuery = {}): Promise<Page<ReportSummary>> {
    return this.#read(() => {
      checkReportQuery(query);
      const limit = pageSize(query.limit);
      const before = reportCursor(query.cursor);
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      const add = (clause: string, value: SQLInputValue | undefined) => {
        if (value === undefined) return;
        where.push(clause);
        params.push(value);
      };
      add('id < ?', before);
      add('node = ?', query.node);
      add('status = ?', query.status);
      add('environment = ?', query.environment);
      add('received_at >= ?', query.since);
      add('received_at < ?', query.until);
      const sql = `SELECT ${summaryColumns} FROM reports ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
      const rows = this.#stmt(sql).all(...params, limit + 1);
      const items = rows.slice(0, limit).map(summaryOf);
      return { items, next: rows.length > limit ? String(items[items.length - 1]?.id) : null };
    });
  }

  async get(id: number): Promise<StoredReport | undefined> {
    const row = await this.#read(() => (Number.isSafeInteger(id) ? this.#stmt(`SELECT ${summaryColumns}, failed_resources, body, body_encoding FROM reports WHERE id = ?`).get(id) : undefined));
    if (!row) return undefined;
    let body: Buffer;
    try {
      body = row.body_encoding === 'gzip' ? await gunzipAsync(row.body as Uint8Array) : Buffer.from(row.body as Uint8Array);
    } catch (err) {
      throw storeError(this.path, err);
    }
    return { ...summaryOf(row), failedResources: JSON.parse(row.failed_resources as string) as FailedResource[], body };
  }

  nodes(query: NodeQuery = {}): Promise<Page<NodeSummary>> {
    return this.#read(() => {
      const limit = pageSize(query.limit);
      const after = nodeCursor(query.cursor);
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      const add = (clause: string, value: string | undefined) => {
        if (value === undefined) return;
        where.push(clause);
        params.push(value);
      };
      add('n.node > ?', after);
      add('r.status = ?', query.status);
      add('r.environment = ?', query.environment);
      const rCols = summaryColumns.split(', ').map((c) => `r.${c}`).join(', ');
      const sql = `SELECT ${rCols} FROM nodes n JOIN reports r ON r.id = n.last_id ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY n.node LIMIT ?`;
      const rows = this.#stmt(sql).all(...params, limit + 1);
      const counts = this.#stmt('SELECT status, COUNT(*) AS n FROM reports WHERE node = ? GROUP BY status');
      const items = rows.slice(0, limit).map((row): NodeSummary => {
        const last = summaryOf(row);
        const c: StatusCounts = { changed: 0, unchanged: 0, failed: 0 };
        for (const x of counts.all(last.node)) c[x.status as keyof StatusCounts] = Number(x.n);
        return { node: last.node, last, runs: c.changed + c.unchanged + c.failed, ...c };
      });
      return { items, next: rows.length > limit ? (items[items.length - 1]?.node ?? null) : null };
    });
  }

  stats(query: StatsQuery): Promise<ReportStats> {
    return this.#read(() => {
      const bucketMs = checkStatsQuery(query);
      const buckets = emptyBuckets(query.since, query.until, bucketMs);
      const window: StatusCounts = { changed: 0, unchanged: 0, failed: 0 };
      const rows = this.#stmt('SELECT CAST((received_at - ?) / ? AS INTEGER) AS b, status, COUNT(*) AS n FROM reports WHERE received_at >= ? AND received_at < ? GROUP BY b, status')
        .all(query.since, bucketMs, query.since, query.until);
      for (const row of rows) {
        const status = row.status as keyof StatusCounts;
        const bucket = buckets[Number(row.b)];
        if (bucket) bucket[status] += Number(row.n);
        window[status] += Number(row.n);
      }
      const nodes: StatusCounts = { changed: 0, unchanged: 0, failed: 0 };
      for (const row of this.#stmt('SELECT r.status AS status, COUNT(*) AS n FROM nodes n JOIN reports r ON r.id = n.last_id GROUP BY r.status').all()) {
        nodes[row.status as keyof StatusCounts] = Number(row.n);
      }
      const stored = Number(this.#stmt('SELECT COUNT(*) AS n FROM reports').get()?.n ?? 0);
      return { since: query.since, until: query.until, bucketMs, buckets, window, nodes, stored };
    });
  }

  prune(limits: PruneLimits): Promise<PruneResult> {
    if (this.#readOnly) return Promise.reject(storeError(this.path, new Error('opened read-only')));
    return this.#read(() => {
      const batch = limits.batchSize ?? defaultPruneBatch;
      const doomed = new Set<number>();
      if (limits.maxAgeMs !== undefined) {
        for (const row of this.#stmt('SELECT id FROM reports WHERE received_at < ? ORDER BY received_at LIMIT ?').all(limits.now - limits.maxAgeMs, batch)) doomed.add(Number(row.id));
      }
      if (limits.maxCount !== undefined && doomed.size < batch) {
        // The newest report past the count limit: it and everything older goes.
        const cutoff = this.#stmt('SELECT id FROM reports ORDER BY id DESC LIMIT 1 OFFSET ?').get(limits.maxCount);
        if (cutoff) {
          for (const row of this.#stmt('SELECT id FROM reports WHERE id <= ? ORDER BY id LIMIT ?').all(Number(cutoff.id), batch)) {
            if (doomed.size >= batch) break;
            doomed.add(Number(row.id));
          }
        }
      }
      if (doomed.size === 0) return { deleted: 0, done: true };
      const ids = JSON.stringify([...doomed]);
      this.#transaction(() => {
        this.#stmt('DELETE FROM reports WHERE id IN (SELECT value FROM json_each(?))').run(ids);
        // A node whose last report went falls back to its newest remaining one, or leaves the list.
        for (const row of this.#stmt('DELETE FROM nodes WHERE last_id IN (SELECT value FROM json_each(?)) RETURNING node').all(ids)) {
          this.#stmt('INSERT INTO nodes (node, last_id) SELECT node, MAX(id) FROM reports WHERE node = ? GROUP BY node').run(row.node as string);
        }
      });
      return { deleted: doomed.size, done: doomed.size < batch };
    });
  }

  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    const worker = this.#checkpointer;
    this.#checkpointer = undefined;
    await worker?.terminate();
    await Promise.allSettled([...this.#compressing]);
    this.#flush(Number.POSITIVE_INFINITY);
    this.#state = 'closed';
    this.#db.close();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush(1);
    });
  }

  /** Inserts up to `batches` batches of the reports waiting, each in one transaction; reschedules the rest. */
  #flush(batches: number): void {
    for (let i = 0; i < batches && this.#pending.length > 0; i++) {
      let count = 0;
      let bytes = 0;
      while (count < this.#pending.length && count < maxBatch && (count === 0 || bytes < maxBatchBytes)) {
        bytes += (this.#pending[count]?.values.body as Uint8Array).length;
        count++;
      }
      const batch = this.#pending.splice(0, count);
      let ids: number[];
      try {
        ids = this.#transaction(() => batch.map((p) => {
          const id = Number(this.#stmt(`INSERT INTO reports (${Object.keys(p.values).join(', ')}) VALUES (${Object.keys(p.values).map((k) => `:${k}`).join(', ')})`).run(p.values).lastInsertRowid);
          this.#stmt('INSERT INTO nodes (node, last_id) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)').run(p.node, id);
          return id;
        }));
      } catch (err) {
        const e = storeError(this.path, err);
        for (const p of batch) p.reject(e);
        continue;
      }
      batch.forEach((p, j) => p.resolve(ids[j] as number));
    }
    if (this.#pending.length > 0) this.#scheduleFlush();
  }

  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #read<T>(fn: () => T): Promise<T> {
    if (this.#state === 'closed') return Promise.reject(unavailable());
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof RingmasterError ? err : storeError(this.path, err));
    }
  }
}

function migrate(db: DatabaseSync, path: string, readOnly: boolean): void {
  const version = Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
  if (version > schemaVersion) {
    throw new RingmasterError('RM_REPORTS_STORE', `${path} has schema version ${version}, newer than this ringmaster's ${schemaVersion}; upgrade ringmaster or move the file away`);
  }
  if (readOnly) {
    if (version === 0) throw new RingmasterError('RM_REPORTS_UNAVAILABLE', `no reports stored yet in ${path}`);
    return;
  }
  db.exec('PRAGMA journal_mode = WAL');
  // In WAL mode NORMAL loses at most the last transactions on power loss, never consistency: fine for reports.
  db.exec('PRAGMA synchronous = NORMAL');
  // A WAL that grew under a burst is cut back to this once it has been checkpointed.
  db.exec('PRAGMA journal_size_limit = 67108864');
  if (version === 0) db.exec(`BEGIN IMMEDIATE; ${schemaV1} PRAGMA user_version = ${schemaVersion}; COMMIT;`);
}

function summaryOf(row: Record<string, SQLInputValue>): ReportSummary {
  const extra = JSON.parse(row.summary as string) as SummaryJson;
  return {
    id: Number(row.id),
    node: row.node as string,
    environment: row.environment as string,
    status: row.status as ReportSummary['status'],
    noop: row.noop === 1,
    receivedAt: Number(row.received_at),
    runAt: Number(row.run_at),
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    compiler: row.compiler as string | null,
    transactionUuid: row.transaction_uuid as string | null,
    catalogUuid: row.catalog_uuid as string | null,
    puppetVersion: row.puppet_version as string | null,
    bodyBytes: Number(row.body_bytes),
    ...extra,
  };
}

function storeError(path: string, err: unknown): RingmasterError {
  if (err instanceof RingmasterError) return err;
  return new RingmasterError('RM_REPORTS_STORE', `reports store ${path}: ${errorMessage(err)}`, { cause: err });
}

// The checkpoint worker: this module, loaded again in a worker thread. PASSIVE never waits for or
// blocks the writer; it copies what it can and the writer restarts the WAL once all is copied.
if (!isMainThread && (workerData as { role?: string } | null)?.role === checkpointerRole) {
  const { path, intervalMs } = workerData as { path: string; intervalMs: number };
  const db = new DatabaseSync(path, { timeout: writerBusyTimeoutMs });
  setInterval(() => {
    try {
      const row = db.prepare('PRAGMA wal_checkpoint(PASSIVE)').get();
      parentPort?.postMessage({ checkpointed: Number(row?.checkpointed ?? 0) });
    } catch {
      // Busy or failing now: the next interval tries again.
    }
  }, intervalMs);
}
