import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { parseReport, parseReportJson, reportLogs } from './parse.ts';
import { fixtureBody } from './store-conformance.ts';

// Real reports from Puppet 7.23 (test/fixtures/reports/README.md says how they were made), and
// the shapes a report takes when a run fails before any resource is applied.

const invalid = (field: string) => (err: unknown) => isRingmasterError(err, 'RM_REPORT_INVALID') && err.message.includes(field);

test('a changed run: status, counts, timings, identifiers', () => {
  const r = parseReport(fixtureBody('changed'), { certname: 'web01.example.com' });
  assert.equal(r.node, 'web01.example.com');
  assert.equal(r.environment, 'production');
  assert.equal(r.status, 'changed');
  assert.equal(r.noop, false);
  assert.equal(r.reportFormat, 12);
  assert.equal(r.puppetVersion, '7.23.0');
  assert.match(r.transactionUuid ?? '', /^[0-9a-f-]{36}$/);
  assert.match(r.catalogUuid ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(r.cachedCatalogStatus, 'not_used');
  assert.deepEqual(r.resources, { total: 9, changed: 2, failed: 0, failedToRestart: 0, outOfSync: 2, skipped: 0, restarted: 0, scheduled: 0, correctiveChange: 0 });
  assert.deepEqual(r.events, { total: 2, success: 2, failure: 0, noop: 0, audit: 0 });
  assert.equal(r.changes, 2);
  assert.ok(r.timings.config_retrieval !== undefined && r.timings.config_retrieval > 0);
  assert.equal(r.durationMs, Math.round((r.timings.total ?? 0) * 1000));
  assert.equal(new Date(r.runAt).toISOString().slice(0, 10), '2026-11-21');
  assert.deepEqual(r.failedResources, []);
});

test('an unchanged run has no changes and no events', () => {
  const r = parseReport(fixtureBody('unchanged'));
  assert.equal(r.node, 'web01.example.com', 'the host when no certname is given');
  assert.equal(r.status, 'unchanged');
  assert.deepEqual([r.changes, r.events.total, r.resources.total], [0, 0, 8]);
});

test('a failed run lists its failed resources with file, line and the failing event message', () => {
  const r = parseReport(fixtureBody('failed'), { certname: 'db01.example.com' });
  assert.equal(r.status, 'failed');
  assert.deepEqual([r.resources.failed, r.resources.skipped, r.events.failure], [2, 1, 2]);
  assert.deepEqual(r.failedResources.map((f) => [f.resource, f.type, f.title, f.line]), [
    ['Exec[migrate-db]', 'Exec', 'migrate-db', 6],
    ['File[/tmp/rmrep/missing/dir/app.conf]', 'File', '/tmp/rmrep/missing/dir/app.conf', 10],
  ]);
  assert.match(r.failedResources[0]?.file ?? '', /failing\.pp$/);
  assert.equal(r.failedResources[0]?.message, "change from 'notrun' to ['0'] failed: '/bin/false' returned 1 instead of one of [0]");
  assert.match(r.failedResources[1]?.message ?? '', /^change from 'absent' to 'file' failed: Could not set 'file' on ensure/);
  const logs = reportLogs(parseReportJson(fixtureBody('failed')));
  assert.ok(logs.some((l) => l.level === 'err' && l.source.endsWith('Exec[migrate-db]/returns')));
});

test('the certname from the URL names the node even when the body says otherwise', () => {
  assert.equal(parseReport(fixtureBody('changed'), { certname: 'other.example.com' }).node, 'other.example.com');
});

test('a run whose catalog failed (no metrics, no resources) still gives a summary', () => {
  // The shape an agent sends when the catalog request fails: status failed, logs, nothing applied.
  const body = JSON.stringify({
    host: 'app01.example.com', time: '2026-01-01T10:00:00.123456789+01:00', configuration_version: null, transaction_uuid: 'f0f0f0f0-0000-4000-8000-000000000001',
    report_format: 12, puppet_version: '8.10.0', status: 'failed', transaction_completed: false, noop: false, noop_pending: false, environment: 'production',
    logs: [{ level: 'err', message: 'Could not retrieve catalog from remote server: Error 500 on SERVER: Evaluation Error', source: 'Puppet', tags: ['err'], time: '2026-01-01T10:00:01+01:00', file: null, line: null }],
    metrics: {}, resource_statuses: {}, corrective_change: false, cached_catalog_status: 'not_used',
  });
  const r = parseReport(body);
  assert.equal(r.runAt, Date.UTC(2026, 0, 1, 9, 0, 0, 123));
  assert.deepEqual([r.status, r.durationMs, r.resources.total, r.changes, r.transactionCompleted, r.configurationVersion], ['failed', null, 0, 0, false, null]);
  assert.equal(reportLogs(JSON.parse(body) as Record<string, unknown>)[0]?.level, 'err');
});

test('report_format as a string and an environment only in the query are accepted', () => {
  const data = JSON.parse(fixtureBody('unchanged').toString()) as Record<string, unknown>;
  delete data.environment;
  data.report_format = '12';
  const r = parseReport(JSON.stringify(data), { environment: 'staging' });
  assert.deepEqual([r.environment, r.reportFormat], ['staging', 12]);
});

test('bodies that are not reports are refused with RM_REPORT_INVALID naming the problem', () => {
  const base = JSON.parse(fixtureBody('changed').toString()) as Record<string, unknown>;
  const without = (key: string, value?: unknown) => JSON.stringify({ ...base, [key]: value });
  assert.throws(() => parseReport('{"host": '), invalid('not JSON'));
  assert.throws(() => parseReport('[1, 2]'), invalid('not a JSON object'));
  assert.throws(() => parseReport(without('host')), invalid('"host"'));
  assert.throws(() => parseReport(without('environment')), invalid('"environment"'));
  assert.throws(() => parseReport(without('status', 'exploded')), invalid('"status"'));
  assert.throws(() => parseReport(without('report_format', 'twelve')), invalid('"report_format"'));
  assert.throws(() => parseReport(without('time', 'yesterday')), invalid('"time"'));
  assert.throws(() => parseReport(without('resource_statuses', [])), invalid('"resource_statuses"'));
  assert.throws(() => parseReport(without('metrics', 'none')), invalid('"metrics"'));
});

test('failed resources are capped; messages are truncated', () => {
  const statuses: Record<string, unknown> = {};
  for (let i = 0; i < 150; i++) {
    statuses[`File[/f${i}]`] = { title: `/f${i}`, resource: `File[/f${i}]`, resource_type: 'File', file: null, line: null, failed: true, events: [{ status: 'failure', message: 'x'.repeat(5000) }] };
  }
  const base = JSON.parse(fixtureBody('failed').toString()) as Record<string, unknown>;
  const r = parseReport(JSON.stringify({ ...base, resource_statuses: statuses }));
  assert.equal(r.failedResources.length, 100);
  assert.ok((r.failedResources[0]?.message?.length ?? 0) <= 2001);
});
