import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair, parseCert, parseCrlBundle } from '../../src/ca/x509.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend } from '../helpers/backend.ts';

// The infrastructure CRL (`ca.crl.infra`, puppetserver's enable-infra-crl): clients download a CRL
// that revokes only the certnames of infra_inventory.txt, while ringmaster's listeners keep
// refusing every revoked agent by the full CRL. Turned on for a CA that already revoked one.

const backend = await startBackend('a');
const stateDir = await mkdtemp(join(tmpdir(), 'rm-infra-crl-'));
let app: App | undefined;
after(async () => {
  await app?.close(500);
  await backend.close();
  await rm(stateDir, { recursive: true, force: true });
});

const start = (infra: boolean) => startApp(resolveConfig({
  server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
  listeners: [{ address: '127.0.0.1', port: 0 }],
  ca: { keyLength: 2048, crl: { infra } },
  admin: { enabled: false },
  reports: { enabled: false },
  pools: { compilers: { members: [{ name: 'a', url: backend.url }], healthCheck: { active: { enabled: false }, passive: { enabled: false } } } },
}, { stateDir }), { clock: systemClock, log: silentLog });

async function identity(a: App, name: string): Promise<TlsIdentity & { serial: bigint }> {
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await a.ca.issueForKey({ certname: name, publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  return { cert: cert.pem, key: k.privateKeyPem, serial: parseCert(cert.pem).serial };
}

const servedRevocations = async (a: App) => {
  const port = a.listeners[0]?.address().port ?? 0;
  const r = await call(port, 'GET', '/puppet-ca/v1/certificate_revocation_list/ca', { ca: a.ca.caBundlePem });
  assert.equal(r.status, 200, r.body);
  const [own] = parseCrlBundle(r.body);
  return new Set(own?.revoked.map((e) => e.serial));
};

test('clients get the infrastructure CRL; the listeners still refuse every revoked certificate', async () => {
  // Before the setting: a compiler revoked in the full CRL.
  app = await start(false);
  const caDir = app.ca.config.dir;
  const [compiler1, agent1] = [await identity(app, 'compiler1.test'), await identity(app, 'agent1.test')];
  await app.ca.revoke(['compiler1.test']);
  assert.deepEqual([...(await servedRevocations(app))], [compiler1.serial], 'without the setting, the full CRL is served');
  await app.close(500);
  await assert.rejects(access(join(caDir, 'infra_crl.pem')), 'no infrastructure CRL without the setting');

  await writeFile(join(caDir, 'infra_inventory.txt'), 'compiler1.test\ncompiler2.test\n');
  app = await start(true);
  await access(join(caDir, 'infra_crl.pem'));
  assert.deepEqual([...(await servedRevocations(app))], [compiler1.serial], 'created from the full CRL\'s revocations of infrastructure certnames');

  const compiler2 = await identity(app, 'compiler2.test');
  await app.ca.revoke(['compiler2.test', 'agent1.test']);
  const served = await servedRevocations(app);
  assert.deepEqual([...served].sort(), [compiler1.serial, compiler2.serial].sort());
  assert.ok(!served.has(agent1.serial), 'an agent\'s revocation stays out of the infrastructure CRL');
  const full = new Set(parseCrlBundle(app.ca.crlPem)[0]?.revoked.map((e) => e.serial));
  assert.deepEqual([...full].sort(), [compiler1.serial, compiler2.serial, agent1.serial].sort(), 'the full CRL has all three');

  const port = app.listeners[0]?.address().port ?? 0;
  const refused = await call(port, 'GET', '/puppet/v3/node/agent1.test?environment=production', { ca: app.ca.caBundlePem, identity: agent1 });
  assert.equal(refused.status, 403, refused.body);
  assert.equal(refused.headers['x-ringmaster-error'], 'RM_TLS_PEER_REJECTED');
  const bystander = await identity(app, 'agent2.test');
  const ok = await call(port, 'GET', '/puppet/v3/node/agent2.test?environment=production', { ca: app.ca.caBundlePem, identity: bystander });
  assert.equal(ok.status, 200, ok.body);
});
