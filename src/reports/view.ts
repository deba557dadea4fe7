import { parseDuration } from '../lib/duration.ts';
import { RingmasterError } from '../lib/errors.ts';
import { parseReportJson, reportLogs, type ReportLog } from './parse.ts';
import type { NodeSummary, ReportStats, ReportSummary, StoredReport } from './store.ts';

// One JSON shape for reports, shared by the admin API and `ringmaster reports --json`: the store's
// records with times as ISO 8601 text.

export type ReportView = Omit<ReportSummary, 'receivedAt' | 'runAt'> & { receivedAt: string; runAt: string };
export type ReportDetailView = ReportView & { failedResources: StoredReport['failedResources']; logs: ReportLog[] };
export type NodeView = Omit<NodeSummary, 'last'> & { last: ReportView };
export type StatsView = Omit<ReportStats, 'since' | 'until' | 'buckets'> & { since: string; until: string; buckets: (Omit<ReportStats['buckets'][number], 'start'> & { start: string })[] };

const iso = (ms: number) => new Date(ms).toISOString();

export function reportView(r: ReportSummary): ReportView {
  return { ...r, receivedAt: iso(r.receivedAt), runAt: iso(r.runAt) };
}

/** The summary, the failed resources and the log lines read from the stored body. */
export function reportDetailView(r: StoredReport): ReportDetailView {
  const { body, failedResources, ...summary } = r;
  let logs: ReportLog[] = [];
  try {
    logs = reportLogs(parseReportJson(body));
  } catch {
    // Stored bodies were parsed once already; one that no longer parses just has no log lines.
  }
  return { ...reportView(summary), failedResources, logs };
}

export function nodeView(n: NodeSummary): NodeView {
  return { ...n, last: reportView(n.last) };
}

export function statsView(s: ReportStats): StatsView {
  return { ...s, since: iso(s.since), until: iso(s.until), buckets: s.buckets.map((b) => ({ ...b, start: iso(b.start) })) };
}

/**
 * A time in a query: ISO 8601 ("2026-01-31", "2026-01-31T12:00:00Z") or a duration meaning that
 * long before `now` ("90m", "1d"). Refused with RM_REPORTS_QUERY_INVALID.
 */
export function parseTimeParam(name: string, text: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== undefined && /[a-z]$/i.test(text.trim())) return now - ago;
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    const at = Date.parse(text.trim());
    if (Number.isFinite(at)) return at;
  }
  throw new RingmasterError('RM_REPORTS_QUERY_INVALID', `${name}: "${text}" is neither a duration such as 90m or 2d nor an ISO 8601 time such as 2026-01-31T12:00:00Z`);
}
