import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRingmasterError } from '../lib/errors.ts';
import { tempDir } from '../../test/helpers/store-fixtures.ts';
import { reportStoreConformance, newReport, fixtureBody } from './store-conformance.ts';
import { SqliteReportStore, reportsFileName } from './sqlite-store.ts';

// The SQLite store passes the shared suite, and beyond it: survives a reopen, is readable by a
// second (read-only) connection while open, refuses files it cannot use with typed errors, and
// gives up on a lock held by another process within its busy timeout instead of hanging.

reportStoreConformance('sqlite', async (t) => {
  const store = await SqliteReportStore.openIn(await tempDir(t));
  t.after(() => store.close());
  return store;
});

const sqlite3 = existsSync('/usr/bin/sqlite3') ? '/usr/bin/sqlite3' : undefined;
const sql = (file: string, query: string): string => execFileSync(sqlite3!, [file, query], { encoding: 'utf8' }).trim();

test('a reopened store has its reports; the file is WAL, versioned, private, and holds bodies gzipped', async (t) => {
  const dir = await tempDir(t);
  const store = await SqliteReportStore.openIn(dir);
  const ids: number[] = [];
  for (let i = 0; i < 50; i++) ids.push(await store.add(newReport({ node: `n${i}`, status: 'failed' })));
  await store.close();
  const file = join(dir, reportsFileName);
  assert.equal((await stat(file)).mode & 0o777, 0o640);

  const again = await SqliteReportStore.openIn(dir);
  t.after(() => again.close());
  assert.equal((await again.list({ limit: 100 })).items.length, 50);
  assert.deepEqual((await again.get(ids[7]!))?.body, fixtureBody('failed'));
  assert.ok((await again.add(newReport({ node: 'after' }))) > ids[49]!);
  if (sqlite3) {
    assert.equal(sql(file, 'PRAGMA journal_mode'), 'wal');
    assert.equal(sql(file, 'PRAGMA user_version'), '1');
    // gzip magic number, and far smaller than the JSON.
    assert.equal(sql(file, `SELECT DISTINCT hex(substr(body, 1, 2)) FROM reports`), '1F8B');
    assert.ok(Number(sql(file, `SELECT max(length(body)) FROM reports WHERE status = 'failed'`)) < fixtureBody('failed').length / 3);
  }
});

test('a read-only store sees what the writer stored, and refuses to write', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(SqliteReportStore.openIn(dir, { readOnly: true }), (e) => isRingmasterError(e, 'RM_REPORTS_UNAVAILABLE'));
  const writer = await SqliteReportStore.openIn(dir);
  t.after(() => writer.close());
  await writer.add(newReport({ node: 'a' }));
  const reader = await SqliteReportStore.openIn(dir, { readOnly: true });
  t.after(() => reader.close());
  await writer.add(newReport({ node: 'b' }));
  assert.deepEqual((await reader.list()).items.map((r) => r.node), ['b', 'a']);
  await assert.rejects(reader.add(newReport({ node: 'c' })), (e) => isRingmasterError(e, 'RM_REPORTS_STORE'));
  await assert.rejects(reader.prune({ maxCount: 0, now: 0 }), (e) => isRingmasterError(e, 'RM_REPORTS_STORE'));
});

test('a file that is not a database, or from a newer ringmaster, is refused with RM_REPORTS_STORE', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, reportsFileName), 'this is not a database, just text that is long enough to fill a header page'.repeat(20));
  await assert.rejects(SqliteReportStore.openIn(dir), (e) => isRingmasterError(e, 'RM_REPORTS_STORE'));
  if (!sqlite3) return;
  const other = await tempDir(t);
  await (await SqliteReportStore.openIn(other)).close();
  sql(join(other, reportsFileName), 'PRAGMA user_version = 9');
  await assert.rejects(SqliteReportStore.openIn(other), (e) => isRingmasterError(e, 'RM_REPORTS_STORE') && /schema version 9/.test(e.message));
});

test('a write lock held by another process fails the add with RM_REPORTS_STORE within the busy timeout; later adds succeed', { skip: sqlite3 === undefined }, async (t) => {
  const dir = await tempDir(t);
  const store = await SqliteReportStore.openIn(dir);
  t.after(() => store.close());
  await store.add(newReport({ node: 'before' }));
  const holder = spawn(sqlite3!, [join(dir, reportsFileName)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => holder.kill());
  holder.stdin.write("BEGIN IMMEDIATE; INSERT INTO nodes VALUES ('lock', 0); SELECT 'locked';\n");
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  const started = Date.now();
  await assert.rejects(store.add(newReport({ node: 'blocked' })), (e) => isRingmasterError(e, 'RM_REPORTS_STORE') && /locked|busy/i.test(e.message));
  assert.ok(Date.now() - started < 5000, 'gave up promptly');
  holder.stdin.end('ROLLBACK;\n');
  await new Promise((resolve) => holder.once('exit', resolve));
  assert.ok((await store.add(newReport({ node: 'after' }))) > 0);
  assert.deepEqual((await store.list()).items.map((r) => r.node), ['after', 'before']);
});

test('checkpoints run in the worker thread, not on the event loop', async (t) => {
  const store = await SqliteReportStore.openIn(await tempDir(t));
  t.after(() => store.close());
  await Promise.all(Array.from({ length: 40 }, (_, i) => store.add(newReport({ node: `n${i}`, status: 'failed' }))));
  for (let i = 0; i < 100 && store.checkpoints === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(store.checkpoints > 0, 'the worker copied the WAL into the database');
});
