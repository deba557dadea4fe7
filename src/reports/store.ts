import { RingmasterError } from '../lib/errors.ts';
import { isReportStatus, type FailedResource, type ParsedReport, type ReportStatus } from './parse.ts';

// The reports store: one interface, one file per implementation (sqlite-store.ts, the embedded
// default; memory-store.ts, for tests of other modules; PostgreSQL later), one conformance suite
// (store-conformance.ts) that every implementation passes. Lists are newest first (by id, which
// grows with every report added and is never reused) and paged by an opaque cursor.

/** What is kept of one run in lists: the parsed summary without the failed resources. */
export type ReportSummary = Omit<ParsedReport, 'failedResources'> & {
  id: number;
  /** When ringmaster received the report (ms since the epoch, ringmaster's clock). */
  receivedAt: number;
  /** The member that served this node's last catalog before the report, when known. */
  compiler: string | null;
  /** Size of the body as received. */
  bodyBytes: number;
};

/** One run for drill-down: the summary, its failed resources, and the body exactly as received. */
export type StoredReport = ReportSummary & { failedResources: FailedResource[]; body: Buffer };

export type NewReport = { report: ParsedReport; receivedAt: number; compiler: string | null; body: Buffer };

export type Page<T> = { items: T[]; next: string | null };

export type ReportQuery = {
  node?: string | undefined;
  status?: ReportStatus | undefined;
  environment?: string | undefined;
  /** receivedAt >= since (ms). */
  since?: number | undefined;
  /** receivedAt < until (ms). */
  until?: number | undefined;
  limit?: number | undefined;
  /** `next` of the previous page. */
  cursor?: string | undefined;
};

/** Nodes by name; `status` and `environment` filter on each node's last report. */
export type NodeQuery = {
  status?: ReportStatus | undefined;
  environment?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
};

export type StatusCounts = { changed: number; unchanged: number; failed: number };

/** A node: its last stored report and how many of its stored runs ended in each status. */
export type NodeSummary = { node: string; last: ReportSummary; runs: number } & StatusCounts;

export type StatsQuery = { since: number; until: number; bucketMs?: number | undefined };
export type ReportStats = {
  since: number;
  until: number;
  bucketMs: number;
  /** Every bucket from `since` to `until`, empty ones included. */
  buckets: ({ start: number } & StatusCounts)[];
  /** Reports received in the window. */
  window: StatusCounts;
  /** Nodes by the status of their last stored report. */
  nodes: StatusCounts;
  /** Reports stored, all windows. */
  stored: number;
};

export type PruneLimits = {
  /** Reports received before `now - maxAgeMs` go. */
  maxAgeMs?: number | undefined;
  /** Only the newest `maxCount` reports stay. */
  maxCount?: number | undefined;
  now: number;
  /** Most reports deleted by one call, so that one call never holds the event loop for long. */
  batchSize?: number | undefined;
};
export type PruneResult = { deleted: number; done: boolean };

export type ReportStore = {
  /** Stores one report; resolves to its id. Fails with RM_REPORTS_STORE (or RM_REPORTS_UNAVAILABLE once closed), never hangs. */
  add(report: NewReport): Promise<number>;
  list(query?: ReportQuery): Promise<Page<ReportSummary>>;
  get(id: number): Promise<StoredReport | undefined>;
  nodes(query?: NodeQuery): Promise<Page<NodeSummary>>;
  stats(query: StatsQuery): Promise<ReportStats>;
  /** Deletes at most `batchSize` reports past the limits, oldest first; `done` once nothing more is past them. */
  prune(limits: PruneLimits): Promise<PruneResult>;
  /** Finishes the writes already accepted, then releases the store; later calls fail with RM_REPORTS_UNAVAILABLE. */
  close(): Promise<void>;
};

export const defaultPageSize = 50;
export const maxPageSize = 1000;
export const defaultPruneBatch = 500;
/** Stats buckets: at most this many, so a wide window with a narrow bucket cannot build a huge answer. */
export const maxBuckets = 10_080;

function queryError(message: string): RingmasterError {
  return new RingmasterError('RM_REPORTS_QUERY_INVALID', message);
}

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return defaultPageSize;
  if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize) throw queryError(`limit must be a whole number from 1 to ${maxPageSize}`);
  return limit;
}

/** Report cursors are the id of the last report of the previous page. */
export function reportCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^[1-9]\d{0,15}$/.test(cursor)) throw queryError(`cursor "${cursor}" is not one this API gave`);
  return Number(cursor);
}

/** Node cursors are the name of the last node of the previous page. */
export function nodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  if (cursor === '' || cursor.length > 255) throw queryError('cursor is not one this API gave');
  return cursor;
}

export function checkReportQuery(q: ReportQuery): void {
  if (q.status !== undefined && !isReportStatus(q.status)) throw queryError('status must be changed, unchanged or failed');
  for (const [key, v] of [['since', q.since], ['until', q.until]] as const) {
    if (v !== undefined && !Number.isFinite(v)) throw queryError(`${key} must be a time`);
  }
}

export function checkStatsQuery(q: StatsQuery): number {
  const bucketMs = q.bucketMs ?? 60_000;
  if (!Number.isInteger(bucketMs) || bucketMs < 1000) throw queryError('bucket must be at least one second');
  if (!Number.isFinite(q.since) || !Number.isFinite(q.until) || q.until <= q.since) throw queryError('the stats window must end after it starts');
  if (Math.ceil((q.until - q.since) / bucketMs) > maxBuckets) throw queryError(`the stats window holds more than ${maxBuckets} buckets; choose a wider bucket`);
  return bucketMs;
}

export function emptyBuckets(since: number, until: number, bucketMs: number): ({ start: number } & StatusCounts)[] {
  const out: ({ start: number } & StatusCounts)[] = [];
  for (let start = since; start < until; start += bucketMs) out.push({ start, changed: 0, unchanged: 0, failed: 0 });
  return out;
}

export function unavailable(): RingmasterError {
  return new RingmasterError('RM_REPORTS_UNAVAILABLE', 'the reports store is closed');
}
