import type { Clock } from '../lib/clock.ts';
import { RingmasterError } from '../lib/errors.ts';
import { parseReportJson } from '../reports/parse.ts';
import type { ReportStore } from '../reports/store.ts';
import { nodeView, parseTimeParam, reportDetailView, reportView, statsView } from '../reports/view.ts';
import { parseDuration } from '../lib/duration.ts';
import type { AdminAnswer, AdminCall } from './api.ts';

// The admin API's read-only report endpoints: GET /admin/v1/reports (newest first, filtered,
// paged), /admin/v1/reports/stats, /admin/v1/reports/{id}[/body] and /admin/v1/nodes. Query
// parameters are checked strictly: an unknown one is refused rather than silently ignored.

export type ReportsApiDeps = { reports: ReportStore | undefined; clock: Clock };

const listParams = ['node', 'status', 'environment', 'since', 'until', 'limit', 'cursor'];
const nodeParams = ['status', 'environment', 'limit', 'cursor'];
const statsParams = ['window', 'bucket'];

export function createReportsApi(deps: ReportsApiDeps): (call: AdminCall) => Promise<AdminAnswer> {
  return async (call) => {
    const [, , collection, id, sub, ...extra] = call.segments;
    if (extra.length > 0 || call.segments.includes('')) throw notFound(call);
    allowGet(call);
    const store = deps.reports;
    if (!store) throw new RingmasterError('RM_REPORTS_UNAVAILABLE', 'reports are not available: reports.enabled is false, or the store could not be opened (see the log)');
    const q = call.query ?? new URLSearchParams();
    const now = deps.clock.now();

    if (collection === 'nodes') {
      if (id !== undefined) throw notFound(call);
      only(q, nodeParams);
      const page = await store.nodes({ status: status(q), environment: text(q, 'environment'), limit: integer(q, 'limit'), cursor: text(q, 'cursor') });
      return { status: 200, body: { nodes: page.items.map(nodeView), next: page.next } };
    }
    if (id === undefined) {
      only(q, listParams);
      const time = (name: string) => {
        const v = text(q, name);
        return v === undefined ? undefined : parseTimeParam(name, v, now);
      };
      const page = await store.list({
        node: text(q, 'node'), status: status(q), environment: text(q, 'environment'), since: time('since'), until: time('until'),
        limit: integer(q, 'limit'), cursor: text(q, 'cursor'),
      });
      return { status: 200, body: { reports: page.items.map(reportView), next: page.next } };
    }
    if (id === 'stats' && sub === undefined) {
      only(q, statsParams);
      const windowMs = durationParam(q, 'window', 3600_000);
      const bucketMs = durationParam(q, 'bucket', 60_000);
      return { status: 200, body: { stats: statsView(await store.stats({ since: now - windowMs, until: now, bucketMs })) } };
    }
    if (!/^[1-9]\d{0,15}$/.test(id) || (sub !== undefined && sub !== 'body')) throw notFound(call);
    only(q, []);
    const report = await store.get(Number(id));
    if (!report) throw new RingmasterError('RM_NOT_FOUND', `no report with id ${id} (it may have been deleted by retention)`);
    if (sub === 'body') return { status: 200, body: parseReportJson(report.body) };
    return { status: 200, body: { report: reportDetailView(report) } };
  };
}

function only(q: URLSearchParams, allowed: string[]): void {
  const unknown = [...new Set(q.keys())].filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
  for (const k of allowed) if (q.getAll(k).length > 1) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `query parameter ${k} is given more than once`);
}

function text(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  return v === null || v === '' ? undefined : v;
}

function status(q: URLSearchParams): 'changed' | 'unchanged' | 'failed' | undefined {
  const v = text(q, 'status');
  if (v === undefined || v === 'changed' || v === 'unchanged' || v === 'failed') return v;
  throw new RingmasterError('RM_REPORTS_QUERY_INVALID', `status: "${v}" is not changed, unchanged or failed`);
}

function integer(q: URLSearchParams, name: string): number | undefined {
  const v = text(q, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new RingmasterError('RM_REPORTS_QUERY_INVALID', `${name}: "${v}" is not a whole number`);
  return Number(v);
}

function durationParam(q: URLSearchParams, name: string, fallback: number): number {
  const v = text(q, name);
  if (v === undefined) return fallback;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new RingmasterError('RM_REPORTS_QUERY_INVALID', `${name}: "${v}" is not a duration such as 1h or 5m`);
  return ms;
}

function allowGet(call: AdminCall): void {
  if (call.method !== 'GET') {
    throw new RingmasterError('RM_METHOD_NOT_ALLOWED', `${call.method} is not allowed on /${call.segments.join('/')} (allowed: GET)`, { details: { allow: 'GET' } });
  }
}

function notFound(call: AdminCall): RingmasterError {
  return new RingmasterError('RM_NOT_FOUND', `no admin endpoint at /${call.segments.join('/')}`);
}
