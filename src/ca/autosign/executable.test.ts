import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPolicyExecutable } from './executable.ts';

const csrPem = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBfake\n-----END CERTIFICATE REQUEST-----\n';
let dir = '';

async function script(name: string, body: string, mode = 0o755): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`, { mode });
  return path;
}

/** Live (non-zombie) processes whose process group is `pgid`, read from /proc. */
async function liveMembers(pgid: number): Promise<number[]> {
  const live: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the parenthesised command: state ppid pgrp ...
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) === pgid && rest[0] !== 'Z') live.push(Number(entry));
  }
  return live;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringmaster-autosign-exec-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void test('exit 0 signs; the certname is argv[1] and the CSR is on stdin', async () => {
  const path = await script('check.sh', [
    '[ "$1" = "agent1.example.com" ] || exit 3',
    "grep -q 'BEGIN CERTIFICATE REQUEST' || exit 4",
    'echo "approved $1"',
    'echo "a warning" >&2',
  ].join('\n'));
  const result = await runPolicyExecutable({ path, certname: 'agent1.example.com', csrPem });
  assert.equal(result.sign, true);
  assert.equal(result.exitCode, 0);
  assert.equal(result.reason, `policy executable ${path} exited 0`);
  assert.equal(result.stdout, 'approved agent1.example.com\n');
  assert.equal(result.stderr, 'a warning\n');
  assert.equal(result.timedOut, false);

  const other = await runPolicyExecutable({ path, certname: 'agent2.example.com', csrPem });
  assert.equal(other.sign, false);
  assert.equal(other.exitCode, 3);

  const noCsr = await runPolicyExecutable({ path, certname: 'agent1.example.com', csrPem: 'not a csr\n' });
  assert.equal(noCsr.sign, false);
  assert.equal(noCsr.exitCode, 4);
});

void test('a non-zero exit leaves the request pending', async () => {
  const path = await script('exit1.sh', 'cat >/dev/null\nexit 1');
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem });
  assert.equal(result.sign, false);
  assert.equal(result.exitCode, 1);
  assert.equal(result.reason, `policy executable ${path} exited 1`);
});

void test('a script killed by a signal does not sign', async () => {
  const path = await script('suicide.sh', 'kill -KILL $$');
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem });
  assert.equal(result.sign, false);
  assert.equal(result.signal, 'SIGKILL');
  assert.equal(result.reason, `policy executable ${path} was killed by SIGKILL`);
});

void test('a script that hangs is killed with its process group at the timeout', async () => {
  const pidFile = join(dir, 'sleep.pid');
  const path = await script('sleep.sh', `echo $$ > '${pidFile}'\nsleep 60`);
  const started = Date.now();
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem, timeoutMs: 300, killGraceMs: 200 });
  assert.ok(Date.now() - started < 5000, 'finished promptly');
  assert.equal(result.sign, false);
  assert.equal(result.timedOut, true);
  assert.equal(result.reason, `policy executable ${path} timed out after 300ms`);
  if (existsSync('/proc/self/stat')) {
    const pgid = Number((await readFile(pidFile, 'utf8')).trim());
    // The `sleep` the script started is in its group and must have been killed with it.
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await liveMembers(pgid), []);
  }
});

void test('a script that ignores SIGTERM gets SIGKILL after the grace period', async () => {
  const path = await script('stubborn.sh', "trap '' TERM\nsleep 60");
  const started = Date.now();
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem, timeoutMs: 200, killGraceMs: 200 });
  assert.ok(Date.now() - started < 5000, 'finished promptly');
  assert.equal(result.sign, false);
  assert.equal(result.timedOut, true);
  assert.match(result.reason, /timed out after 200ms$/);
});

void test('a script that never reads stdin (EPIPE) still decides', async () => {
  const path = await script('noread.sh', 'exit 0');
  // Far more than a pipe buffer, so the write is still in progress when the script exits.
  const big = csrPem + 'x'.repeat(4 * 1024 * 1024);
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem: big });
  assert.equal(result.sign, true);
  assert.equal(result.exitCode, 0);
});

void test('a background job holding stdout does not delay the decision', async () => {
  const pidFile = join(dir, 'bg.pid');
  const path = await script('bg.sh', `cat >/dev/null\nsleep 30 &\necho $! > '${pidFile}'\nexit 0`);
  const started = Date.now();
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem, timeoutMs: 5000 });
  assert.ok(Date.now() - started < 3000, 'did not wait for the background job');
  assert.equal(result.sign, true);
  process.kill(Number((await readFile(pidFile, 'utf8')).trim()), 'SIGTERM');
});

void test('output is capped', async () => {
  const path = await script('chatty.sh', 'head -c 200000 /dev/zero | tr "\\000" a\nhead -c 100000 /dev/zero | tr "\\000" b >&2');
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem, maxOutputBytes: 1024 });
  assert.equal(result.sign, true);
  assert.ok(result.stdout.startsWith('a'.repeat(1024)));
  assert.match(result.stdout, /\[198976 more bytes not kept\]$/);
  assert.match(result.stderr, /\[98976 more bytes not kept\]$/);
});

void test('a missing, non-executable or non-file path does not sign and does not throw', async () => {
  const missing = join(dir, 'missing.sh');
  const r1 = await runPolicyExecutable({ path: missing, certname: 'a.example.com', csrPem });
  assert.deepEqual([r1.sign, r1.reason], [false, `policy executable ${missing} does not exist`]);

  const plain = await script('plain.sh', 'exit 0', 0o644);
  const r2 = await runPolicyExecutable({ path: plain, certname: 'a.example.com', csrPem });
  assert.deepEqual([r2.sign, r2.reason], [false, `policy executable ${plain} is not executable`]);

  const sub = join(dir, 'a-directory');
  await mkdir(sub);
  const r3 = await runPolicyExecutable({ path: sub, certname: 'a.example.com', csrPem });
  assert.deepEqual([r3.sign, r3.reason], [false, `policy executable ${sub} is not a regular file`]);
});

void test('an unparseable interpreter line does not sign', async () => {
  const path = join(dir, 'badinterp.sh');
  await writeFile(path, '#!/nonexistent/interpreter\nexit 0\n', { mode: 0o755 });
  const result = await runPolicyExecutable({ path, certname: 'a.example.com', csrPem });
  assert.equal(result.sign, false);
  assert.match(result.reason, /^policy executable .* could not be started: /);
});
