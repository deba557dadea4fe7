import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createCsr, generateKeyPair } from '../../src/ca/x509.ts';
import { openApiDocument } from '../../src/admin/openapi.ts';
import { checkAnswer, matchPath } from '../../src/admin/openapi-check.ts';
import { SqliteReportStore } from '../../src/reports/sqlite-store.ts';
import { newReport } from '../../src/reports/store-conformance.ts';
import { httpsRequest, startRingmaster, type HttpsResult, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { describeRun, pollUntil } from '../helpers/puppet.ts';

// Every operation of the admin API's OpenAPI document, called over real HTTPS against a running
// `ringmaster serve`, each answer (errors included) checked against the document; the test fails
// when an operation in the document was never answered with success. Also: who is refused, the
// dashboard's files, cross-site refusals, and a drain through the API that empties a member.

type Identity = { cert: string; key: string };
type Doc = Parameters<typeof checkAnswer>[0];
const doc = openApiDocument as unknown as Doc;

let rm: Ringmaster;
let options: RingmasterOptions;
let a: Backend;
let b: Backend;
let ca: string;
let agent: Identity;
const token = randomBytes(24).toString('hex');
const held: { member: string; release: () => void }[] = [];
/** `METHOD template` of every operation answered with a 2xx. */
const succeeded = new Set<string>();

function scripted(backend: Backend): void {
  backend.handle((req, res) => {
    const send = () => res.writeHead(200, { 'content-type': 'application/json', 'x-backend': backend.name }).end(JSON.stringify({ backend: backend.name }));
    if (req.url?.includes('/hold/')) held.push({ member: backend.name, release: send });
    else send();
  });
}

const pools = (extra: ConfigInput['pools'] = {}): ConfigInput['pools'] => ({
  compilers: { members: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: { active: { enabled: false } } },
  ...extra,
});

type Reply = HttpsResult & { json: unknown };

/** An admin request with the token, checked against the document. */
async function api(method: string, path: string, body?: unknown, o: { id?: Identity; headers?: Record<string, string>; auth?: boolean } = {}): Promise<Reply> {
  const port = rm.adminPort;
  assert.ok(port, 'the admin API port was logged');
  const headers: Record<string, string> = { ...(o.auth === false ? {} : { authorization: `Bearer ${token}` }), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
  const r = await httpsRequest({ port, path, method, ca, headers, ...(o.id ? { cert: o.id.cert, key: o.id.key } : {}), ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
  const json = r.headers['content-type'] === 'application/json' ? (JSON.parse(r.body) as unknown) : undefined;
  const pathname = path.split('?')[0] ?? path;
  assert.deepEqual(checkAnswer(doc, method, pathname, r.status, json), [], `${method} ${path} answered ${r.status}: ${r.body.slice(0, 2000)}`);
  if (r.status >= 200 && r.status < 300) succeeded.add(`${method} ${matchPath(doc, pathname)}`);
  return { ...r, json };
}

const codeOf = (r: Reply) => (r.json as { error?: { code?: string } }).error?.code;
const agentGet = async (path = '/puppet/v3/node/agent1.test?environment=production') => {
  const r = await httpsRequest({ port: rm.port, path, ca });
  assert.equal(r.status, 200, r.body);
  return String(r.headers['x-backend']);
};

async function submitCsr(name: string): Promise<void> {
  const csr = await createCsr({ commonName: name, keyPair: await generateKeyPair({ type: 'ec', curve: 'P-256' }) });
  const r = await httpsRequest({ port: rm.port, path: `/puppet-ca/v1/certificate_request/${name}?environment=production`, method: 'PUT', body: csr, ca, headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200, r.body);
}

before(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  for (const x of [a, b]) scripted(x);
  options = { pools: pools(), admin: { tokenFile: 'admin-token' } };
  rm = await startRingmaster({ ...options, prepare: async ({ configFile }) => writeFile(join(configFile, '..', 'admin-token'), `${token}\n`, { mode: 0o600 }) });
  ca = await readFile(rm.paths.caCert, 'utf8');
  const gen = await rm.cli(['ca', 'generate', 'agent1.test']);
  assert.equal(gen.code, 0, describeRun('ca generate', gen));
  agent = {
    cert: await readFile(join(rm.paths.sslDir, 'certs', 'agent1.test.pem'), 'utf8'),
    key: await readFile(join(rm.paths.sslDir, 'private_keys', 'agent1.test.pem'), 'utf8'),
  };
  // Reports through the store API, beside the running server (SQLite in WAL mode takes both).
  const store = await SqliteReportStore.openIn(rm.stateDir);
  const now = Date.now();
  for (let i = 0; i < 12; i++) {
    await store.add(newReport({ node: `web0${(i % 3) + 1}.example.com`, status: i % 4 === 3 ? 'failed' : i % 2 ? 'changed' : 'unchanged', receivedAt: now - (12 - i) * 60_000, compiler: i % 2 ? 'a' : 'b' }));
  }
  await store.close();
});

after(async () => {
  for (const h of held.splice(0)) h.release();
  await rm?.cleanup();
  await Promise.all([a?.close(), b?.close()]);
});

test('refused without an allowed certificate or the token, on every kind of endpoint; the dashboard files need neither', async () => {
  for (const path of ['/admin/v1/state', '/admin/v1/ca/certificates', '/admin/v1/config', '/admin/v1/openapi.json', '/admin/v1/reports']) {
    const nobody = await api('GET', path, undefined, { auth: false });
    assert.equal(nobody.status, 401, path);
    assert.equal(codeOf(nobody), 'RM_ADMIN_AUTH_REQUIRED');
    const byAgent = await api('GET', path, undefined, { auth: false, id: agent });
    assert.equal(byAgent.status, 403, path);
    assert.equal(codeOf(byAgent), 'RM_AUTH_FORBIDDEN');
    const wrong = await api('GET', path, undefined, { auth: false, headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(codeOf(wrong), 'RM_ADMIN_TOKEN_INVALID');
  }
  const signNobody = await api('POST', '/admin/v1/ca/certificates/x.test/sign', {}, { auth: false });
  assert.equal(signNobody.status, 401);
  const reload = await api('POST', '/admin/v1/reload', undefined, { auth: false, id: agent });
  assert.equal(reload.status, 403);

  const page = await httpsRequest({ port: rm.adminPort!, path: '/', ca });
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.body, /<script type="module" src="\/ui\/app\.js">/);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /https?:|\*/, 'no external origin is allowed');
  const js = await httpsRequest({ port: rm.adminPort!, path: '/ui/pages/pools.js', ca });
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);
  assert.equal((await httpsRequest({ port: rm.adminPort!, path: '/ui/nope.js', ca })).status, 404);
  assert.equal((await httpsRequest({ port: rm.adminPort!, path: '/ui/../server.ts', ca })).status, 404);
});

test('state, listeners, routes, pools and members, with status and problems', async () => {
  const { state } = (await api('GET', '/admin/v1/state')).json as { state: { listeners: { name: string; port: number }[]; routes: { name: string; source: string }[]; pools: { name: string; status: string; members: unknown[] }[]; gateway: string } };
  assert.deepEqual(state.listeners.map((l) => [l.name, l.port]), [['agents', rm.port]]);
  assert.deepEqual(state.routes.map((r) => [r.name, r.source]), [['ca', 'default'], ['status', 'default'], ['puppet', 'default']]);
  assert.deepEqual(state.pools.map((p) => [p.name, p.status, p.members.length]), [['compilers', 'ok', 2]]);
  assert.equal(state.gateway, 'running');
  await api('GET', '/admin/v1/listeners');
  await api('GET', '/admin/v1/routes');
  await api('GET', '/admin/v1/pools');
  await api('GET', '/admin/v1/pools/compilers');
  await api('GET', '/admin/v1/pools/compilers/members/a');
  assert.equal((await api('GET', '/admin/v1/pools/nope')).status, 404);
  assert.equal((await api('GET', '/admin/v1/state?x=1')).status, 400);
  assert.equal((await api('DELETE', '/admin/v1/state')).status, 405);
  assert.equal((await api('GET', '/admin/v1/openapi.json')).status, 200);
  assert.equal((await api('GET', '/admin/v1/nowhere')).status, 404);
});

test('drain through the API empties a member: its request in flight finishes, new ones go elsewhere; enable restores it', async () => {
  const inFlight = httpsRequest({ port: rm.port, path: '/puppet/v3/node/hold/1?environment=production', ca });
  const h = await pollUntil('a request held by a member', () => held[0], { timeoutMs: 5000, intervalMs: 10 });
  const other = h.member === 'a' ? 'b' : 'a';
  const member = async () => ((await api('GET', `/admin/v1/pools/compilers/members/${h.member}`)).json as { member: { inFlight: number; draining: boolean } }).member;
  assert.equal((await member()).inFlight, 1);
  const drain = api('POST', `/admin/v1/pools/compilers/members/${h.member}/drain`, { wait: true, timeout: '20s' });
  await pollUntil('the member to be draining', async () => ((await member()).draining ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
  assert.deepEqual([await agentGet(), await agentGet(), await agentGet()], [other, other, other]);
  const { state } = (await api('GET', '/admin/v1/state')).json as { state: { pools: { status: string; problems: string[] }[] } };
  assert.equal(state.pools[0]?.status, 'ok', 'a drained member is no problem');
  held.splice(held.indexOf(h), 1);
  h.release();
  assert.equal((await inFlight).status, 200);
  const drained = await drain;
  assert.equal(drained.status, 200, drained.body);
  const body = drained.json as { idle: boolean; member: { inFlight: number; draining: boolean } };
  assert.equal(body.idle, true);
  assert.equal(body.member.inFlight, 0);
  assert.equal(body.member.draining, true);

  const timeout = httpsRequest({ port: rm.port, path: '/puppet/v3/node/hold/2?environment=production', ca });
  const h2 = await pollUntil('a second held request', () => held[0], { timeoutMs: 5000, intervalMs: 10 });
  assert.equal(h2.member, other);
  const late = await api('POST', `/admin/v1/pools/compilers/members/${other}/drain`, { wait: true, timeout: '200ms' });
  assert.equal(late.status, 504);
  held.splice(0).forEach((x) => x.release());
  await timeout;
  for (const m of ['a', 'b']) assert.equal((await api('POST', `/admin/v1/pools/compilers/members/${m}/enable`)).status, 200);
  assert.deepEqual(new Set([await agentGet(), await agentGet(), await agentGet(), await agentGet()]), new Set(['a', 'b']));
});

test('a cross-site request cannot change anything, even with valid credentials', async () => {
  const path = '/admin/v1/pools/compilers/members/a/drain';
  const attempts: Record<string, string>[] = [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }];
  for (const headers of attempts) {
    const r = await api('POST', path, undefined, { headers });
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(codeOf(r), 'RM_ADMIN_CROSS_SITE');
  }
  const m = (await api('GET', '/admin/v1/pools/compilers/members/a')).json as { member: { draining: boolean } };
  assert.equal(m.member.draining, false);
  const sameOrigin = await api('POST', '/admin/v1/pools/compilers/members/a/enable', undefined, { headers: { origin: `https://localhost:${rm.adminPort}`, 'sec-fetch-site': 'same-origin' } });
  assert.equal(sameOrigin.status, 200, 'the dashboard itself (same origin) may');
});

test('members added and removed at run time', async () => {
  const c = await startBackend('c');
  try {
    const put = await api('PUT', '/admin/v1/pools/compilers/members/c', { url: c.url, weight: 2 });
    assert.equal(put.status, 201);
    assert.equal((await api('PUT', '/admin/v1/pools/compilers/members/c', { url: c.url })).status, 200);
    assert.equal((await api('PUT', '/admin/v1/pools/compilers/members/a', { url: c.url })).status, 409);
    assert.equal((await api('PUT', '/admin/v1/pools/compilers/members/c', { url: 'ftp://x' })).status, 400);
    assert.equal((await api('DELETE', '/admin/v1/pools/compilers/members/c')).status, 200);
    assert.equal((await api('DELETE', '/admin/v1/pools/compilers/members/c')).status, 404);
  } finally {
    await c.close();
  }
});

test('reports, node status and stats', async () => {
  const list = (await api('GET', '/admin/v1/reports?limit=5')).json as { reports: { id: number }[]; next: string };
  assert.equal(list.reports.length, 5);
  await api('GET', `/admin/v1/reports?cursor=${list.next}&status=failed`);
  const failed = (await api('GET', '/admin/v1/reports?status=failed&limit=1')).json as { reports: { id: number }[] };
  const id = failed.reports[0]!.id;
  const detail = (await api('GET', `/admin/v1/reports/${id}`)).json as { report: { failedResources: unknown[] } };
  assert.ok(detail.report.failedResources.length > 0);
  await api('GET', `/admin/v1/reports/${id}/body`);
  const nodes = (await api('GET', '/admin/v1/nodes')).json as { nodes: unknown[] };
  assert.equal(nodes.nodes.length, 3);
  const stats = (await api('GET', '/admin/v1/reports/stats?window=30m&bucket=5m')).json as { stats: { window: { failed: number } } };
  assert.equal(stats.stats.window.failed, 3);
  assert.equal((await api('GET', '/admin/v1/reports/999999')).status, 404);
  assert.equal((await api('GET', '/admin/v1/reports?status=odd')).status, 400);
});

test('CA: list, sign, reject, revoke and clean, as ringmaster ca does', async () => {
  await Promise.all(['sign-me.test', 'reject-me.test'].map(submitCsr));
  const summary = (await api('GET', '/admin/v1/ca')).json as { ca: { counts: { requested: number } } };
  assert.equal(summary.ca.counts.requested, 2);
  const pending = (await api('GET', '/admin/v1/ca/certificates?state=requested')).json as { certificates: { name: string }[] };
  assert.deepEqual(pending.certificates.map((c) => c.name).sort(), ['reject-me.test', 'sign-me.test']);
  const signed = await api('POST', '/admin/v1/ca/certificates/sign-me.test/sign', { ttl: '10d' });
  assert.equal(signed.status, 200, signed.body);
  const cert = (signed.json as { certificate: { state: string; expiresInDays: number; serial: string } }).certificate;
  assert.equal(cert.state, 'signed');
  assert.ok(cert.expiresInDays >= 9 && cert.expiresInDays <= 10, String(cert.expiresInDays));
  const fetched = await httpsRequest({ port: rm.port, path: '/puppet-ca/v1/certificate/sign-me.test', ca });
  assert.equal(fetched.status, 200);
  assert.match(fetched.body, /BEGIN CERTIFICATE/);
  const expiring = (await api('GET', '/admin/v1/ca/certificates?expiring=30d')).json as { certificates: { name: string }[] };
  assert.deepEqual(expiring.certificates.map((c) => c.name), ['sign-me.test']);
  assert.equal(codeOf(await api('POST', '/admin/v1/ca/certificates/sign-me.test/sign')), 'RM_CA_NO_CSR');
  assert.equal((await api('POST', '/admin/v1/ca/certificates/reject-me.test/reject')).status, 200);
  assert.equal((await api('GET', '/admin/v1/ca/certificates/reject-me.test')).status, 404);
  assert.equal((await api('GET', '/admin/v1/ca/certificates/sign-me.test')).status, 200);
  const revoked = (await api('POST', '/admin/v1/ca/certificates/sign-me.test/revoke')).json as { certificate: { state: string } };
  assert.equal(revoked.certificate.state, 'revoked');
  assert.equal((await api('POST', '/admin/v1/ca/certificates/sign-me.test/clean')).status, 200);
  assert.equal((await api('POST', '/admin/v1/ca/certificates/sign-me.test/clean')).status, 404);
  assert.equal((await api('POST', '/admin/v1/ca/certificates/Bad_Name/sign')).status, 400);
  assert.equal((await api('POST', '/admin/v1/ca/certificates/x.test/sign', { colour: 'red' })).status, 400);
  assert.equal((await api('POST', '/admin/v1/ca/certificates/nobody.test/revoke')).status, 404);
});

test('config is redacted; reload applies the file, or refuses it and keeps the running one', async () => {
  const config = await api('GET', '/admin/v1/config');
  assert.equal(config.status, 200);
  assert.ok(!config.body.includes(token), 'the token is never shown');
  const admin = (config.json as { config: { admin: Record<string, unknown> } }).config.admin;
  assert.equal(admin.tokenFile, '[redacted]');
  assert.ok(!/BEGIN [A-Z ]*PRIVATE KEY/.test(config.body));

  const c = await startBackend('c');
  try {
    await rm.rewriteConfig({ ...options, pools: pools({ canary: { members: [{ name: 'c', url: c.url }], healthCheck: { active: { enabled: false } } } }) });
    const ok = await api('POST', '/admin/v1/reload');
    assert.equal(ok.status, 200, ok.body);
    const pools1 = (await api('GET', '/admin/v1/pools')).json as { pools: { name: string }[] };
    assert.deepEqual(pools1.pools.map((p) => p.name), ['compilers', 'canary']);
    const after = (await api('GET', '/admin/v1/config')).json as { config: { pools: Record<string, unknown> } };
    assert.ok('canary' in after.config.pools, 'GET /config shows the reloaded configuration');

    await writeFile(rm.configFile, '{"pools": {"compilers": {"members": [{"name": "a", "url": "ftp://nope"}]}}}\n');
    const refused = await api('POST', '/admin/v1/reload');
    assert.equal(refused.status, 500);
    assert.equal(codeOf(refused), 'RM_RELOAD_FAILED');
    assert.match((refused.json as { error: { message: string } }).error.message, /url/);
    const pools2 = (await api('GET', '/admin/v1/pools')).json as { pools: { name: string }[] };
    assert.deepEqual(pools2.pools.map((p) => p.name), ['compilers', 'canary'], 'the running configuration is kept');
    await rm.rewriteConfig(options);
    assert.equal((await api('POST', '/admin/v1/reload', {})).status, 200);
    assert.equal((await api('POST', '/admin/v1/reload', { now: true })).status, 400);
  } finally {
    await c.close();
  }
});

test('every operation in the document was answered with success at least once', () => {
  const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(operations.filter((o) => !succeeded.has(o)), []);
});
