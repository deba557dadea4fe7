import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { createCsr, generateKeyPair } from '../../src/ca/x509.ts';
import { call, type Reply, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, deadPort, type Backend } from '../helpers/backend.ts';
import { pollUntil } from '../helpers/puppet.ts';
import { RawConnection } from '../helpers/raw-tls.ts';
import { parsePrometheusText, sampleSum, samples, type Exposition } from '../helpers/prometheus.ts';

// /metrics on the admin API and the access log, through real listeners and sockets against
// scripted compilers: the counters move by exactly the requests sent, the state gauges follow
// the pools and the CA, the scrape needs the admin API's credentials, and the access log has
// one line per request with its facts and none of the secrets a request carried.

let app: App;
let port: number;
let adminPort: number;
let ca: string;
let stateDir: string;
let accessLogFile: string;
let a: Backend;
let b: Backend;
let dead: number;
let agent: TlsIdentity;
let operator: TlsIdentity;
const token = randomBytes(16).toString('hex');
const secrets = { query: `q-${randomBytes(8).toString('hex')}`, bearer: `b-${randomBytes(8).toString('hex')}`, clientCert: `c-${randomBytes(8).toString('hex')}`, cookie: `k-${randomBytes(8).toString('hex')}` };

async function identity(name: string, o: { cliAuth?: boolean; ttlMs?: number } = {}): Promise<TlsIdentity> {
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname: name, publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: o.cliAuth ?? false, replace: false, ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}) });
  return { cert: cert.pem, key: k.privateKeyPem };
}

before(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  dead = await deadPort();
  stateDir = await mkdtemp(join(tmpdir(), 'rm-metrics-'));
  accessLogFile = join(stateDir, 'log', 'access.log');
  await writeFile(join(stateDir, 'admin-token'), `${token}\n`);
  const noActive = { active: { enabled: false } };
  const config = resolveConfig(
    {
      server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
      listeners: [{ address: '127.0.0.1', port: 0 }],
      ca: { keyLength: 2048 },
      pools: {
        compilers: { members: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: noActive },
        half: { members: [{ name: 'dead', url: `http://127.0.0.1:${dead}` }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: noActive },
      },
      routes: [{ name: 'half', match: { path: '/half/' }, to: { pool: 'half' } }],
      admin: { address: '127.0.0.1', port: 0, tokenFile: join(stateDir, 'admin-token') },
      accessLog: { enabled: true, destination: accessLogFile, format: 'json' },
    },
    { stateDir },
  );
  app = await startApp(config, { clock: systemClock, log: silentLog });
  port = app.listeners[0]?.address().port ?? 0;
  adminPort = app.adminAddress?.port ?? 0;
  ca = app.ca.caBundlePem;
  [agent, operator] = await Promise.all([identity('agent1.test'), identity('operator.test', { cliAuth: true }), identity('short-lived.test', { ttlMs: 10 * 86_400_000 })]);
  // A request waiting to be signed, before the first scrape reads the CSR directory.
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const csr = await call(port, 'PUT', '/puppet-ca/v1/certificate_request/pending.test', { ca, body: await createCsr({ commonName: 'pending.test', keyPair: k }), headers: { 'content-type': 'text/plain' } });
  assert.equal(csr.status, 200, csr.body);
});

after(async () => {
  await app.close(1000);
  await Promise.all([a.close(), b.close()]);
  await rm(stateDir, { recursive: true, force: true });
});

function scrapeReply(o: { identity?: TlsIdentity; headers?: Record<string, string>; method?: string } = { identity: operator }): Promise<Reply> {
  return call(adminPort, o.method ?? 'GET', '/metrics', { ca, ...(o.identity ? { identity: o.identity } : {}), headers: o.headers ?? {} });
}

async function scrape(): Promise<Exposition> {
  const r = await scrapeReply();
  assert.equal(r.status, 200, r.body);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(r.body);
}

const agentGet = (path: string, headers: Record<string, string> = {}) => call(port, 'GET', path, { ca, identity: agent, headers });

test('request counters, latency histograms and errors move by exactly the requests sent', async () => {
  const before = await scrape();
  const nodes = await Promise.all([1, 2, 3].map(() => agentGet('/puppet/v3/node/agent1.test?environment=production')));
  for (const r of nodes) assert.equal(r.status, 200);
  const catalog = await call(port, 'POST', '/puppet/v3/catalog/agent1.test?environment=production', { ca, identity: agent, body: 'facts=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(catalog.status, 200);
  assert.equal((await call(port, 'GET', '/puppet-ca/v1/certificate/ca', { ca })).status, 200);
  assert.equal((await call(port, 'GET', '/status/v1/simple', { ca })).status, 200);
  assert.equal((await agentGet('/nowhere/at/all')).headers['x-ringmaster-error'], 'RM_NOT_FOUND');
  for (let i = 0; i < 2; i++) assert.equal((await agentGet('/half/x')).status, 200);
  const after = await scrape();

  const delta = (name: string, labels: Record<string, string> = {}) => sampleSum(after, name, labels) - sampleSum(before, name, labels);
  assert.equal(delta('ringmaster_http_requests_total', { endpoint: 'node', pool: 'compilers', status: '200' }), 3);
  assert.equal(delta('ringmaster_http_requests_total', { endpoint: 'catalog', pool: 'compilers', status: '200' }), 1);
  assert.equal(delta('ringmaster_http_requests_total', { endpoint: 'certificate', pool: '', member: '', status: '200' }), 1);
  assert.equal(delta('ringmaster_http_requests_total', { endpoint: 'status', status: '200' }), 1);
  assert.equal(delta('ringmaster_http_requests_total', { route: '', status: '404' }), 1);
  assert.equal(delta('ringmaster_http_requests_total'), 9);
  assert.equal(delta('ringmaster_http_errors_total', { code: 'RM_NOT_FOUND' }), 1);
  assert.equal(delta('ringmaster_http_request_duration_seconds_count', { endpoint: 'node', pool: 'compilers' }), 3);
  assert.equal(delta('ringmaster_upstream_response_seconds_count', { endpoint: 'node', pool: 'compilers' }), 3);
  assert.equal(delta('ringmaster_compile_queue_wait_seconds_count', { pool: 'compilers' }), 1, 'the catalog took a compile slot');
  assert.equal(delta('ringmaster_upstream_retries_total', { pool: 'half' }), 1, 'one of the two went to the dead member first');
  assert.equal(delta('ringmaster_http_requests_total', { pool: 'half', member: 'b', status: '200' }), 2);
  const served = samples(after, 'ringmaster_http_requests_total', { endpoint: 'node', pool: 'compilers' }).map((s) => s.labels.member).sort();
  assert.deepEqual([...new Set(served)], ['a', 'b'], 'by member');
  assert.ok(delta('ringmaster_http_response_bytes_total', { endpoint: 'node' }) >= nodes.reduce((n, r) => n + Buffer.byteLength(r.body), 0));
  assert.equal(sampleSum(after, 'ringmaster_http_requests_in_flight'), 0);
  assert.ok(delta('ringmaster_tls_handshakes_total', { client_cert: 'verified' }) >= 7);
  assert.ok(delta('ringmaster_tls_handshakes_total', { client_cert: 'none' }) >= 2);
});

test('state gauges: members, queue, CA and reports, read when scraped', async () => {
  const e = await scrape();
  for (const member of ['a', 'b']) {
    assert.equal(sampleSum(e, 'ringmaster_pool_member_health', { pool: 'compilers', member, state: 'unknown' }), 1, 'no active checks: unknown');
    assert.equal(sampleSum(e, 'ringmaster_pool_member_eligible', { pool: 'compilers', member }), 1);
    assert.equal(sampleSum(e, 'ringmaster_pool_member_in_flight', { pool: 'compilers', member }), 0);
  }
  assert.equal(sampleSum(e, 'ringmaster_compile_queue_depth', { pool: 'compilers' }), 0);
  assert.equal(sampleSum(e, 'ringmaster_pool_members_eligible', { pool: 'compilers' }), 2);
  assert.equal(sampleSum(e, 'ringmaster_ca_csrs_pending'), 1);
  assert.ok(sampleSum(e, 'ringmaster_ca_certificates_signed_total') >= 4, 'its own, agent1, operator, short-lived');
  assert.equal(sampleSum(e, 'ringmaster_ca_certificates_expiring_soon'), 1, 'short-lived.test');
  const crlAge = sampleSum(e, 'ringmaster_ca_crl_age_seconds');
  assert.ok(crlAge >= 0 && crlAge < 600, `CRL age ${crlAge}`);
  assert.ok(sampleSum(e, 'ringmaster_ca_crl_expiry_seconds') > 86_400);
  assert.ok(sampleSum(e, 'ringmaster_ca_certificate_expiry_seconds') > 365 * 86_400);
  assert.deepEqual(samples(e, 'ringmaster_reports_total').map((s) => s.labels.outcome).sort(), ['captured', 'dropped', 'failed', 'invalid']);
  assert.equal(samples(e, 'ringmaster_reports_stored').length, 1);
  assert.deepEqual(samples(e, 'ringmaster_dns_queries_total'), [], 'the DNS responder is not running');
  assert.ok(sampleSum(e, 'ringmaster_process_resident_memory_bytes') > 0, 'process metrics');
});

test('/metrics takes the admin API\'s credentials: a client certificate it admits or the bearer token', async () => {
  assert.equal((await scrapeReply({ headers: { authorization: `Bearer ${token}` } })).status, 200);
  const none = await scrapeReply({});
  assert.equal(none.status, 401);
  assert.equal(none.headers['x-ringmaster-error'], 'RM_ADMIN_AUTH_REQUIRED');
  assert.equal((await scrapeReply({ headers: { authorization: 'Bearer wrong' } })).status, 401);
  const agentScrape = await scrapeReply({ identity: agent });
  assert.equal(agentScrape.status, 403);
  assert.equal(agentScrape.headers['x-ringmaster-error'], 'RM_AUTH_FORBIDDEN');
  assert.equal((await scrapeReply({ identity: operator, method: 'POST' })).status, 405);
});

test('requests refused before routing are counted by code; a routed request is not', async () => {
  const refused = async (code: string) => sampleSum(await scrape(), 'ringmaster_http_requests_refused_total', { code });
  const [malformed, version] = [await refused('RM_HTTP_MALFORMED'), await refused('RM_HTTP_VERSION')];
  const send = async (bytes: string) => {
    const c = await RawConnection.open({ port, ca, cert: agent.cert, key: agent.key });
    try {
      await c.write(bytes);
      return (await c.response())?.status;
    } finally {
      c.destroy();
    }
  };
  assert.equal(await send('POST /puppet/v3/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'), 400);
  assert.equal(await send('GET /puppet/v3/x HTTP/2.0\r\nHost: x\r\n\r\n'), 505);
  assert.equal(await send('GET /puppet/v3/node/agent1.test HTTP/1.1\r\nHost: x\r\n\r\n'), 200);
  assert.equal(await refused('RM_HTTP_MALFORMED'), malformed + 1);
  assert.equal(await refused('RM_HTTP_VERSION'), version + 1);
  assert.equal(sampleSum(await scrape(), 'ringmaster_http_requests_refused_total'), malformed + version + 2, 'the routed request is not counted as refused');
});

test('failed TLS handshakes are counted by reason, refused client certificates by why', async () => {
  const failures = async () => sampleSum(await scrape(), 'ringmaster_tls_handshake_failures_total');
  const start = await failures();
  const plain = connect(port, '127.0.0.1', () => plain.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  plain.on('error', () => undefined);
  await pollUntil('the failed handshake counted', async () => ((await failures()) > start ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
  for (const s of samples(await scrape(), 'ringmaster_tls_handshake_failures_total')) assert.match(s.labels.reason ?? '', /^[a-z0-9_]+$/);

  const revoked = await identity('revoked.test');
  await app.ca.revoke(['revoked.test']);
  const r = await call(port, 'GET', '/puppet/v3/node/revoked.test', { ca, identity: revoked });
  assert.equal(r.headers['x-ringmaster-error'], 'RM_TLS_PEER_REJECTED');
  assert.equal(sampleSum(await scrape(), 'ringmaster_tls_client_cert_rejected_total', { reason: 'cert_revoked' }), 1);
});

type Line = Record<string, unknown>;
async function accessLines(atLeast: number): Promise<Line[]> {
  return pollUntil(`${atLeast} access log lines`, async () => {
    const text = await readFile(accessLogFile, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
    return lines.length >= atLeast ? lines : undefined;
  }, { timeoutMs: 5000, intervalMs: 20 });
}

test('the access log has one JSON line per request with its facts, and none of the secrets it carried', async () => {
  const already = (await accessLines(1)).length;
  const r = await agentGet(`/puppet/v3/file_content/modules/x/y?environment=production&token=${secrets.query}`, {
    authorization: `Bearer ${secrets.bearer}`, 'x-client-cert': secrets.clientCert, cookie: `session=${secrets.cookie}`,
  });
  assert.equal(r.status, 200);
  const gone = await agentGet('/nowhere');
  assert.equal(gone.status, 404);
  const lines = (await accessLines(already + 2)).slice(already);
  assert.equal(lines.length, 2, 'one line per request');
  const [file, missing] = lines as [Line, Line];
  assert.equal(file.type, 'access');
  assert.equal(file.certname, 'agent1.test');
  assert.equal(file.client, '127.0.0.1');
  assert.equal(file.method, 'GET');
  assert.equal(file.path, '/puppet/v3/file_content/modules/x/y');
  assert.equal(file.environment, 'production');
  assert.equal(file.endpoint, 'file_content');
  assert.equal(file.route, 'puppet');
  assert.equal(file.pool, 'compilers');
  assert.ok(file.member === 'a' || file.member === 'b');
  assert.equal(file.status, 200);
  assert.equal(file.bytes, Buffer.byteLength(r.body));
  assert.equal(typeof file.upstreamMs, 'number');
  assert.equal(typeof file.durationMs, 'number');
  assert.equal(file.queueMs, null);
  assert.equal(file.retries, 0);
  assert.equal(file.code, null);
  assert.equal(file.completed, true);
  assert.ok(!Number.isNaN(Date.parse(String(file.time))));
  assert.equal(missing.bytes, Buffer.byteLength(gone.body), 'an answer of the listener counts its body too');
  assert.deepEqual([missing.status, missing.code, missing.route, missing.pool], [404, 'RM_NOT_FOUND', null, null]);

  const all = await readFile(accessLogFile, 'utf8');
  for (const [what, secret] of Object.entries(secrets)) assert.ok(!all.includes(secret), `the ${what} secret is not in the access log`);
  assert.ok(!all.includes('token='), 'no query string');
  assert.ok(!/BEGIN CERTIFICATE|authorization|cookie/i.test(all));
  const half = (await accessLines(1)).filter((l) => l.route === 'half');
  assert.equal(half.reduce((n, l) => n + Number(l.retries), 0), 1);
  assert.ok(half.every((l) => l.member === 'b'));
});
