import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SqliteReportStore } from '../../reports/sqlite-store.ts';
import { fixtureBody, newReport } from '../../reports/store-conformance.ts';
import type { ReportView } from '../../reports/view.ts';

// `ringmaster reports` as an operator runs it, against a state directory whose store is held
// open by a writer (as a running server holds it).

const main = new URL('../main.ts', import.meta.url).pathname;
let dir: string;
let writer: SqliteReportStore;
let failedId: number;

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [main, 'reports', ...args, '--state-dir', dir]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rm-reports-cli-'));
});

after(async () => {
  await writer?.close();
  await rm(dir, { recursive: true, force: true });
});

test('before any report: list says so and exits 0; show exits 1 with RM_NOT_FOUND', async () => {
  const list = await run('list');
  assert.deepEqual([list.code, list.stdout.trim()], [0, 'No reports stored yet.']);
  const show = await run('show', '1');
  assert.equal(show.code, 1);
  assert.match(show.stderr, /RM_NOT_FOUND/);
});

test('list filters and prints a table; show prints failed resources and log lines; --body the report as sent', async () => {
  writer = await SqliteReportStore.openIn(dir);
  const now = Date.now();
  await writer.add(newReport({ node: 'web01.example.com', status: 'changed', receivedAt: now - 3 * 3600_000, compiler: 'compile01' }));
  failedId = await writer.add(newReport({ node: 'db01.example.com', status: 'failed', receivedAt: now - 60_000, compiler: 'compile02' }));
  await writer.add(newReport({ node: 'web01.example.com', status: 'unchanged', receivedAt: now - 30_000 }));

  const all = await run('list');
  assert.equal(all.code, 0);
  const lines = all.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+RECEIVED\s+NODE\s+ENVIRONMENT\s+STATUS/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[3]), ['web01.example.com', 'db01.example.com', 'web01.example.com']);

  const recent = JSON.parse((await run('list', '--since', '1h', '--json')).stdout) as { reports: ReportView[] };
  assert.deepEqual(recent.reports.map((r) => r.status), ['unchanged', 'failed']);
  const failed = JSON.parse((await run('list', '--status', 'failed', '--node', 'db01.example.com', '--json')).stdout) as { reports: ReportView[] };
  assert.deepEqual(failed.reports.map((r) => r.id), [failedId]);

  const show = await run('show', String(failedId));
  assert.equal(show.code, 0);
  assert.match(show.stdout, /^report \d+: db01\.example\.com, environment production, failed/);
  assert.match(show.stdout, /compiler {5}compile02/);
  assert.match(show.stdout, /failed resources:\n {2}Exec\[migrate-db\] \(.*failing\.pp:6\)\n {4}change from 'notrun' to \['0'\] failed/);
  assert.match(show.stdout, /log:\n.*err/s);
  const body = await run('show', String(failedId), '--body');
  assert.equal(body.stdout, fixtureBody('failed').toString('utf8'), 'byte for byte (the fixture ends in a newline)');

  const nodes = await run('nodes');
  assert.match(nodes.stdout, /db01\.example\.com\s+\S+ \S+\s+failed/);
});

test('bad flags are usage errors (exit 2)', async () => {
  for (const args of [['list', '--status', 'broken'], ['list', '--since', 'yesterday'], ['list', '--limit', '0'], ['show', 'abc']]) {
    const r = await run(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /RM_CLI_USAGE/);
  }
});
