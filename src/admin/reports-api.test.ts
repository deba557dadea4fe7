import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { SqliteReportStore } from '../reports/sqlite-store.ts';
import { newReport } from '../reports/store-conformance.ts';
import type { ReportDetailView, ReportView, NodeView, StatsView } from '../reports/view.ts';
import { createAdminApi, type AdminAnswer, type AdminApi } from './api.ts';
import type { RuntimeMembers } from './runtime-members.ts';

// The report endpoints of the admin API over a real SQLite store, without sockets: filters and
// paging as a client sends them in the query string, drill-down, and the refusals.

let dir: string;
let store: SqliteReportStore;
let api: AdminApi;
const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
const minute = 60_000;

const call = (path: string, method = 'GET'): Promise<AdminAnswer> => {
  const url = new URL(path, 'https://ringmaster:8150');
  return api({ method, segments: url.pathname.split('/').slice(1), query: url.searchParams, json: () => Promise.resolve(undefined), signal: new AbortController().signal, who: 'test' });
};
const code = (c: string) => (err: unknown) => isRingmasterError(err) && err.code === c;
const reportsOf = (a: AdminAnswer) => a.body as { reports: ReportView[]; next: string | null };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rm-reports-api-'));
  store = await SqliteReportStore.openIn(dir);
  // 30 runs over 30 minutes: web01..web03 in turn; every third one failed.
  for (let i = 0; i < 30; i++) {
    const status = i % 3 === 2 ? 'failed' : i % 3 === 1 ? 'unchanged' : 'changed';
    await store.add(newReport({ node: `web0${(i % 3) + 1}.example.com`, status, receivedAt: clock.now() - (30 - i) * minute, compiler: `compile0${(i % 2) + 1}` }));
  }
  api = createAdminApi({ pools: () => new Map(), members: {} as RuntimeMembers, clock, reports: store });
});

after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

test('GET /admin/v1/reports pages newest first with the cursor it returns', async () => {
  const first = reportsOf(await call('/admin/v1/reports?limit=20'));
  assert.equal(first.reports.length, 20);
  assert.equal(first.reports[0]?.receivedAt, new Date(clock.now() - minute).toISOString());
  assert.ok(first.next);
  const second = reportsOf(await call(`/admin/v1/reports?limit=20&cursor=${first.next}`));
  assert.equal(second.reports.length, 10);
  assert.equal(second.next, null);
  assert.equal(new Set([...first.reports, ...second.reports].map((r) => r.id)).size, 30);
});

test('filters: node, status, since as a duration or an ISO time, until', async () => {
  const failed = reportsOf(await call('/admin/v1/reports?node=web03.example.com&status=failed'));
  assert.equal(failed.reports.length, 10);
  assert.ok(failed.reports.every((r) => r.node === 'web03.example.com' && r.status === 'failed'));
  assert.equal(reportsOf(await call('/admin/v1/reports?since=10m')).reports.length, 10);
  const iso = new Date(clock.now() - 5 * minute).toISOString();
  assert.equal(reportsOf(await call(`/admin/v1/reports?since=${encodeURIComponent(iso)}`)).reports.length, 5);
  assert.equal(reportsOf(await call('/admin/v1/reports?since=30m&until=25m')).reports.length, 5);
});

test('GET /admin/v1/reports/{id} gives the failed resources and log lines; /body the report as sent', async () => {
  const id = reportsOf(await call('/admin/v1/reports?status=failed&limit=1')).reports[0]!.id;
  const { report } = (await call(`/admin/v1/reports/${id}`)).body as { report: ReportDetailView };
  assert.equal(report.status, 'failed');
  assert.deepEqual(report.failedResources.map((f) => f.resource), ['Exec[migrate-db]', 'File[/tmp/rmrep/missing/dir/app.conf]']);
  assert.ok(report.logs.some((l) => l.level === 'err'));
  assert.equal(report.compiler, 'compile02');
  const body = (await call(`/admin/v1/reports/${id}/body`)).body as { host: string; resource_statuses: object };
  assert.equal(body.host, 'db01.example.com', 'the body as the agent sent it');
  assert.ok('Exec[migrate-db]' in body.resource_statuses);
});

test('GET /admin/v1/nodes: the last run of each node with its runs by status', async () => {
  const { nodes, next } = (await call('/admin/v1/nodes')).body as { nodes: NodeView[]; next: string | null };
  assert.deepEqual(nodes.map((n) => [n.node, n.last.status, n.runs, n.changed, n.unchanged, n.failed]), [
    ['web01.example.com', 'changed', 10, 10, 0, 0],
    ['web02.example.com', 'unchanged', 10, 0, 10, 0],
    ['web03.example.com', 'failed', 10, 0, 0, 10],
  ]);
  assert.equal(next, null);
  const failing = (await call('/admin/v1/nodes?status=failed')).body as { nodes: NodeView[] };
  assert.deepEqual(failing.nodes.map((n) => n.node), ['web03.example.com']);
});

test('GET /admin/v1/reports/stats counts runs per bucket over the window', async () => {
  const { stats } = (await call('/admin/v1/reports/stats?window=10m&bucket=5m')).body as { stats: StatsView };
  assert.deepEqual(stats.buckets.map((b) => b.changed + b.unchanged + b.failed), [5, 5]);
  assert.deepEqual(stats.window, { changed: 3, unchanged: 3, failed: 4 });
  assert.equal(stats.stored, 30);
});

test('refusals: bad parameters, unknown ids and paths, other methods, reports disabled', async () => {
  await assert.rejects(call('/admin/v1/reports?status=exploded'), code('RM_REPORTS_QUERY_INVALID'));
  await assert.rejects(call('/admin/v1/reports?since=last-tuesday'), code('RM_REPORTS_QUERY_INVALID'));
  await assert.rejects(call('/admin/v1/reports?limit=5000'), code('RM_REPORTS_QUERY_INVALID'));
  await assert.rejects(call('/admin/v1/reports?cursor=xyz'), code('RM_REPORTS_QUERY_INVALID'));
  await assert.rejects(call('/admin/v1/reports?nodes=web01'), code('RM_ADMIN_BAD_REQUEST'));
  await assert.rejects(call('/admin/v1/reports?node=a&node=b'), code('RM_ADMIN_BAD_REQUEST'));
  await assert.rejects(call('/admin/v1/reports/999999'), code('RM_NOT_FOUND'));
  await assert.rejects(call('/admin/v1/reports/abc'), code('RM_NOT_FOUND'));
  await assert.rejects(call('/admin/v1/reports/1/logs'), code('RM_NOT_FOUND'));
  await assert.rejects(call('/admin/v1/nodes/web01'), code('RM_NOT_FOUND'));
  await assert.rejects(call('/admin/v1/reports', 'DELETE'), code('RM_METHOD_NOT_ALLOWED'));
  const without = createAdminApi({ pools: () => new Map(), members: {} as RuntimeMembers, clock });
  await assert.rejects(
    without({ method: 'GET', segments: ['admin', 'v1', 'reports'], json: () => Promise.resolve(undefined), signal: new AbortController().signal, who: 'test' }),
    code('RM_REPORTS_UNAVAILABLE'),
  );
});
