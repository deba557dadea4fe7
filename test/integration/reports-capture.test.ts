import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair } from '../../src/ca/x509.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';

// Reports captured at the front door, through a real listener to scripted compilers: the copy in
// the store, the compiler that served the run's catalog, forwarding or answering locally, only an
// agent's own report kept, and an agent's report still answered when the store is broken.

const fixture = (name: string): Promise<Buffer> => readFile(join(import.meta.dirname, '..', 'fixtures', 'reports', `${name}.json`));

let a: Backend;
let b: Backend;
let reportPool: Backend;
const apps: App[] = [];
const dirs: string[] = [];

async function start(reports: ConfigInput['reports']): Promise<{ app: App; port: number; ca: string; agent: (name: string) => Promise<TlsIdentity> }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'rm-reports-'));
  dirs.push(stateDir);
  const noActive = { active: { enabled: false } };
  const app = await startApp(
    resolveConfig(
      {
        server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
        listeners: [{ address: '127.0.0.1', port: 0 }],
        ca: { keyLength: 2048 },
        admin: { enabled: false },
        pools: {
          compilers: { members: [{ name: 'a', url: a.url }, { name: 'b', url: b.url }], policy: 'round-robin', healthCheck: noActive },
          reports: { members: [{ name: 'r', url: reportPool.url }], healthCheck: noActive },
        },
        reports,
      },
      { stateDir },
    ),
    { clock: systemClock, log: silentLog },
  );
  apps.push(app);
  const agent = async (name: string): Promise<TlsIdentity> => {
    const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
    const cert = await app.ca.issueForKey({ certname: name, publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
    return { cert: cert.pem, key: k.privateKeyPem };
  };
  return { app, port: app.listeners[0]?.address().port ?? 0, ca: app.ca.caBundlePem, agent };
}

before(async () => {
  [a, b, reportPool] = await Promise.all([startBackend('a'), startBackend('b'), startBackend('r')]);
});

after(async () => {
  for (const app of apps) await app.close(1000);
  await Promise.all([a.close(), b.close(), reportPool.close()]);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const put = (port: number, ca: string, identity: TlsIdentity | undefined, certname: string, body: Buffer) =>
  call(port, 'PUT', `/puppet/v3/report/${certname}?environment=production`, { ca, ...(identity ? { identity } : {}), body, headers: { 'content-type': 'application/json' } });

test('forward "route": the member gets the report, the store keeps a copy with the compiler of the run', async () => {
  const { app, port, ca, agent } = await start({ forward: 'route' });
  const web = await agent('web01.example.com');
  const changed = await fixture('changed');
  const txn = (JSON.parse(changed.toString()) as { transaction_uuid: string }).transaction_uuid;
  // The run: a catalog POST naming its transaction, served by one member, then the report.
  const catalog = await call(port, 'POST', '/puppet/v3/catalog/web01.example.com?environment=production', {
    ca, identity: web, body: `facts_format=application%2Fjson&facts=%7B%7D&transaction_uuid=${txn}`, headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(catalog.status, 200);
  const servedBy = (JSON.parse(catalog.body) as { backend: string }).backend;
  const before = a.seen.length + b.seen.length;
  const r = await put(port, ca, web, 'web01.example.com', changed);
  assert.equal(r.status, 200);
  assert.equal(a.seen.length + b.seen.length, before + 1, 'the report went on to a member');
  await app.reports?.capture.idle();
  const page = await app.reports!.store.list({ node: 'web01.example.com' });
  assert.equal(page.items.length, 1);
  assert.equal(page.items[0]?.status, 'changed');
  assert.equal(page.items[0]?.compiler, servedBy);
  assert.equal(page.items[0]?.transactionUuid, txn);
  const stored = await app.reports!.store.get(page.items[0].id);
  assert.ok(stored?.body.equals(changed), 'the body is kept exactly as received');

  // A verified agent PUTting another node's report: the member decides (puppetserver refuses
  // it), and it never enters the store. Without a certificate, the same.
  const other = await agent('db01.example.com');
  await put(port, ca, other, 'web01.example.com', await fixture('unchanged'));
  await put(port, ca, undefined, 'web01.example.com', await fixture('unchanged'));
  await app.reports?.capture.idle();
  assert.equal((await app.reports!.store.list({ node: 'web01.example.com' })).items.length, 1);
  assert.equal(app.reports!.capture.captured, 1);
});

test('forward "none": ringmaster answers the report itself and no member sees it; "pool": it goes to that pool', async () => {
  const none = await start({ forward: 'none' });
  const db = await none.agent('db01.example.com');
  const seenBefore = a.seen.length + b.seen.length;
  const r = await put(none.port, none.ca, db, 'db01.example.com', await fixture('failed'));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), []);
  assert.equal(a.seen.length + b.seen.length, seenBefore, 'no member was asked');
  const forged = await put(none.port, none.ca, db, 'web01.example.com', await fixture('changed'));
  assert.equal(forged.status, 403);
  assert.equal(forged.headers['x-ringmaster-error'], 'RM_AUTH_FORBIDDEN');
  const anonymous = await put(none.port, none.ca, undefined, 'db01.example.com', await fixture('failed'));
  assert.equal(anonymous.status, 403);
  await none.app.reports?.capture.idle();
  const items = (await none.app.reports!.store.list({})).items;
  assert.deepEqual(items.map((i) => [i.node, i.status]), [['db01.example.com', 'failed']]);
  const detail = await none.app.reports!.store.get(items[0]!.id);
  assert.ok((detail?.failedResources.length ?? 0) > 0, 'the failed resource is kept');

  const toPool = await start({ forward: { pool: 'reports' } });
  const web = await toPool.agent('web01.example.com');
  const r2 = await put(toPool.port, toPool.ca, web, 'web01.example.com', await fixture('unchanged'));
  assert.equal(r2.status, 200);
  assert.equal((JSON.parse(r2.body) as { backend: string }).backend, 'r');
  await toPool.app.reports?.capture.idle();
  assert.equal((await toPool.app.reports!.store.list({})).items.length, 1);
});

test('a broken store never fails the agent: the report is still forwarded and answered, and counted as failed', async () => {
  const { app, port, ca, agent } = await start({ forward: 'route' });
  const web = await agent('web01.example.com');
  await app.reports!.store.close();
  const r = await put(port, ca, web, 'web01.example.com', await fixture('changed'));
  assert.equal(r.status, 200);
  await app.reports?.capture.idle();
  assert.equal(app.reports!.capture.failed, 1);
  assert.equal(app.reports!.capture.captured, 0);
});
