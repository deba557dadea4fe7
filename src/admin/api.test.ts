import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../lib/clock.ts';
import { systemRandom } from '../lib/random.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { silentLog } from '../observability/log.ts';
import { validateConfig } from '../config/schema.ts';
import { Gateway } from '../gateway/gateway.ts';
import { createAdminApi, type AdminAnswer, type AdminApi } from './api.ts';
import { RuntimeMembers } from './runtime-members.ts';

// The admin endpoints on a real gateway and pools, without sockets, on a clock moved by hand:
// a drain with wait answers when the last request in flight ends, or at its timeout.

let dir: string;
let clock: ManualClock;
let gateway: Gateway;
let api: AdminApi;

const call = (method: string, path: string, body?: unknown, signal = new AbortController().signal): Promise<AdminAnswer> =>
  api({ method, segments: path.split('/').slice(1), json: () => Promise.resolve(body), signal, who: 'test' });
const code = (c: string) => (err: unknown) => isRingmasterError(err) && err.code === c;
const pool = () => gateway.pools().get('compilers')!;

/** The drain is saved to disk before it takes effect: real I/O, so poll briefly for it. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rm-admin-api-'));
  clock = new ManualClock();
  const parsed = validateConfig({ pools: { compilers: { members: [{ name: 'c1', url: 'http://10.0.0.1:8141' }, { name: 'c2', url: 'http://10.0.0.2:8141' }], healthCheck: { active: { enabled: false } } } } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const members = await RuntimeMembers.open(dir, silentLog);
  gateway = new Gateway(members.effective({ pools: parsed.config.pools, routes: [], defaultRoutes: true }), {
    clock, random: systemRandom, log: silentLog, services: { ca: () => Promise.reject(new Error('unused')) },
    upstreamTls: () => ({ verify: true, ca: [], serverName: undefined, client: undefined }),
  });
  members.attach(gateway);
  api = createAdminApi({ pools: () => gateway.pools(), members, clock });
});

after(async () => {
  await gateway.stop();
  await rm(dir, { recursive: true, force: true });
});

test('drain with wait answers once the last request in flight ends', async () => {
  const member = pool().member('c1')!;
  const lease = pool().acquire(member);
  let answered = false;
  const pending = call('POST', '/admin/v1/pools/compilers/members/c1/drain', { wait: true, timeout: '5m' }).then((a) => {
    answered = true;
    return a;
  });
  await until('the drain takes effect before the wait', () => member.draining);
  assert.equal(pool().select({})?.name, 'c2', 'new requests go to the other member');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(answered, false, 'still waiting');
  lease.release();
  const answer = await pending;
  assert.equal(answer.status, 200);
  const body = answer.body as { idle: boolean; member: { draining: boolean } };
  assert.deepEqual([body.idle, body.member.draining], [true, true]);
  assert.equal((await call('POST', '/admin/v1/pools/compilers/members/c1/enable')).status, 200);
  assert.equal(member.draining, false);
});

test('drain with wait: 504 RM_ADMIN_DRAIN_TIMEOUT at the timeout; a cancelled wait answers 503; the drain stays either way', async () => {
  const member = pool().member('c2')!;
  const lease = pool().acquire(member);
  const pending = call('POST', '/admin/v1/pools/compilers/members/c2/drain', { wait: true, timeout: '30s' });
  await until('the wait to start its timer', () => clock.pendingTimers() > 0);
  clock.advance(29_999);
  assert.equal(member.draining, true);
  clock.advance(1);
  const answer = await pending;
  assert.equal(answer.status, 504);
  const body = answer.body as { error: { code: string }; idle: boolean; member: { inFlight: number; draining: boolean } };
  assert.deepEqual([body.error.code, body.idle, body.member.inFlight, body.member.draining], ['RM_ADMIN_DRAIN_TIMEOUT', false, 1, true]);

  const cancel = new AbortController();
  const cancelled = call('POST', '/admin/v1/pools/compilers/members/c2/drain', { wait: true }, cancel.signal);
  await until('the second wait to start its timer', () => clock.pendingTimers() > 0);
  cancel.abort();
  assert.equal((await cancelled).status, 503);
  assert.equal(member.draining, true);
  lease.release();
  await call('POST', '/admin/v1/pools/compilers/members/c2/enable');
});

test('put and delete change the pool; routing refuses unknown paths and methods', async () => {
  const added = await call('PUT', '/admin/v1/pools/compilers/members/c3', { url: 'http://10.0.0.3:8141', compileSlots: 2 });
  assert.equal(added.status, 201);
  assert.deepEqual(pool().members().map((m) => m.name), ['c1', 'c2', 'c3']);
  const listed = await call('GET', '/admin/v1/pools');
  const view = (listed.body as { pools: { members: { name: string; source: string }[] }[] }).pools[0]?.members.map((m) => [m.name, m.source]);
  assert.deepEqual(view, [['c1', 'config'], ['c2', 'config'], ['c3', 'runtime']]);
  assert.equal((await call('DELETE', '/admin/v1/pools/compilers/members/c3')).status, 200);
  assert.deepEqual(pool().members().map((m) => m.name), ['c1', 'c2']);

  await assert.rejects(call('GET', '/admin/v1/pools/'), code('RM_NOT_FOUND'));
  await assert.rejects(call('GET', '/admin/v1/pools/compilers/members/c1/restart'), code('RM_NOT_FOUND'));
  await assert.rejects(call('POST', '/admin/v1/pools/compilers'), code('RM_METHOD_NOT_ALLOWED'));
  await assert.rejects(call('PUT', '/admin/v1/pools/compilers/members/c4', { url: 'http://10.0.0.4:8141', weight: 'heavy' }), code('RM_ADMIN_BAD_REQUEST'));
  await assert.rejects(call('PUT', '/admin/v1/pools/compilers/members/c4'), code('RM_ADMIN_BAD_REQUEST'));
});
