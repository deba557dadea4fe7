import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair } from '../../src/ca/x509.ts';
import { TlsTap } from '../../src/listener/tls-tap.ts';
import type { Listener } from '../../src/listener/listener.ts';
import type { TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { RawConnection, header } from '../helpers/raw-tls.ts';

// Idle agent connections parked out of OpenSSL (listeners[].parkIdleAfter, parked.ts): after
// parking, ringmaster seals and opens the TLS 1.3 records itself. Real OpenSSL clients (node:tls
// and `openssl s_client`) must not notice: identity, bodies larger than a record, KeyUpdate both
// ways, close_notify. A record that does not authenticate ends the connection with nothing
// proxied, a TLS 1.2 connection stays with OpenSSL, and revocation still reaches the connection.

const parkMs = 100;
let app: App;
let listener: Listener;
let port: number;
let ca: string;
let stateDir: string;
let a: Backend;
const ids = new Map<string, TlsIdentity>();
const open: RawConnection[] = [];

before(async () => {
  a = await startBackend('a');
  stateDir = await mkdtemp(join(tmpdir(), 'rm-parking-'));
  const noHealth = { active: { enabled: false }, passive: { enabled: false } };
  app = await startApp(resolveConfig({
    server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
    listeners: [{ address: '127.0.0.1', port: 0, parkIdleAfter: `${parkMs}ms`, keepAliveTimeout: '60s' }],
    ca: { keyLength: 2048 },
    admin: { enabled: false },
    reports: { enabled: false },
    pools: { compilers: { members: [{ name: 'a', url: a.url }], healthCheck: noHealth } },
  }, { stateDir }), { clock: systemClock, log: silentLog });
  listener = app.listeners[0]!;
  port = listener.address().port;
  ca = app.ca.caBundlePem;
});

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
  a.handle(undefined);
  // Each test starts with no parked connection left from the one before.
  for (let i = 0; i < 100 && listener.parked !== 0; i++) await delay(20);
});

after(async () => {
  await app.close(1000);
  await a.close();
  await rm(stateDir, { recursive: true, force: true });
});

async function identity(certname: string): Promise<TlsIdentity> {
  const known = ids.get(certname);
  if (known) return known;
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname, publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  const id = { cert: cert.pem, key: k.privateKeyPem };
  ids.set(certname, id);
  return id;
}

async function connectAs(certname: string, o: Partial<Parameters<typeof RawConnection.open>[0]> = {}): Promise<RawConnection> {
  const id = await identity(certname);
  const c = await RawConnection.open({ port, ca, cert: id.cert, key: id.key, ...o });
  open.push(c);
  return c;
}

/** Waits until the listener holds `n` parked connections. */
async function parked(n: number): Promise<void> {
  for (let i = 0; i < 100 && listener.parked !== n; i++) await delay(20);
  assert.equal(listener.parked, n, 'parked connections');
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

test('a parked connection serves its agent with the same identity, bodies larger than a record both ways', async () => {
  const c = await connectAs('agent1.test');
  await c.write(get('/puppet/v3/node/agent1.test?environment=production'));
  assert.equal((await c.response())?.status, 200);
  await parked(1);
  const facts = randomBytes(100_000).toString('base64');
  const catalog = randomBytes(200_000);
  a.handle((_req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-facts-bytes': String(body.length) }).end(catalog);
  });
  const before = a.seen.length;
  await c.write(`POST /puppet/v3/catalog/agent1.test?environment=production HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${facts.length}\r\n\r\n${facts}`);
  const r = await c.response({ method: 'POST' });
  assert.equal(r?.status, 200);
  assert.equal(header(r, 'x-facts-bytes'), String(facts.length));
  assert.ok(r.body.equals(catalog), 'the 200 KB answer arrives intact over ringmaster\'s own records');
  const seen = a.seen.slice(before);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.body.toString(), facts);
  assert.equal(seen[0]!.headers['x-client-verify'], 'SUCCESS');
  assert.equal(seen[0]!.headers['x-client-dn'], 'CN=agent1.test');
  assert.ok(decodeURIComponent(String(seen[0]!.headers['x-client-cert'])).includes(ids.get('agent1.test')!.cert.split('\n')[1]!), 'X-Client-Cert is the agent\'s own certificate');
  assert.equal(seen[0]!.headers['x-forwarded-for'], '127.0.0.1');
  c.destroy();
  await parked(0);
});

test('KeyUpdate from openssl s_client on a parked connection, with and without a KeyUpdate asked back', async () => {
  const id = await identity('agent2.test');
  const dir = await mkdtemp(join(tmpdir(), 'rm-parking-ossl-'));
  await writeFile(join(dir, 'cert.pem'), id.cert);
  await writeFile(join(dir, 'key.pem'), id.key);
  await writeFile(join(dir, 'ca.pem'), ca);
  const client = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_3', '-crlf', '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem'), '-CAfile', join(dir, 'ca.pem')], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  client.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
  client.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const answers = () => out.match(/HTTP\/1\.1 200/g)?.length ?? 0;
  const until = async (what: string, check: () => boolean) => {
    for (let i = 0; i < 250 && !check(); i++) await delay(20);
    assert.ok(check(), `${what}; s_client printed:\n${out.slice(-1500)}`);
  };
  try {
        client.stdin.write('GET /puppet/v3/node/agent2.test HTTP/1.1\nHost: x\n\n');
    await until('the first answer', () => answers() === 1);
    await until('the connection parked', () => listener.parked === 1);
    client.stdin.write('K\n');
    await delay(100);
    client.stdin.write('GET /puppet/v3/node/agent2.test HTTP/1.1\nHost: x\n\n');
    await until('an answer after KeyUpdate with update_requested', () => answers() === 2);
    client.stdin.write('k\n');
    await delay(100);
    client.stdin.write('GET /puppet/v3/node/agent2.test HTTP/1.1\nHost: x\n\n');
    await until('an answer after a second KeyUpdate', () => answers() === 3);
    assert.match(out, /KEYUPDATE/);
    assert.equal(a.seen.filter((s) => s.headers['x-client-dn'] === 'CN=agent2.test').length, 3);
  } finally {
    client.kill();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a TLS 1.2 connection stays with OpenSSL and keeps working', async () => {
    const c = await connectAs('agent3.test', { maxVersion: 'TLSv1.2' });
  await c.write(get('/puppet/v3/node/agent3.test'));
  assert.equal((await c.response())?.status, 200);
  await delay(parkMs * 4);
  assert.equal(listener.parked, 0, 'not parked');
  await c.write(get('/puppet/v3/node/agent3.test'));
  assert.equal((await c.response())?.status, 200);
});

test('a record that does not authenticate ends a parked connection; nothing reaches the backend', async () => {
    const raw = tcpConnect(port, '127.0.0.1');
  await new Promise((resolve) => raw.once('connect', resolve));
  // The client's TLS runs over a tap, so that bytes of our own can be put on the wire after it.
  const tap = new TlsTap(raw, () => undefined);
  const c = await connectAs('agent4.test', { socket: tap });
  await c.write(get('/puppet/v3/node/agent4.test'));
  assert.equal((await c.response())?.status, 200);
  await parked(1);
  const seen = a.seen.length;
  // A well-formed application_data record whose tag cannot verify.
  raw.write(Buffer.concat([Buffer.from([23, 3, 3, 0, 40]), randomBytes(40)]));
  assert.ok(await c.closedWithin(3000), 'the connection is closed');
  await parked(0);
  assert.equal(a.seen.length, seen);
});

test('a record of the wrong outer type ends a parked connection', async () => {
    const raw = tcpConnect(port, '127.0.0.1');
  await new Promise((resolve) => raw.once('connect', resolve));
  const c = await connectAs('agent4.test', { socket: new TlsTap(raw, () => undefined) });
  await c.write(get('/puppet/v3/node/agent4.test'));
  assert.equal((await c.response())?.status, 200);
  await parked(1);
  // A change_cipher_spec after the handshake (RFC 8446 §5: unexpected_message).
  raw.write(Buffer.from([20, 3, 3, 0, 1, 1]));
  assert.ok(await c.closedWithin(3000));
  await parked(0);
});

test('a revocation reaches a parked connection at once', async () => {
  const c = await connectAs('revokeme.test');
  await c.write(get('/puppet/v3/node/revokeme.test'));
  assert.equal((await c.response())?.status, 200);
  await parked(1);
  await app.ca.revoke(['revokeme.test']);
  await c.write(get('/puppet/v3/node/revokeme.test'));
  const r = await c.response();
  assert.equal(r?.status, 403);
  assert.equal(header(r, 'x-ringmaster-error'), 'RM_TLS_PEER_REJECTED');
});

test('close_notify from the agent closes a parked connection cleanly', async () => {
    const c = await connectAs('agent5.test');
  await c.write(get('/puppet/v3/node/agent5.test'));
  assert.equal((await c.response())?.status, 200);
  await parked(1);
  c.end();
  assert.ok(await c.closedWithin(3000));
  await parked(0);
});
