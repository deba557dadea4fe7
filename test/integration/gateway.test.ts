import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'node:https';
import { createHash } from 'node:crypto';
import { resolveConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair } from '../../src/ca/x509.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, deadPort, type Backend } from '../helpers/backend.ts';
import { pollUntil } from '../helpers/puppet.ts';

// The gateway through a real listener and real sockets, against scripted backends: identity
// headers, retries, timeouts, limits, streaming, reload and drain.

let app: App;
let port: number;
let ca: string;
let stateDir: string;
let a: Backend;
let b: Backend;
let slow: Backend;
let dead: number;
let agent1: TlsIdentity;
let agent2: TlsIdentity;

function gatewayConfig(over: Partial<ConfigInput> = {}): ConfigInput {
  const noActive = { active: { enabled: false } };
  return {
    server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
    listeners: [{ address: '127.0.0.1', port: 0 }],
    ca: { keyLength: 2048 },
    pools: {
      compilers: { members: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: noActive },
      half: { members: [{ name: 'dead', url: `http://127.0.0.1:${dead}` }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: noActive },
      deadonly: { members: [{ name: 'dead', url: `http://127.0.0.1:${dead}` }], healthCheck: noActive, retryAfter: '7s' },
      drained: { members: [{ name: 'a', url: a.url, drain: true }], healthCheck: noActive },
      slow: { members: [{ name: 'slow', url: slow.url }], healthCheck: noActive, retry: { bufferLimit: 1024 } },
      hang: { members: [{ name: 'slow', url: slow.url }], healthCheck: noActive },
      probed: {
        members: [{ name: 'dead', url: `http://127.0.0.1:${dead}` }],
        healthCheck: { active: { interval: '100ms', timeout: '1s', rise: 1, fall: 1 }, passive: { enabled: false } },
      },
    },
    routes: [
      { name: 'half', match: { path: '/half/' }, to: { pool: 'half' } },
      { name: 'deadonly', match: { path: '/dead/' }, to: { pool: 'deadonly' } },
      { name: 'drained', match: { path: '/drained/' }, to: { pool: 'drained' } },
      { name: 'hang', match: { path: '/hang/' }, to: { pool: 'hang' }, timeouts: { responseHead: '400ms' } },
      { name: 'slow', match: { path: '/slow/' }, to: { pool: 'slow' } },
      { name: 'stream', match: { path: '/stream/' }, to: { pool: 'slow' }, limits: { maxBodyBytes: '64MiB' } },
      { name: 'small', match: { path: '/small/' }, to: { pool: 'compilers' }, limits: { maxBodyBytes: 100, maxHeaderBytes: 600 } },
      { name: 'probed', match: { path: '/probed/' }, to: { pool: 'probed' } },
    ],
    ...over,
  };
}

async function identity(name: string): Promise<TlsIdentity> {
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname: name, publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  return { cert: cert.pem, key: k.privateKeyPem };
}

before(async () => {
  [a, b, slow] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('slow')]);
  dead = await deadPort();
  stateDir = await mkdtemp(join(tmpdir(), 'rm-gateway-'));
  app = await startApp(resolveConfig(gatewayConfig(), { stateDir }), { clock: systemClock, log: silentLog });
  port = app.listeners[0]?.address().port ?? 0;
  ca = app.ca.caBundlePem;
  [agent1, agent2] = await Promise.all([identity('agent1.test'), identity('agent2.test')]);
});

after(async () => {
  await app.close(1000);
  await Promise.all([a.close(), b.close(), slow.close()]);
});

const get = (path: string, id?: TlsIdentity, headers: Record<string, string> = {}) => call(port, 'GET', path, { ca, ...(id ? { identity: id } : {}), headers });

test('the member sees the verified identity and never the client\'s own X-Client headers', async () => {
  const before = a.seen.length + b.seen.length;
  const r = await get('/puppet/v3/node/agent1.test?environment=production', agent1, {
    'X-Client-Verify': 'SUCCESS', 'X-Client-DN': 'CN=agent2.test', 'X-Client-Cert': encodeURIComponent(agent2.cert), 'X-Puppet-Version': '7.23.0',
  });
  assert.equal(r.status, 200, r.body);
  const seen = [...a.seen, ...b.seen].slice(before);
  assert.equal(seen.length, 1);
  const h = seen[0]!.headers;
  assert.equal(h['x-client-verify'], 'SUCCESS');
  assert.equal(h['x-client-dn'], 'CN=agent1.test');
  assert.equal(decodeURIComponent(String(h['x-client-cert'])).trim(), agent1.cert.trim());
  assert.equal(h['x-puppet-version'], '7.23.0');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen[0]!.url, '/puppet/v3/node/agent1.test?environment=production', 'path and query forwarded as received');
  // The member's response head is relayed less its hop-by-hop fields, with the member's one Date.
  const names = r.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.equal(names.filter((n) => n === 'date').length, 1, `one Date header: ${r.rawHeaders.join(' | ')}`);
  assert.equal(r.headers['x-backend'], (JSON.parse(r.body) as { backend: string }).backend);
  assert.ok(!names.includes('keep-alive'), 'the member\'s Keep-Alive is its own connection\'s');

  const anon = await get('/puppet/v3/node/x', undefined, { 'x-client-verify': 'SUCCESS', 'x-client-dn': 'CN=agent2.test', 'x-client-cert': 'forged' });
  assert.equal(anon.status, 200);
  const last = [...a.seen, ...b.seen].at(-1)!;
  assert.equal(last.headers['x-client-verify'], 'NONE');
  assert.equal(last.headers['x-client-dn'], undefined);
  assert.equal(last.headers['x-client-cert'], undefined);
});

test('ambiguous paths are refused before routing and never reach a member', async () => {
  const before = a.seen.length + b.seen.length;
  for (const p of ['/puppet/v3/catalog/x%2F..%2Fy', '/puppet/v3/../puppet-ca/v1/certificate/ca', '/puppet//v3/node/x', '/puppet/v3/./node/x']) {
    const r = await get(p, agent1);
    assert.equal(r.status, 400, p);
    assert.equal(r.headers['x-ringmaster-error'], 'RM_PATH_INVALID', p);
  }
  assert.equal(a.seen.length + b.seen.length, before);
});

test('a refused member is retried on another, and passive ejection keeps it out afterwards', async () => {
  const before = b.seen.length;
  for (let i = 0; i < 6; i++) {
    const r = await get(`/half/${i}`, agent1);
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { backend: string }).backend, 'b');
  }
  assert.equal(b.seen.length - before, 6);
  const snap = JSON.stringify(app.gateway.pools().get('half')?.snapshot());
  assert.match(snap, /eject/i, snap);
  // A report PUT whose body was kept is re-sent when the first member could not be connected to.
  const put = await call(port, 'PUT', '/half/report', { ca, identity: agent1, body: '{"status":"changed"}', headers: { 'content-type': 'application/json' } });
  assert.equal(put.status, 200);
});

test('nothing eligible: 503 with Retry-After, never a reset', async () => {
  const drained = await get('/drained/x', agent1);
  assert.equal(drained.status, 503);
  assert.equal(drained.headers['x-ringmaster-error'], 'RM_POOL_UNAVAILABLE');
  assert.equal(drained.headers['retry-after'], '15');
  const d = await get('/dead/x', agent1);
  assert.equal(d.status, 503);
  assert.match(String(d.headers['x-ringmaster-error']), /RM_UPSTREAM_UNAVAILABLE|RM_POOL_UNAVAILABLE/);
  assert.equal(d.headers['retry-after'], '7');
});

test('a member that sends no response head within the route timeout: 504, and not retried', async () => {
  slow.handle(() => undefined); // never answers
  const before = slow.seen.length;
  const r = await call(port, 'POST', '/hang/puppet/v3/catalog/agent1.test', { ca, identity: agent1, body: 'facts=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 504);
  assert.equal(r.headers['x-ringmaster-error'], 'RM_UPSTREAM_TIMEOUT');
  assert.equal(slow.seen.length - before, 1);
  slow.handle(undefined);
  const ejected = app.gateway.pools().get('hang')?.snapshot();
  assert.match(JSON.stringify(ejected), /eject/i, 'a member that timed out is ejected for its cool-off');
});

test('limits per route: body (413) and request head (431)', async () => {
  const big = await call(port, 'PUT', '/small/x', { ca, identity: agent1, body: 'x'.repeat(101) });
  assert.equal(big.status, 413);
  assert.equal(big.headers['x-ringmaster-error'], 'RM_BODY_TOO_LARGE');
  const head = await get('/small/x', agent1, { 'x-filler': 'y'.repeat(700) });
  assert.equal(head.status, 431);
  assert.equal(head.headers['x-ringmaster-error'], 'RM_HEADERS_TOO_LARGE');
  const ok = await get('/small/x', agent1);
  assert.equal(ok.status, 200);
});

test('a member that breaks off its response: the agent connection is cut, the request not retried', async () => {
  slow.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100000' });
    res.write(Buffer.alloc(1000));
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const before = slow.seen.length;
  await assert.rejects(get('/slow/puppet/v3/file_content/x', agent1));
  assert.equal(slow.seen.length - before, 1);
  slow.handle(undefined);
});

test('large bodies stream both ways without being held whole', async () => {
  const size = 40 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 7);
  let firstUpstreamChunk: () => void = () => undefined;
  const arrived = new Promise<void>((r) => (firstUpstreamChunk = r));
  let release: () => void = () => undefined;
  const clientGotFirst = new Promise<void>((r) => (release = r));
  slow.handleRaw((req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      if (n === 0) firstUpstreamChunk();
      n += c.length;
      h.update(c);
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-received': String(n), 'x-sha': h.digest('hex') });
      res.write(chunk);
      // The rest is sent only once the agent has the first megabyte: a proxy that buffers
      // the whole response would never deliver it, and the test would time out.
      void clientGotFirst.then(() => {
        for (let i = 1; i < size / chunk.length; i++) res.write(chunk);
        res.end();
      });
    });
  });
  const expected = createHash('sha256');
  for (let i = 0; i < size / chunk.length; i++) expected.update(chunk);
  const result = await new Promise<{ status: number; received: string; sha: string; bytes: number }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/stream/report/agent1.test', ca, servername: 'localhost', cert: agent1.cert, key: agent1.key, agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        if (bytes === 0) release();
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received: String(res.headers['x-received']), sha: String(res.headers['x-sha']), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.write(chunk);
    // The rest of the upload waits until the member has the first chunk (streamed, not buffered).
    void arrived.then(() => {
      for (let i = 1; i < size / chunk.length; i++) req.write(chunk);
      req.end();
    });
  });
  slow.handleRaw(undefined);
  assert.equal(result.status, 200);
  assert.equal(result.received, String(size));
  assert.equal(result.sha, expected.digest('hex'));
  assert.equal(result.bytes, size);
});

test('active health checks take a dead member out, and the local status follows the pools', async () => {
  await pollUntil('the probed pool to have no eligible member', () => (app.gateway.pools().get('probed')?.hasEligible() === false ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
  const r = await get('/probed/x', agent1);
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-ringmaster-error'], 'RM_POOL_UNAVAILABLE');
  const s = await get('/status/v1/simple/server');
  assert.equal(s.status, 503, 'a pool with members and none eligible makes the status an error');
});

test('a revoked agent is refused at once, on a kept-alive connection too', async () => {
  const id = await identity('revokeme.test');
  const keep = new Agent({ keepAlive: true, maxSockets: 1 });
  const ok = await call(port, 'GET', '/puppet/v3/node/revokeme.test', { ca, identity: id, agent: keep });
  assert.equal(ok.status, 200);
  await app.ca.revoke(['revokeme.test']);
  const r = await call(port, 'GET', '/puppet/v3/node/revokeme.test', { ca, identity: id, agent: keep });
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-ringmaster-error'], 'RM_TLS_PEER_REJECTED');
  keep.destroy();
});

test('reload: a request in flight on a removed member finishes; new requests use the new pools', async () => {
  const c = await startBackend('c');
  let finish: () => void = () => undefined;
  const holding = new Promise<void>((r) => (finish = r));
  a.handle(async (_req, res) => {
    await holding;
    res.writeHead(200, { 'x-backend': 'a' }).end('late but whole');
  });
  const pools = { ...(gatewayConfig().pools ?? {}) };
  const baseline = a.seen.length;
  // compilers is round-robin over a and b: one of two requests lands on a, which holds it.
  const held = (async () => {
    for (let i = 0; i < 2; i++) {
      const r = await get(`/puppet/v3/node/hold${i}`, agent1);
      if (r.headers['x-backend'] === 'a') return r;
    }
    return undefined;
  })();
  await pollUntil('a request to be held by a', () => (a.seen.length > baseline ? true : undefined), { timeoutMs: 5000, intervalMs: 10 });
  const next = resolveConfig(gatewayConfig({ pools: { ...pools, compilers: { members: [{ name: 'c', url: c.url }], healthCheck: { active: { enabled: false } } } } }), { stateDir });
  const outcome = app.reload(next);
  assert.deepEqual(outcome.needsRestart, []);
  const after = await get('/puppet/v3/node/x', agent1);
  assert.equal((JSON.parse(after.body) as { backend: string }).backend, 'c');
  finish();
  const r = await held;
  assert.equal(r?.status, 200);
  assert.equal(r?.body, 'late but whole');
  a.handle(undefined);
  const changedListener = resolveConfig({ ...gatewayConfig({ pools: { ...pools } }), listeners: [{ address: '127.0.0.1', port: 1 }] }, { stateDir });
  assert.deepEqual(app.reload(changedListener).needsRestart, ['listeners']);
  await c.close();
});

test('reload: a kept pool answers with its changed settings at once', async () => {
  const pools = { ...(gatewayConfig().pools ?? {}) };
  app.reload(resolveConfig(gatewayConfig({ pools: { ...pools, deadonly: { ...pools.deadonly!, retryAfter: '9s' } } }), { stateDir }));
  const d = await get('/dead/x', agent1);
  assert.equal(d.status, 503);
  assert.equal(d.headers['retry-after'], '9');
  app.reload(resolveConfig(gatewayConfig(), { stateDir }));
  assert.equal((await get('/dead/x', agent1)).headers['retry-after'], '7');
});
