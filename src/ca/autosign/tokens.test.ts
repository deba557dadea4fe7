import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ManualClock } from '../../lib/clock.ts';
import { isRingmasterError } from '../../lib/errors.ts';
import { seededRandom } from '../../lib/random.ts';
import { TokenStore, maxTokenTtlMs } from './tokens.ts';

const hour = 3_600_000;
const day = 24 * hour;
let dir = '';
let path = '';
let clock: ManualClock;

function store(): TokenStore {
  return new TokenStore(path, { clock, random: seededRandom(42) });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringmaster-tokens-'));
  path = join(dir, 'state', 'autosign-tokens.json');
  clock = new ManualClock();
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

void test('create then consume succeeds once; the second use is refused', async () => {
  const tokens = store();
  const { token, expiresAt } = await tokens.create('agent1.example.com', hour);
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(expiresAt.getTime(), clock.now() + hour);
  assert.deepEqual(await tokens.consume('agent1.example.com', token), { ok: true });
  assert.deepEqual(await tokens.consume('agent1.example.com', token), { ok: false, reason: 'used' });
});

void test('the file holds hashes only, with mode 0600', async () => {
  const { token } = await store().create('agent1.example.com', hour);
  const text = await readFile(path, 'utf8');
  assert.ok(!text.includes(token));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

void test('an expired token is refused', async () => {
  const tokens = store();
  const { token } = await tokens.create('agent1.example.com', hour);
  clock.advance(hour);
  assert.deepEqual(await tokens.consume('agent1.example.com', token), { ok: false, reason: 'expired' });
});

void test('a token is bound to its certname, and a refused attempt does not spend it', async () => {
  const tokens = store();
  const { token } = await tokens.create('agent1.example.com', hour);
  assert.deepEqual(await tokens.consume('agent2.example.com', token), { ok: false, reason: 'wrong-certname' });
  assert.deepEqual(await tokens.consume('agent1.example.com', token), { ok: true });
});

void test('a glob token accepts any name under its domain, once', async () => {
  const tokens = store();
  const { token } = await tokens.create('*.example.com', hour);
  assert.deepEqual(await tokens.consume('web1.other.org', token), { ok: false, reason: 'wrong-certname' });
  assert.deepEqual(await tokens.consume('web1.example.com', token), { ok: true });
  assert.deepEqual(await tokens.consume('web2.example.com', token), { ok: false, reason: 'used' });
});

void test('unknown tokens', async () => {
  const tokens = store();
  assert.deepEqual(await tokens.consume('a.example.com', 'nope'), { ok: false, reason: 'unknown' });
  await tokens.create('a.example.com', hour);
  assert.deepEqual(await tokens.consume('a.example.com', 'nope'), { ok: false, reason: 'unknown' });
  assert.deepEqual(await tokens.consume('a.example.com', ''), { ok: false, reason: 'unknown' });
});

void test('two concurrent consumes of one token: exactly one succeeds', async () => {
  const tokens = store();
  const { token } = await tokens.create('agent1.example.com', hour);
  const results = await Promise.all([
    tokens.consume('agent1.example.com', token),
    tokens.consume('agent1.example.com', token),
  ]);
  assert.equal(results.filter((r) => r.ok).length, 1);
  assert.deepEqual(results.find((r) => !r.ok), { ok: false, reason: 'used' });
});

void test('two stores on one file race for one token: exactly one succeeds', async () => {
  const { token } = await store().create('agent1.example.com', hour);
  const a = store();
  const b = store();
  const results = await Promise.all([
    a.consume('agent1.example.com', token),
    b.consume('agent1.example.com', token),
    a.consume('agent1.example.com', token),
    b.consume('agent1.example.com', token),
  ]);
  assert.equal(results.filter((r) => r.ok).length, 1);
});

void test('a second store on the same file sees the first one\'s state', async () => {
  const first = store();
  const { token } = await first.create('agent1.example.com', hour);
  const second = store();
  assert.equal((await second.list()).length, 1);
  assert.deepEqual(await second.consume('agent1.example.com', token), { ok: true });
  assert.deepEqual(await first.consume('agent1.example.com', token), { ok: false, reason: 'used' });
  const [info] = await first.list();
  assert.equal(info?.usedBy, 'agent1.example.com');
  assert.equal(info?.usedAt?.getTime(), clock.now());
});

void test('list shows tokens without the secret', async () => {
  const tokens = store();
  const { token, expiresAt } = await tokens.create('a.example.com', hour);
  const list = await tokens.list();
  assert.equal(list.length, 1);
  assert.equal(list[0]?.certname, 'a.example.com');
  assert.equal(list[0]?.expiresAt.getTime(), expiresAt.getTime());
  assert.equal(list[0]?.createdAt.getTime(), clock.now());
  assert.equal(list[0]?.usedAt, undefined);
  assert.match(list[0]?.id ?? '', /^[0-9a-f]{12}$/);
  assert.ok(!JSON.stringify(list).includes(token));
});

void test('prune removes tokens used or expired more than a day ago', async () => {
  const tokens = store();
  const used = await tokens.create('used.example.com', 10 * day);
  await tokens.create('expired.example.com', hour);
  await tokens.create('live.example.com', 10 * day);
  await tokens.consume('used.example.com', used.token);
  assert.equal(await tokens.prune(), 0);
  clock.advance(day + hour);
  assert.equal(await tokens.prune(), 2);
  assert.deepEqual((await tokens.list()).map((t) => t.certname), ['live.example.com']);
  assert.equal(await tokens.prune(), 0);
});

void test('create refuses bad names and lifetimes', async () => {
  const tokens = store();
  const bad: [string, number][] = [
    ['', hour], ['  ', hour], ['*', hour], ['a b.example.com', hour], ['a#b', hour], ['*foo.com', hour],
    ['Agent.example.com', hour], ['a.example.com', 0], ['a.example.com', -1], ['a.example.com', Number.NaN],
    ['a.example.com', maxTokenTtlMs + 1],
  ];
  for (const [certname, ttl] of bad) {
    await assert.rejects(tokens.create(certname, ttl), (err) => isRingmasterError(err, 'RM_CA_TOKEN_INVALID'), `${certname} ${ttl}`);
  }
  await tokens.create('a.example.com', maxTokenTtlMs);
});

void test('a corrupt file is reported with its path', async () => {
  await store().create('a.example.com', hour);
  await writeFile(path, '{"version":1,"tokens":[{"sha256":"zz"}]}');
  await assert.rejects(store().consume('a.example.com', 'x'), (err) => isRingmasterError(err, 'RM_CA_DIR_INVALID') && err.message.includes(path));
  await writeFile(path, 'not json');
  await assert.rejects(store().list(), (err) => isRingmasterError(err, 'RM_CA_DIR_INVALID'));
});

void test('a token raced by several processes is used exactly once', async () => {
  const { token } = await store().create('agent1.example.com', hour);
  const here = new URL('.', import.meta.url).pathname;
  const program = [
    `import { TokenStore } from ${JSON.stringify(join(here, 'tokens.ts'))};`,
    `import { ManualClock } from ${JSON.stringify(join(here, '../../lib/clock.ts'))};`,
    `const r = await new TokenStore(${JSON.stringify(path)}, { clock: new ManualClock() }).consume('agent1.example.com', ${JSON.stringify(token)});`,
    'process.stdout.write(JSON.stringify(r));',
  ].join('\n');
  const runChild = async (): Promise<unknown> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', program]);
    return JSON.parse(stdout);
  };
  const results = await Promise.all([runChild(), runChild(), runChild(), store().consume('agent1.example.com', token)]);
  assert.equal(results.filter((r) => (r as { ok: boolean }).ok).length, 1, JSON.stringify(results));
});
