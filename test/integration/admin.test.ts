import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpsRequest, startRingmaster, type HttpsResult, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { describeRun, pollUntil } from '../helpers/puppet.ts';

// The admin API and `ringmaster member` against a real `ringmaster serve` process and scripted
// compilers: who is admitted, a drain that lets a request in flight finish while new requests go
// elsewhere, members added at run time surviving reloads and restarts, and refusals of bad input.

type Identity = { cert: string; key: string };
type Held = { member: string; release: () => void };

let rm: Ringmaster;
let options: RingmasterOptions;
let a: Backend;
let b: Backend;
let c: Backend;
let ca: string;
let own: Identity;
let agent: Identity;
let operator: Identity;
const token = randomBytes(24).toString('hex');
/** Responses the backends hold back (paths containing /hold/) until the test releases them. */
const held: Held[] = [];

function scripted(backend: Backend): void {
  backend.handle((req, res) => {
    const send = () => res.writeHead(200, { 'content-type': 'application/json', 'x-backend': backend.name }).end(JSON.stringify({ backend: backend.name }));
    if (req.url?.includes('/hold/')) held.push({ member: backend.name, release: send });
    else send();
  });
}

const pools = (extra: { name: string; url: string }[] = []): ConfigInput['pools'] => ({
  compilers: { members: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }, ...extra], policy: 'round-robin', healthCheck: { active: { enabled: false } } },
});

async function identity(name: string, cliAuth = false): Promise<Identity> {
  const r = await rm.cli(['ca', 'generate', name, ...(cliAuth ? ['--cli-auth'] : [])]);
  assert.equal(r.code, 0, describeRun(`ca generate ${name}`, r));
  return readIdentity(name);
}

async function readIdentity(name: string): Promise<Identity> {
  const [cert, key] = await Promise.all([readFile(join(rm.paths.sslDir, 'certs', `${name}.pem`), 'utf8'), readFile(join(rm.paths.sslDir, 'private_keys', `${name}.pem`), 'utf8')]);
  return { cert, key };
}

function admin(method: string, path: string, o: { id?: Identity | undefined; body?: string; headers?: Record<string, string> } = { id: own }): Promise<HttpsResult> {
  const port = rm.adminPort;
  assert.ok(port, 'the admin API port was logged');
  return httpsRequest({ port, path, method, ca, ...(o.id ? { cert: o.id.cert, key: o.id.key } : {}), ...(o.body !== undefined ? { body: o.body } : {}), headers: { 'content-type': 'application/json', ...o.headers } });
}

const errorOf = (r: HttpsResult) => (JSON.parse(r.body) as { error: { code: string; message: string } }).error;

/** An agent request through the gateway; answers which member served it. */
async function agentGet(path = '/puppet/v3/node/agent1.test?environment=production'): Promise<string> {
  const r = await httpsRequest({ port: rm.port, path, ca });
  assert.equal(r.status, 200, r.body);
  return String(r.headers['x-backend']);
}

async function servedBy(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await agentGet());
  return out;
}

type MemberJson = { name: string; draining: boolean; inFlight: number; source: string | null; url: string };
async function listed(): Promise<MemberJson[]> {
  const r = await rm.cli(['member', 'list', 'compilers', '--json']);
  assert.equal(r.code, 0, describeRun('member list', r));
  return (JSON.parse(r.stdout) as { pool: { members: MemberJson[] } }).pool.members;
}

before(async () => {
  [a, b, c] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
  for (const backend of [a, b, c]) scripted(backend);
  options = { pools: pools(), admin: { tokenFile: 'admin-token' } };
  rm = await startRingmaster({
    ...options,
    prepare: async ({ configFile }) => writeFile(join(configFile, '..', 'admin-token'), `${token}\n`, { mode: 0o600 }),
  });
  ca = await readFile(rm.paths.caCert, 'utf8');
  own = await readIdentity('ringmaster.test');
  [agent, operator] = await Promise.all([identity('agent1.test'), identity('ops.test', true)]);
});

after(async () => {
  for (const h of held.splice(0)) h.release();
  await rm?.cleanup();
  await Promise.all([a?.close(), b?.close(), c?.close()]);
});

test('who is admitted: ringmaster\'s own certificate, pp_cli_auth, the token; not an agent, not nobody', async () => {
  const nobody = await admin('GET', '/admin/v1/pools', { id: undefined });
  assert.equal(nobody.status, 401);
  assert.equal(errorOf(nobody).code, 'RM_ADMIN_AUTH_REQUIRED');
  assert.equal(nobody.headers['x-ringmaster-error'], 'RM_ADMIN_AUTH_REQUIRED');

  const byAgent = await admin('GET', '/admin/v1/pools', { id: agent });
  assert.equal(byAgent.status, 403);
  assert.equal(errorOf(byAgent).code, 'RM_AUTH_FORBIDDEN');

  const wrongToken = await admin('GET', '/admin/v1/pools', { id: undefined, headers: { authorization: 'Bearer not-the-token' } });
  assert.equal(wrongToken.status, 401);
  assert.equal(errorOf(wrongToken).code, 'RM_ADMIN_TOKEN_INVALID');

  for (const [who, o] of [['own', { id: own }], ['pp_cli_auth', { id: operator }], ['token', { id: undefined, headers: { authorization: `Bearer ${token}` } }]] as const) {
    const r = await admin('GET', '/admin/v1/pools', o);
    assert.equal(r.status, 200, `${who}: ${r.body}`);
    const body = JSON.parse(r.body) as { pools: { name: string; members: MemberJson[] }[] };
    assert.deepEqual(body.pools.map((p) => p.name), ['compilers']);
    assert.deepEqual(body.pools[0]?.members.map((m) => [m.name, m.source]), [['a', 'config'], ['b', 'config']]);
  }

  const revoked = await rm.cli(['ca', 'revoke', 'ops.test']);
  assert.equal(revoked.code, 0, describeRun('ca revoke', revoked));
  await pollUntil('the revoked operator certificate to be refused', async () => {
    const r = await admin('GET', '/admin/v1/pools', { id: operator }).catch(() => undefined);
    return r?.status === 403 && errorOf(r).code === 'RM_TLS_PEER_REJECTED' ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
});

test('drain --wait: the request in flight finishes whole, the command returns only after it, new requests go elsewhere; enable brings it back', async () => {
  const inFlight = httpsRequest({ port: rm.port, path: '/puppet/v3/node/hold/1?environment=production', ca });
  const h = await pollUntil('a request to be held by a member', () => held[0], { timeoutMs: 5000, intervalMs: 10 });
  const drained = h.member;
  const other = drained === 'a' ? 'b' : 'a';
  let requestDone = false;
  void inFlight.then(() => (requestDone = true));

  let commandDone = false;
  const command = rm.cli(['member', 'drain', 'compilers', drained, '--wait']).then((r) => {
    commandDone = true;
    return { r, requestDoneFirst: requestDone };
  });
  await pollUntil('the drain to take effect', async () => ((await listed()).find((m) => m.name === drained)?.draining ? true : undefined), { timeoutMs: 10_000, intervalMs: 50 });
  assert.deepEqual(await servedBy(4), [other, other, other, other], 'a draining member gets no new requests');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(commandDone, false, 'drain --wait is still waiting for the request in flight');

  held.splice(held.indexOf(h), 1);
  h.release();
  const reply = await inFlight;
  assert.equal(reply.status, 200, 'the request in flight was not cut');
  assert.equal((JSON.parse(reply.body) as { backend: string }).backend, drained);
  const { r, requestDoneFirst } = await command;
  assert.equal(r.code, 0, describeRun('member drain --wait', r));
  assert.ok(requestDoneFirst, 'the command returned only after the request finished');
  assert.match(r.stdout, new RegExp(`member ${drained} of pool compilers is drained: nothing in flight`));
  const state = (await listed()).find((m) => m.name === drained);
  assert.equal(state?.draining, true);
  assert.equal(state?.inFlight, 0);

  const enable = await rm.cli(['member', 'enable', 'compilers', drained]);
  assert.equal(enable.code, 0, describeRun('member enable', enable));
  assert.deepEqual(new Set(await servedBy(4)), new Set(['a', 'b']), 'enabled: both members take requests again');
});

test('drain --wait --timeout: exit 1 with RM_ADMIN_DRAIN_TIMEOUT, the member stays draining, the request still finishes', async () => {
  const inFlight = httpsRequest({ port: rm.port, path: '/puppet/v3/node/hold/2?environment=production', ca });
  const h = await pollUntil('a request to be held by a member', () => held[0], { timeoutMs: 5000, intervalMs: 10 });
  const r = await rm.cli(['member', 'drain', 'compilers', h.member, '--wait', '--timeout', '300ms', '--json']);
  assert.equal(r.code, 1, describeRun('member drain --timeout', r));
  assert.match(r.stderr, /RM_ADMIN_DRAIN_TIMEOUT/);
  const body = JSON.parse(r.stdout) as { idle: boolean; member: MemberJson; error: { code: string } };
  assert.equal(body.idle, false);
  assert.equal(body.error.code, 'RM_ADMIN_DRAIN_TIMEOUT');
  assert.equal(body.member.inFlight, 1);
  assert.equal(body.member.draining, true);
  held.splice(held.indexOf(h), 1);
  h.release();
  assert.equal((await inFlight).status, 200);
  const enable = await rm.cli(['member', 'enable', 'compilers', h.member]);
  assert.equal(enable.code, 0, describeRun('member enable', enable));
});

test('a drain set at run time survives a reload and a restart until enabled', async () => {
  assert.equal((await rm.cli(['member', 'drain', 'compilers', 'b'])).code, 0);
  const reload = await rm.cli(['reload']);
  assert.equal(reload.code, 0, describeRun('reload', reload));
  assert.equal((await listed()).find((m) => m.name === 'b')?.draining, true, 'after a reload');
  await rm.stop();
  await rm.restart();
  assert.equal((await listed()).find((m) => m.name === 'b')?.draining, true, 'after a restart');
  assert.deepEqual(await servedBy(3), ['a', 'a', 'a']);
  assert.equal((await rm.cli(['member', 'enable', 'compilers', 'b'])).code, 0);
  assert.equal((await listed()).find((m) => m.name === 'b')?.draining, false);
});

test('member add: it takes traffic, survives a reload and a restart, and is gone after remove', async () => {
  const add = await rm.cli(['member', 'add', 'compilers', 'c', '--url', c.url, '--weight', '2']);
  assert.equal(add.code, 0, describeRun('member add', add));
  assert.match(add.stdout, /member c added to pool compilers/);
  assert.ok((await servedBy(6)).includes('c'), 'the added member gets requests');
  const saved = JSON.parse(await readFile(join(rm.stateDir, 'members.json'), 'utf8')) as { pools: { compilers: { members: { name: string; url: string }[] } } };
  assert.deepEqual(saved.pools.compilers.members.map((m) => [m.name, m.url]), [['c', c.url]]);

  assert.equal((await rm.cli(['reload'])).code, 0);
  assert.deepEqual((await listed()).map((m) => [m.name, m.source]), [['a', 'config'], ['b', 'config'], ['c', 'runtime']], 'after a reload');
  await rm.stop();
  await rm.restart();
  assert.deepEqual((await listed()).map((m) => [m.name, m.source]), [['a', 'config'], ['b', 'config'], ['c', 'runtime']], 'after a restart');
  assert.ok((await servedBy(6)).includes('c'), 'the added member gets requests after the restart');
  const human = await rm.cli(['member', 'list']);
  assert.match(human.stdout, /pool compilers \(round-robin\): 3 of 3 member\(s\) eligible/);
  assert.match(human.stdout, /c\s+http:\/\/127\.0\.0\.1:\d+\s+ready\s+-\s+0\s+0\s+run time/);

  const remove = await rm.cli(['member', 'remove', 'compilers', 'c']);
  assert.equal(remove.code, 0, describeRun('member remove', remove));
  assert.deepEqual((await listed()).map((m) => m.name), ['a', 'b']);
  const before = c.seen.length;
  await servedBy(6);
  assert.equal(c.seen.length, before, 'a removed member gets no requests');
});

test("a run-time member that the file later defines: the file's entry wins and the run-time one is dropped", async () => {
  assert.equal((await rm.cli(['member', 'add', 'compilers', 'c', '--url', c.url])).code, 0);
  await rm.rewriteConfig({ ...options, pools: pools([{ name: 'c', url: c.url }]) });
  assert.equal((await rm.cli(['reload'])).code, 0);
  assert.deepEqual((await listed()).map((m) => [m.name, m.source]), [['a', 'config'], ['b', 'config'], ['c', 'config']]);
  await pollUntil('members.json to lose c', async () => ((await readFile(join(rm.stateDir, 'members.json'), 'utf8')).includes('"c"') ? undefined : true), { timeoutMs: 5000, intervalMs: 50 });
  assert.match(rm.logs(), /run-time member change dropped: the configuration file now defines a member of this name/);
  const refused = await rm.cli(['member', 'remove', 'compilers', 'c']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /RM_ADMIN_MEMBER_IN_CONFIG/);
  await rm.rewriteConfig(options);
  assert.equal((await rm.cli(['reload'])).code, 0);
});

test('bad input is refused with a code; unknown pools and members are not found', async () => {
  const put = (body: string, member = 'x') => admin('PUT', `/admin/v1/pools/compilers/members/${member}`, { id: own, body });
  for (const [body, pattern] of [['{"url":"ftp://10.0.0.7:8141"}', /url/], ['not json', /not JSON/], ['{"url":"http://10.0.0.7:8141","colour":"red"}', /colour/], ['{"url":"http://10.0.0.7:8141","weight":0}', /weight/], ['', /url/]] as const) {
    const r = await put(body);
    assert.equal(r.status, 400, body);
    assert.equal(errorOf(r).code, 'RM_ADMIN_BAD_REQUEST', body);
    assert.match(errorOf(r).message, pattern, body);
  }
  assert.equal(errorOf(await put('{"url":"http://10.0.0.7:8141"}', 'bad~name')).code, 'RM_ADMIN_BAD_REQUEST');
  const inFile = await put('{"url":"http://10.0.0.7:8141"}', 'a');
  assert.equal(inFile.status, 409);
  assert.equal(errorOf(inFile).code, 'RM_ADMIN_MEMBER_IN_CONFIG');
  const badDrain = await admin('POST', '/admin/v1/pools/compilers/members/a/drain', { id: own, body: '{"wait":"yes"}' });
  assert.equal(badDrain.status, 400);
  assert.equal((await listed()).find((m) => m.name === 'a')?.draining, false, 'a refused request changes nothing');

  for (const [method, path] of [['POST', '/admin/v1/pools/compilers/members/nope/drain'], ['POST', '/admin/v1/pools/nopool/members/a/enable'], ['GET', '/admin/v1/pools/nopool'], ['DELETE', '/admin/v1/pools/compilers/members/nope'], ['GET', '/admin/v2/pools']] as const) {
    const r = await admin(method, path);
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(errorOf(r).code, 'RM_NOT_FOUND', `${method} ${path}`);
  }
  const method = await admin('DELETE', '/admin/v1/pools');
  assert.equal(method.status, 405);
  assert.equal(errorOf(method).code, 'RM_METHOD_NOT_ALLOWED');

  const cliUnknown = await rm.cli(['member', 'drain', 'compilers', 'nope']);
  assert.equal(cliUnknown.code, 1);
  assert.match(cliUnknown.stderr, /RM_NOT_FOUND/);
  const cliBadUrl = await rm.cli(['member', 'add', 'compilers', 'x', '--url', 'http://10.0.0.7:8141/path']);
  assert.equal(cliBadUrl.code, 2, describeRun('member add --url with a path', cliBadUrl));
  assert.match(cliBadUrl.stderr, /RM_CLI_USAGE: --url: an http/);
});
