import type { ReportStatus } from './parse.ts';
import {
  checkReportQuery, checkStatsQuery, defaultPruneBatch, emptyBuckets, nodeCursor, pageSize, reportCursor, unavailable,
  type NewReport, type NodeQuery, type NodeSummary, type Page, type PruneLimits, type PruneResult, type ReportQuery,
  type ReportStats, type ReportStore, type ReportSummary, type StatsQuery, type StatusCounts, type StoredReport,
} from './store.ts';

// The reports store in memory: the reference the conformance suite holds the SQLite store to, and
// a store for tests of other modules. Nothing survives the process.

export class MemoryReportStore implements ReportStore {
  #reports: StoredReport[] = [];
  #nextId = 1;
  #closed = false;

  add(input: NewReport): Promise<number> {
    if (this.#closed) return Promise.reject(unavailable());
    const { failedResources, ...summary } = input.report;
    const id = this.#nextId++;
    this.#reports.push({ ...summary, id, receivedAt: input.receivedAt, compiler: input.compiler, bodyBytes: input.body.length, failedResources, body: Buffer.from(input.body) });
    return Promise.resolve(id);
  }

  list(query: ReportQuery = {}): Promise<Page<ReportSummary>> {
    return this.#open(() => {
      checkReportQuery(query);
      const limit = pageSize(query.limit);
      const before = reportCursor(query.cursor);
      const matches = this.#reports
        .filter((r) => (before === undefined || r.id < before)
          && (query.node === undefined || r.node === query.node)
          && (query.status === undefined || r.status === query.status)
          && (query.environment === undefined || r.environment === query.environment)
          && (query.since === undefined || r.receivedAt >= query.since)
          && (query.until === undefined || r.receivedAt < query.until))
        .sort((a, b) => b.id - a.id)
        .slice(0, limit + 1);
      const items = matches.slice(0, limit).map(summaryOf);
      return { items, next: matches.length > limit ? String(items[items.length - 1]?.id) : null };
    });
  }

  get(id: number): Promise<StoredReport | undefined> {
    return this.#open(() => {
      const r = this.#reports.find((x) => x.id === id);
      return r && { ...r, failedResources: [...r.failedResources], body: Buffer.from(r.body) };
    });
  }

  nodes(query: NodeQuery = {}): Promise<Page<NodeSummary>> {
    return this.#open(() => {
      const limit = pageSize(query.limit);
      const after = nodeCursor(query.cursor);
      const byNode = new Map<string, NodeSummary>();
      for (const r of this.#reports) {
        const n = byNode.get(r.node) ?? { node: r.node, last: summaryOf(r), runs: 0, changed: 0, unchanged: 0, failed: 0 };
        if (r.id > n.last.id) n.last = summaryOf(r);
        n.runs++;
        n[r.status]++;
        byNode.set(r.node, n);
      }
      const matches = [...byNode.values()]
        .filter((n) => (after === undefined || n.node > after)
          && (query.status === undefined || n.last.status === query.status)
          && (query.environment === undefined || n.last.environment === query.environment))
        .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
        .slice(0, limit + 1);
      const items = matches.slice(0, limit);
      return { items, next: matches.length > limit ? (items[items.length - 1]?.node ?? null) : null };
    });
  }

  stats(query: StatsQuery): Promise<ReportStats> {
    return this.#open(() => {
      const bucketMs = checkStatsQuery(query);
      const buckets = emptyBuckets(query.since, query.until, bucketMs);
      const window = counts();
      const lastByNode = new Map<string, StoredReport>();
      for (const r of this.#reports) {
        const prev = lastByNode.get(r.node);
        if (!prev || r.id > prev.id) lastByNode.set(r.node, r);
        if (r.receivedAt < query.since || r.receivedAt >= query.until) continue;
        const bucket = buckets[Math.floor((r.receivedAt - query.since) / bucketMs)];
        if (bucket) bucket[r.status]++;
        window[r.status]++;
      }
      const nodes = counts();
      for (const r of lastByNode.values()) nodes[r.status]++;
      return { since: query.since, until: query.until, bucketMs, buckets, window, nodes, stored: this.#reports.length };
    });
  }

  prune(limits: PruneLimits): Promise<PruneResult> {
    return this.#open(() => {
      const batch = limits.batchSize ?? defaultPruneBatch;
      const byAge = limits.maxAgeMs === undefined ? [] : this.#reports.filter((r) => r.receivedAt < limits.now - limits.maxAgeMs!);
      const excess = limits.maxCount === undefined ? 0 : Math.max(0, this.#reports.length - limits.maxCount);
      const byCount = [...this.#reports].sort((a, b) => a.id - b.id).slice(0, excess);
      const doomed = [...new Set([...byAge, ...byCount])].sort((a, b) => a.id - b.id);
      const now = new Set(doomed.slice(0, batch));
      this.#reports = this.#reports.filter((r) => !now.has(r));
      return { deleted: now.size, done: doomed.length <= batch };
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #open<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable());
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

function summaryOf(r: StoredReport): ReportSummary {
  const summary: Partial<StoredReport> = { ...r };
  delete summary.failedResources;
  delete summary.body;
  return summary as ReportSummary;
}

function counts(): StatusCounts & Record<ReportStatus, number> {
  return { changed: 0, unchanged: 0, failed: 0 };
}
