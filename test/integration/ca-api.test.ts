import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair, createCsr, parseCert, parseCrl, type KeyPair } from '../../src/ca/x509.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';

// The CA API through a real listener on loopback: status codes, bodies, content types and the
// access rules, for the calls agents and the `puppetserver ca` CLI make.

let app: App;
let port: number;
let ca: string;
let stateDir: string;
let operator: TlsIdentity;
let key: KeyPair;

before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'rm-ca-api-'));
  const config = resolveConfig(
    {
      server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
      listeners: [{ address: '127.0.0.1', port: 0 }],
      ca: { keyLength: 2048, autosign: { allow: ['*.auto.test'] } },
    },
    { stateDir },
  );
  app = await startApp(config, { clock: systemClock, log: silentLog });
  port = app.listeners[0]?.address().port ?? 0;
  ca = app.ca.caBundlePem;
  key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const op = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname: 'operator.test', publicKeyPem: op.publicKeyPem, subjectAltNames: [], cliAuth: true, replace: false });
  operator = { cert: cert.pem, key: op.privateKeyPem };
});

after(async () => {
  await app.close(1000);
});

const csrFor = (name: string, extra: Parameters<typeof createCsr>[0] extends infer P ? Partial<P> : never = {}) => createCsr({ commonName: name, keyPair: key, ...extra });

async function signedIdentity(name: string): Promise<TlsIdentity> {
  const r = await call(port, 'PUT', `/puppet-ca/v1/certificate_request/${name}`, { ca, body: await csrFor(name), headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200, r.body);
  const s = await call(port, 'PUT', `/puppet-ca/v1/certificate_status/${name}`, { ca, identity: operator, body: '{"desired_state":"signed"}', headers: { 'content-type': 'application/json' } });
  assert.equal(s.status, 204, s.body);
  const c = await call(port, 'GET', `/puppet-ca/v1/certificate/${name}`, { ca });
  return { cert: c.body, key: key.privateKeyPem };
}

test('the CA certificate and CRL are public, with X-Puppet-Version and If-Modified-Since', async () => {
  const r = await call(port, 'GET', '/puppet-ca/v1/certificate/ca', { ca });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers['x-puppet-version'], '8.4.0');
  assert.match(r.body, /BEGIN CERTIFICATE/);
  const crl = await call(port, 'GET', '/puppet-ca/v1/certificate_revocation_list/ca', { ca });
  assert.equal(crl.status, 200);
  assert.match(crl.body, /BEGIN X509 CRL/);
  const later = new Date(Date.now() + 60_000).toUTCString();
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/certificate_revocation_list/ca', { ca, headers: { 'if-modified-since': later } })).status, 304);
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/certificate/ca', { ca, headers: { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status, 200);
});

test('status answers as puppetserver does', async () => {
  for (const path of ['/status/v1/simple', '/status/v1/simple/server', '/status/v1/simple/master']) {
    const r = await call(port, 'GET', path, { ca });
    assert.deepEqual([r.status, r.body], [200, 'running'], path);
  }
  const r = await call(port, 'GET', '/status/v1/simple/nosuch', { ca });
  assert.deepEqual([r.status, r.body], [404, 'not found: nosuch']);
});

test('a submitted CSR is pending, its certificate 404s, a second submission is a 400 duplicate', async () => {
  const r = await call(port, 'PUT', '/puppet-ca/v1/certificate_request/pending.test', { ca, body: await csrFor('pending.test') });
  assert.equal(r.status, 200);
  const c = await call(port, 'GET', '/puppet-ca/v1/certificate/pending.test', { ca });
  assert.equal(c.status, 404);
  assert.equal(c.body.trim(), 'Could not find certificate pending.test');
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/certificate_request/pending.test', { ca })).status, 200);
  const again = await call(port, 'PUT', '/puppet-ca/v1/certificate_request/pending.test', { ca, body: await csrFor('pending.test') });
  assert.equal(again.status, 400);
  assert.equal(again.headers['x-ringmaster-error'], 'RM_CA_CSR_DUPLICATE');
  assert.match(again.body, /pending.test already has a requested certificate/);
});

test('bad CSRs get a coded 4xx and leave nothing in the CA directory', async () => {
  const before = (await readdir(join(stateDir, 'ca', 'requests'))).sort();
  const cases: [string, string | Buffer, number, string][] = [
    ['/puppet-ca/v1/certificate_request/garbage.test', 'not a csr', 400, 'RM_CA_CSR_MALFORMED'],
    ['/puppet-ca/v1/certificate_request/trunc.test', (await csrFor('trunc.test')).slice(0, 300), 400, 'RM_CA_CSR_MALFORMED'],
    ['/puppet-ca/v1/certificate_request/other.test', await csrFor('mismatch.test'), 400, 'RM_CA_CSR_SUBJECT_MISMATCH'],
    ['/puppet-ca/v1/certificate_request/Upper.test', await csrFor('Upper.test'), 400, 'RM_CA_CERTNAME_INVALID'],
    ['/puppet-ca/v1/certificate_request/a%2Fb', await csrFor('a/b'), 400, 'RM_PATH_INVALID'],
    ['/puppet-ca/v1/certificate_request/..', await csrFor('..'), 400, 'RM_PATH_INVALID'],
    ['/puppet-ca/v1/certificate_request/big.test', Buffer.alloc(70_000, 65), 413, 'RM_BODY_TOO_LARGE'],
    ['/puppet-ca/v1/certificate_request/cli.test', await csrFor('cli.test', { extensionRequests: [{ oid: '1.3.6.1.4.1.34380.1.3.39', value: 'true' }] }), 400, 'RM_CA_CSR_EXTENSION_FORBIDDEN'],
  ];
  for (const [path, body, status, code] of cases) {
    const r = await call(port, 'PUT', path, { ca, body });
    assert.equal(r.status, status, `${path}: ${r.body}`);
    assert.equal(r.headers['x-ringmaster-error'], code, path);
    assert.ok(r.body.length > 0);
  }
  assert.deepEqual((await readdir(join(stateDir, 'ca', 'requests'))).sort(), before);
});

test('autosign by glob signs on submission', async () => {
  const r = await call(port, 'PUT', '/puppet-ca/v1/certificate_request/web1.auto.test', { ca, body: await csrFor('web1.auto.test') });
  assert.equal(r.status, 200);
  const c = await call(port, 'GET', '/puppet-ca/v1/certificate/web1.auto.test', { ca });
  assert.equal(c.status, 200);
  const cert = parseCert(c.body);
  assert.equal(cert.commonName, 'web1.auto.test');
  assert.ok(cert.subjectAltNames.some((s) => s.value === 'web1.auto.test'));
});

test('administrative endpoints need pp_cli_auth: none → 403, an agent → 403, the operator → 200', async () => {
  const agent = await signedIdentity('plain-agent.test');
  const none = await call(port, 'GET', '/puppet-ca/v1/certificate_statuses/any', { ca });
  assert.deepEqual([none.status, none.headers['x-ringmaster-error']], [403, 'RM_AUTH_REQUIRED']);
  const denied = await call(port, 'GET', '/puppet-ca/v1/certificate_statuses/any', { ca, identity: agent });
  assert.deepEqual([denied.status, denied.headers['x-ringmaster-error']], [403, 'RM_AUTH_FORBIDDEN']);
  const ok = await call(port, 'GET', '/puppet-ca/v1/certificate_statuses/any', { ca, identity: operator });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'application/json');
  const list = JSON.parse(ok.body) as { name: string; state: string; fingerprints: Record<string, string>; serial_number?: number; not_after?: string }[];
  const entry = list.find((e) => e.name === 'plain-agent.test');
  assert.equal(entry?.state, 'signed');
  assert.match(entry?.not_after ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dUTC$/);
  assert.ok(typeof entry?.serial_number === 'number');
  assert.match(entry?.fingerprints.default ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const requested = JSON.parse((await call(port, 'GET', '/puppet-ca/v1/certificate_statuses/any?state=requested', { ca, identity: operator })).body) as { state: string }[];
  assert.ok(requested.every((e) => e.state === 'requested'));
  const exp = await call(port, 'GET', '/puppet-ca/v1/expirations', { ca, identity: agent });
  assert.equal(exp.status, 200);
  assert.ok(Object.keys((JSON.parse(exp.body) as { 'ca-certs': object })['ca-certs']).length === 1);
});

test('certificate_status PUT: 404 unknown, 409 conflicts, 400 bad bodies, 415 bad type', async () => {
  const put = (name: string, body: string, type = 'application/json') => call(port, 'PUT', `/puppet-ca/v1/certificate_status/${name}`, { ca, identity: operator, body, headers: { 'content-type': type } });
  assert.equal((await put('nobody.test', '{"desired_state":"signed"}')).status, 404);
  await call(port, 'PUT', '/puppet-ca/v1/certificate_request/conflict.test', { ca, body: await csrFor('conflict.test') });
  assert.equal((await put('conflict.test', '{"desired_state":"revoked"}')).status, 409);
  assert.equal((await put('conflict.test', 'nope')).status, 400);
  assert.equal((await put('conflict.test', '{"desired_state":"lost"}')).status, 400);
  assert.equal((await put('conflict.test', '{"desired_state":"signed","cert_ttl":"x"}')).status, 400);
  assert.equal((await put('conflict.test', '{"desired_state":"signed"}', 'application/xml')).status, 415);
  assert.equal((await put('conflict.test', '{"desired_state":"signed","cert_ttl":3600}')).status, 204);
  const cert = parseCert((await call(port, 'GET', '/puppet-ca/v1/certificate/conflict.test', { ca })).body);
  assert.ok(Math.abs(cert.notAfter.getTime() - Date.now() - 3600_000) < 120_000);
  assert.equal((await put('conflict.test', '{"desired_state":"signed"}')).status, 409);
});

test('bulk sign and clean', async () => {
  await call(port, 'PUT', '/puppet-ca/v1/certificate_request/bulk1.test', { ca, body: await csrFor('bulk1.test') });
  const r = await call(port, 'POST', '/puppet-ca/v1/sign', { ca, identity: operator, body: JSON.stringify({ certnames: ['bulk1.test', 'nocsr.test'] }), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { signed: ['bulk1.test'], 'no-csr': ['nocsr.test'], 'signing-errors': [] });
  const bad = await call(port, 'POST', '/puppet-ca/v1/sign', { ca, identity: operator, body: '{"certnames":"x"}' });
  assert.equal(bad.status, 422);
  const clean = await call(port, 'PUT', '/puppet-ca/v1/clean', { ca, identity: operator, body: JSON.stringify({ certnames: ['bulk1.test', 'ghost.test'] }) });
  assert.equal(clean.status, 200);
  assert.equal(clean.body, 'The following certs do not exist and cannot be revoked: ["ghost.test"]');
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/certificate/bulk1.test', { ca })).status, 404);
});

test('revocation is enforced at once, on new and on kept-alive connections, and appears in the CRL', async () => {
  const agent = await signedIdentity('revoked-agent.test');
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  const first = await call(port, 'GET', '/puppet-ca/v1/expirations', { ca, identity: agent, agent: keepAlive });
  assert.equal(first.status, 200);
  const serial = parseCert(agent.cert).serial;
  const r = await call(port, 'PUT', '/puppet-ca/v1/certificate_status/revoked-agent.test', { ca, identity: operator, body: '{"desired_state":"revoked"}' });
  assert.equal(r.status, 204);
  const reused = await call(port, 'GET', '/puppet-ca/v1/expirations', { ca, identity: agent, agent: keepAlive });
  assert.deepEqual([reused.status, reused.headers['x-ringmaster-error']], [403, 'RM_TLS_PEER_REJECTED']);
  keepAlive.destroy();
  const fresh = await call(port, 'GET', '/puppet-ca/v1/certificate/ca', { ca, identity: agent });
  assert.deepEqual([fresh.status, fresh.headers['x-ringmaster-error']], [403, 'RM_TLS_PEER_REJECTED']);
  const crl = parseCrl(await readFile(join(stateDir, 'ca', 'ca_crl.pem'), 'utf8'));
  assert.ok(crl.revoked.some((e) => e.serial === serial));
  assert.ok((crl.number ?? 0n) >= 1n);
  const status = JSON.parse((await call(port, 'GET', '/puppet-ca/v1/certificate_status/revoked-agent.test', { ca, identity: operator })).body) as { state: string };
  assert.equal(status.state, 'revoked');
});

test('unknown paths and methods', async () => {
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/nosuch', { ca })).status, 404);
  assert.equal((await call(port, 'GET', '/status/v1/services', { ca })).status, 404);
  // /puppet/ goes to the pool `compilers`, which this config does not have: 503 and a Retry-After.
  const noPool = await call(port, 'GET', '/puppet/v3/catalog/x', { ca });
  assert.deepEqual([noPool.status, noPool.headers['x-ringmaster-error'], noPool.headers['retry-after']], [503, 'RM_POOL_UNAVAILABLE', '15']);
  assert.equal((await call(port, 'POST', '/puppet-ca/v1/certificate/ca', { ca })).status, 405);
});

test('a client certificate from another CA is refused on every endpoint', async () => {
  const { CertificateAuthority } = await import('../../src/ca/authority.ts');
  const otherState = await mkdtemp(join(tmpdir(), 'rm-other-ca-'));
  const other = await CertificateAuthority.create(
    { ...resolveConfig({ ca: { keyLength: 2048 } }, { stateDir: otherState }).ca, stateDir: otherState, serverCertname: 'other.test' },
    { clock: systemClock, log: silentLog },
  );
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const foreign = await other.issueForKey({ certname: 'intruder.test', publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: true, replace: false });
  for (const path of ['/puppet-ca/v1/certificate/ca', '/puppet-ca/v1/certificate_statuses/any']) {
    const r = await call(port, 'GET', path, { ca, identity: { cert: foreign.pem, key: k.privateKeyPem } });
    assert.deepEqual([r.status, r.headers['x-ringmaster-error']], [403, 'RM_TLS_PEER_REJECTED'], path);
  }
});

test('certificate_renewal is 404 while auto-renewal is off', async () => {
  const agent = await signedIdentity('renew-off.test');
  const r = await call(port, 'POST', '/puppet-ca/v1/certificate_renewal', { ca, identity: agent, body: '' });
  assert.equal(r.status, 404);
  assert.equal(r.headers['x-ringmaster-error'], 'RM_CA_RENEWAL_DISABLED');
  const anonymous = await call(port, 'POST', '/puppet-ca/v1/certificate_renewal', { ca, body: '' });
  assert.equal(anonymous.status, 403);
});
