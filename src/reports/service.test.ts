import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.ts';
import { silentLog, type Log } from '../observability/log.ts';
import { resolveConfig } from '../config/load.ts';
import { tempDir } from '../../test/helpers/store-fixtures.ts';
import { openReports } from './service.ts';
import { fixtureBody } from './store-conformance.ts';
import { reportsFileName } from './sqlite-store.ts';

// The reports section of the configuration, and what the composition root gets from it: a store
// in the state directory with capture and retention, nothing when disabled, and a logged
// "running without reports" (never a failed start) when the store cannot be opened.

test('the reports section: defaults, forward to a pool or nowhere, an unknown pool refused', () => {
  const defaults = resolveConfig({}, { stateDir: '/tmp/x' }).reports;
  assert.deepEqual(defaults, { enabled: true, forward: 'route', retention: { maxAge: 14 * 86_400_000, maxCount: 100_000, pruneInterval: 600_000 }, queue: { maxReports: 1000, maxBytes: 64 * 1024 * 1024 } });
  assert.equal(resolveConfig({ reports: { forward: 'none' } }).reports.forward, 'none');
  assert.deepEqual(resolveConfig({ pools: { puppetdb: {} }, reports: { forward: { pool: 'puppetdb' } } }).reports.forward, { pool: 'puppetdb' });
  assert.throws(() => resolveConfig({ reports: { forward: { pool: 'nope' } } }), /reports\.forward\.pool: no pool named nope/);
  assert.throws(() => resolveConfig({ reports: { forward: 'elsewhere' } }), /reports\.forward/);
  assert.throws(() => resolveConfig({ reports: { retention: { maxAge: 'forever' } } }), /reports\.retention\.maxAge/);
});

test('openReports: a working store with capture and retention; closed with the app', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock();
  const reports = await openReports(resolveConfig({}, { stateDir: dir }), { clock, log: silentLog });
  assert.ok(reports);
  assert.equal(reports.capture.capture({ certname: 'web01.example.com', body: fixtureBody('changed'), receivedAt: clock.now() }), 'queued');
  await reports.capture.idle();
  assert.equal((await reports.store.list()).items[0]?.node, 'web01.example.com');
  assert.equal(clock.pendingTimers(), 1, 'the retention timer');
  await reports.close();
  assert.equal(clock.pendingTimers(), 0);
  await assert.rejects(reports.store.list(), /closed/);
});

test('openReports: nothing when disabled; a store that cannot be opened is logged and ringmaster runs on', async (t) => {
  const dir = await tempDir(t);
  assert.equal(await openReports(resolveConfig({ reports: { enabled: false } }, { stateDir: dir }), { clock: new ManualClock(), log: silentLog }), undefined);
  await writeFile(join(dir, reportsFileName), 'not a database'.repeat(100));
  const errors: Record<string, unknown>[] = [];
  const log = { ...silentLog, error: (fields: Record<string, unknown>) => errors.push(fields), child: () => log } as unknown as Log;
  assert.equal(await openReports(resolveConfig({}, { stateDir: dir }), { clock: new ManualClock(), log }), undefined);
  assert.equal(errors[0]?.code, 'RM_REPORTS_STORE');
});
