import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair } from '../../src/ca/x509.ts';
import { call, type Reply, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { pollUntil } from '../helpers/puppet.ts';

// Compile capacity through a real listener and real sockets. Two scripted compilers report
// their JRuby counts (2 and 1) the way puppetserver's jruby-metrics status does, and hold every
// catalog compile until the test lets it finish, so the test sees exactly how many compiles each
// compiler has at once and what waits in ringmaster's queue.

type Compiler = { backend: Backend; held: ServerResponse[]; running: number; maxRunning: number; catalogs: number };

let app: App;
let port: number;
let ca: string;
let stateDir: string;
let agent: TlsIdentity;
const compilers: Record<string, Compiler> = {};

async function scripted(name: string, jrubies: number): Promise<Compiler> {
  const c: Compiler = { backend: await startBackend(name), held: [], running: 0, maxRunning: 0, catalogs: 0 };
  c.backend.handle((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith('/status/v1/simple')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('running');
    if (url.startsWith('/status/v1/services/jruby-metrics')) {
      const metrics = { 'num-jrubies': jrubies, 'num-free-jrubies': jrubies - c.running, 'requested-instances': [], 'borrowed-instances': [] };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service_name: 'jruby-metrics', state: 'running', status: { experimental: { metrics } } }));
    }
    if (req.method === 'POST' && url.startsWith('/puppet/v3/catalog/')) {
      c.running++;
      c.catalogs++;
      c.maxRunning = Math.max(c.maxRunning, c.running);
      c.held.push(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name }).end(JSON.stringify({ backend: name }));
  });
  return c;
}

/** Lets the oldest held compile of `name` finish. */
function finish(name: string): void {
  const c = compilers[name]!;
  const res = c.held.shift();
  assert.ok(res, `no compile held on ${name}`);
  c.running--;
  res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name }).end(JSON.stringify({ name: 'catalog', backend: name }));
}

const catalog = (i: number): Promise<Reply> =>
  call(port, 'POST', `/puppet/v3/catalog/agent.test?environment=production`, {
    ca,
    identity: agent,
    body: `facts_format=application%2Fjson&facts=%7B%7D&transaction_uuid=${i}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-puppet-version': '8.10.0' },
  });

const snapshot = () => app.gateway.pools().get('compilers')!.snapshot();

before(async () => {
  compilers.c1 = await scripted('c1', 2);
  compilers.c2 = await scripted('c2', 1);
  stateDir = await mkdtemp(join(tmpdir(), 'rm-capacity-'));
  const config = resolveConfig(
    {
      server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
      listeners: [{ address: '127.0.0.1', port: 0 }],
      ca: { keyLength: 2048 },
      pools: {
        compilers: {
          members: [{ name: 'c1', url: compilers.c1.backend.url }, { name: 'c2', url: compilers.c2.backend.url }],
          healthCheck: { active: { interval: '200ms', timeout: '1s', rise: 1, fall: 1 } },
          capacity: { maxQueue: 3, queueTimeout: '1500ms', slowStart: '0s', retryAfter: { min: 5, max: 9 } },
        },
      },
    },
    { stateDir },
  );
  app = await startApp(config, { clock: systemClock, log: silentLog });
  port = app.listeners[0]?.address().port ?? 0;
  ca = app.ca.caBundlePem;
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname: 'agent.test', publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  agent = { cert: cert.pem, key: k.privateKeyPem };
});

after(async () => {
  for (const c of Object.values(compilers)) while (c.held.length > 0) finish(c.backend.name);
  await app.close(1000);
  await Promise.all(Object.values(compilers).map((c) => c.backend.close()));
  await rm(stateDir, { recursive: true, force: true });
});

test('compile slots come from the JRuby counts the compilers report; compiles beyond them wait, are served in order, overflow and time out with 503 + Retry-After', async () => {
  await pollUntil('slots reported', () => (snapshot().members.every((m) => m.slotsFrom === 'reported') ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
  assert.deepEqual(snapshot().members.map((m) => [m.name, m.compileSlots]), [['c1', 2], ['c2', 1]]);

  // Six compiles: three run (2 on c1, 1 on c2), three wait in ringmaster's queue.
  const replies = Array.from({ length: 6 }, (_, i) => catalog(i));
  await pollUntil('three compiles queued', () => (snapshot().queued === 3 ? true : undefined), { timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(compilers.c1!.running, 2);
  assert.equal(compilers.c2!.running, 1);

  // Other requests do not wait behind the compiles.
  const node = await call(port, 'GET', '/puppet/v3/node/agent.test?environment=production', { ca, identity: agent });
  assert.equal(node.status, 200);

  // The queue holds 3: one more is refused at once with a Retry-After in the configured range.
  const overflow = await catalog(99);
  assert.equal(overflow.status, 503);
  assert.equal(overflow.headers['x-ringmaster-error'], 'RM_QUEUE_FULL');
  const retryAfter = Number(overflow.headers['retry-after']);
  assert.ok(retryAfter >= 5 && retryAfter <= 9, `Retry-After ${retryAfter}`);

  // A compile ending on c2 lets exactly one waiting compile through, to c2.
  finish('c2');
  await pollUntil('one queued compile dispatched', () => (snapshot().queued === 2 ? true : undefined), { timeoutMs: 5_000, intervalMs: 20 });
  assert.equal(compilers.c2!.running, 1);
  assert.equal(compilers.c2!.catalogs, 2);

  // Nothing else ends: the two still waiting reach queueTimeout (1.5 s) and get 503 + Retry-After.
  await pollUntil('the queue emptied by timeouts', () => (snapshot().queued === 0 ? true : undefined), { timeoutMs: 5_000, intervalMs: 20 });
  finish('c1');
  finish('c1');
  finish('c2');
  const all = await Promise.all(replies);
  assert.equal(all.filter((r) => r.status === 200).length, 4);
  const timedOut = all.filter((r) => r.status === 503);
  assert.equal(timedOut.length, 2);
  for (const r of timedOut) {
    assert.equal(r.headers['x-ringmaster-error'], 'RM_QUEUE_TIMEOUT');
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra >= 5 && ra <= 9, `Retry-After ${ra}`);
  }
  assert.equal(compilers.c1!.maxRunning, 2, 'c1 never ran more compiles than its 2 JRubies');
  assert.equal(compilers.c2!.maxRunning, 1, 'c2 never ran more compiles than its 1 JRuby');
  assert.equal(snapshot().queued, 0);
  assert.ok(snapshot().members.every((m) => m.compiles === 0));
});
