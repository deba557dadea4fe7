import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { isRingmasterError } from '../../src/lib/errors.ts';
import { silentLog } from '../../src/observability/log.ts';
import { createCaCertificate, createCrl, createCsr, generateKeyPair, loadSigner, parseCert } from '../../src/ca/x509.ts';
import { ExternalCa } from '../../src/ca/external.ts';
import { caFetchOver } from '../../src/ca/external-fetch.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { pollUntil } from '../helpers/puppet.ts';
import { ringmasterCli } from '../helpers/ringmaster.ts';
import { openApiDocument } from '../../src/admin/openapi.ts';
import { checkAnswer } from '../../src/admin/openapi-check.ts';

// ringmaster with `ca.enabled: false` in front of an external CA. The external CA here is another
// ringmaster's built-in one (Puppet-compatible, autosigning `*.test`), reached over HTTPS as a
// pool; the CRL cases use a scripted server on a real socket that serves whatever CRL the test
// sets, since no real CA serves a foreign or outdated one on purpose.

const noHealth = { active: { enabled: false }, passive: { enabled: false } };
const dirs: string[] = [];
let ext: App;
let extPort: number;
let backend: Backend;
let rm1: App | undefined;

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function externalConfig(stateDir: string, over: { certname?: string; waitForCert?: string; crlRefresh?: string; caUrl?: string; adminTokenFile?: string } = {}) {
  return resolveConfig({
    server: { certname: over.certname ?? 'ringmaster.test', dnsAltNames: ['localhost'] },
    listeners: [{ address: '127.0.0.1', port: 0 }],
    ca: { enabled: false, keyLength: 2048, external: { pool: 'ca', caFile: join(extStateDir, 'ssl', 'certs', 'ca.pem'), crlRefresh: over.crlRefresh ?? '200ms', waitForCert: over.waitForCert ?? '10s' } },
    admin: over.adminTokenFile ? { address: '127.0.0.1', port: 0, tokenFile: over.adminTokenFile } : { enabled: false },
    reports: { enabled: false },
    pools: {
      ca: { members: [{ name: 'extca', url: over.caUrl ?? `https://localhost:${extPort}` }], healthCheck: noHealth },
      compilers: { members: [{ name: 'a', url: backend.url }], healthCheck: noHealth },
    },
  }, { stateDir });
}

let extStateDir: string;

before(async () => {
  backend = await startBackend('a');
  extStateDir = await tempDir('rm-extca-ca-');
  ext = await startApp(resolveConfig({
    server: { certname: 'extca.test', dnsAltNames: ['localhost'] },
    listeners: [{ address: '127.0.0.1', port: 0 }],
    ca: { keyLength: 2048, autosign: { allow: ['*.test'] }, allowSubjectAltNames: true },
    admin: { enabled: false },
    reports: { enabled: false },
  }, { stateDir: extStateDir }), { clock: systemClock, log: silentLog });
  extPort = ext.listeners[0]?.address().port ?? 0;
});

after(async () => {
  await rm1?.close(500);
  await ext.close(500);
  await backend.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A key and certificate for `name`, requested through `port` (ringmaster's listener) the way an agent does. */
async function bootstrapThrough(port: number, caPem: string, name: string): Promise<TlsIdentity> {
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const csr = await createCsr({ commonName: name, keyPair: k });
  const put = await call(port, 'PUT', `/puppet-ca/v1/certificate_request/${name}`, { ca: caPem, body: csr, headers: { 'content-type': 'text/plain' } });
  assert.equal(put.status, 200, put.body);
  const got = await call(port, 'GET', `/puppet-ca/v1/certificate/${name}`, { ca: caPem });
  assert.equal(got.status, 200, got.body);
  return { cert: got.body, key: k.privateKeyPem };
}

test('ringmaster gets its own certificate from the external CA and sends /puppet-ca/ there', async () => {
  const stateDir = await tempDir('rm-extca-rm-');
  rm1 = await startApp(externalConfig(stateDir), { clock: systemClock, log: silentLog });
  const own = parseCert(rm1.trust.serverCert.certPem);
  const extCa = parseCert(ext.ca.caBundlePem);
  assert.equal(own.issuerDn, extCa.subjectDn);
  assert.ok(own.subjectAltNames.some((n) => n.value === 'localhost'));
  assert.equal(await readFile(join(stateDir, 'ssl', 'certs', 'ringmaster.test.pem'), 'utf8'), rm1.trust.serverCert.certPem);
  await access(join(stateDir, 'ssl', 'crl.pem'));
  assert.throws(() => rm1?.ca, (e) => isRingmasterError(e, 'RM_CA_EXTERNAL'));
  await assert.rejects(access(join(stateDir, 'ca')), 'no CA directory of its own');

  const port = rm1.listeners[0]?.address().port ?? 0;
  const caCert = await call(port, 'GET', '/puppet-ca/v1/certificate/ca', { ca: ext.ca.caBundlePem });
  assert.equal(caCert.status, 200);
  assert.equal(parseCert(caCert.body).subjectDn, extCa.subjectDn, 'the external CA answered, not a CA of ringmaster');
  await bootstrapThrough(port, ext.ca.caBundlePem, 'agent1.test');
  assert.ok(await ext.ca.getCertificate('agent1.test'), 'the request reached the external CA, which signed it');
});

test('an agent of the external CA is served; revoked there, it is refused once the CRL is refreshed', async () => {
  const app = rm1 ?? assert.fail('ringmaster did not start');
  const port = app.listeners[0]?.address().port ?? 0;
  const ca = ext.ca.caBundlePem;
  const [victim, bystander] = await Promise.all([bootstrapThrough(port, ca, 'victim.test'), bootstrapThrough(port, ca, 'bystander.test')]);
  const node = (id: TlsIdentity, name: string) => call(port, 'GET', `/puppet/v3/node/${name}?environment=production`, { ca, identity: id });
  const ok = await node(victim, 'victim.test');
  assert.equal(ok.status, 200, ok.body);
  assert.equal(backend.seen.at(-1)?.headers['x-client-dn'], 'CN=victim.test');

  await ext.ca.revoke(['victim.test']);
  const refused = await pollUntil('the revocation reaches ringmaster', async () => {
    const r = await node(victim, 'victim.test').catch(() => undefined);
    return r && r.status === 403 ? r : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  assert.equal(refused.headers['x-ringmaster-error'], 'RM_TLS_PEER_REJECTED');
  assert.equal((await node(bystander, 'bystander.test')).status, 200, 'a certificate that was not revoked still works');
  assert.ok(app.trust.isRevoked(parseCert(victim.cert).serial));
});

test('a restart keeps the key and certificate; no new request goes to the CA', async () => {
  const app = rm1 ?? assert.fail('ringmaster did not start');
  const before = app.trust.serverCert.certPem;
  const dir = dirs.find((d) => d.includes('rm-extca-rm-')) ?? assert.fail('no state directory');
  await app.close(500);
  rm1 = undefined;
  const pending = (await ext.ca.pendingNames()).length;
  rm1 = await startApp(externalConfig(dir), { clock: systemClock, log: silentLog });
  assert.equal(rm1.trust.serverCert.certPem, before);
  assert.equal((await ext.ca.pendingNames()).length, pending);
});

test('the admin API shows the external CA as ringmaster uses it, and refuses to list or sign with RM_CA_EXTERNAL', async () => {
  const dir = dirs.find((d) => d.includes('rm-extca-rm-')) ?? assert.fail('no state directory');
  const tokenFile = join(dir, 'admin-token');
  await writeFile(tokenFile, 'sesame\n');
  await rm1?.close(500);
  rm1 = await startApp(externalConfig(dir, { adminTokenFile: tokenFile }), { clock: systemClock, log: silentLog });
  const adminPort = rm1.adminAddress?.port ?? assert.fail('the admin API is not listening');
  const ca = ext.ca.caBundlePem;
  const admin = async (method: string, path: string) => {
    const r = await call(adminPort, method, path, { ca, headers: { authorization: 'Bearer sesame' } });
    const json = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual(checkAnswer(openApiDocument as Parameters<typeof checkAnswer>[0], method, path.split('?')[0] ?? path, r.status, json), [], `${method} ${path}: ${r.body}`);
    return { status: r.status, json };
  };
  const summary = await admin('GET', '/admin/v1/ca');
  assert.equal(summary.status, 200);
  const own = parseCert(rm1.trust.serverCert.certPem);
  const extCa = parseCert(ca);
  const view = summary.json.ca as Record<string, unknown>;
  assert.equal(view.mode, 'external');
  assert.equal(view.pool, 'ca');
  assert.equal(view.subject, extCa.subjectDn);
  assert.equal(view.notAfter, extCa.notAfter.toISOString());
  assert.deepEqual(view.certificate, {
    certname: 'ringmaster.test', serial: String(own.serial), notAfter: own.notAfter.toISOString(),
    expiresInDays: Math.floor((own.notAfter.getTime() - Date.now()) / 86_400_000),
  });
  // victim.test was revoked on the CA by an earlier test; the CRL ringmaster holds says so.
  assert.ok((view.revoked as number) >= 1, `revoked ${String(view.revoked)}`);
  assert.equal(view.crlRefreshFailures, 0);
  assert.equal(typeof view.crlNextUpdate, 'string');
  for (const path of ['/admin/v1/ca/certificates', '/admin/v1/ca/certificates/victim.test']) {
    const r = await admin('GET', path);
    assert.equal(r.status, 409, path);
    assert.equal((r.json.error as { code: string }).code, 'RM_CA_EXTERNAL');
  }
  const sign = await admin('POST', '/admin/v1/ca/certificates/victim.test/sign');
  assert.equal((sign.json.error as { code: string }).code, 'RM_CA_EXTERNAL');
});

test('a request the CA does not sign in time fails the start with RM_CA_EXTERNAL_UNAVAILABLE; the key waits for the next start', async () => {
  const stateDir = await tempDir('rm-extca-manual-');
  await assert.rejects(
    startApp(externalConfig(stateDir, { certname: 'manual.example', waitForCert: '0s' }), { clock: systemClock, log: silentLog }),
    (e) => isRingmasterError(e, 'RM_CA_EXTERNAL_UNAVAILABLE') && /puppetserver ca sign --certname manual\.example/.test((e as Error).message),
  );
  const key = await readFile(join(stateDir, 'ssl', 'private_keys', 'manual.example.pem'), 'utf8');
  assert.deepEqual(await ext.ca.pendingNames(), ['manual.example']);
  await ext.ca.sign(['manual.example'], { allowDnsAltNames: true });
  const app = await startApp(externalConfig(stateDir, { certname: 'manual.example', waitForCert: '0s' }), { clock: systemClock, log: silentLog });
  try {
    assert.equal(app.trust.serverCert.keyPem, key, 'the key of the first request');
  } finally {
    await app.close(500);
  }
});

test('a CRL that does not verify against caFile, or is older than the one in use, is not taken', async () => {
  // ringmaster's certificate is already in its ssl directory, so the scripted member only serves CRLs.
  const stateDir = await tempDir('rm-extca-crl-');
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const own = await ext.ca.issueForKey({ certname: 'crl.test', publicKeyPem: k.publicKeyPem, subjectAltNames: [{ type: 'dns', value: 'localhost' }], cliAuth: false, replace: false });
  const { SslDir } = await import('../../src/ca/ssl-dir.ts');
  await new SslDir(join(stateDir, 'ssl')).write('crl.test', own.pem, k.privateKeyPem);

  let crlBody = ext.ca.crlPem;
  const scripted: Server = createServer((req, res) => {
    if (req.url === '/puppet-ca/v1/certificate_revocation_list/ca') res.writeHead(200, { 'content-type': 'text/plain' }).end(crlBody);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => scripted.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(scripted.address() as AddressInfo).port}`;
  const config = externalConfig(stateDir, { certname: 'crl.test', caUrl: url });
  const fetch = caFetchOver(config.pools.ca!, config.ca.external!.caFile);
  try {
    const trust = await ExternalCa.open(
      { caFile: config.ca.external!.caFile, crlRefreshMs: 60_000, waitForCertMs: 0, certname: 'crl.test', dnsAltNames: ['localhost'], keyLength: 2048, stateDir },
      { clock: systemClock, log: silentLog, fetch: fetch.fetch },
    );
    const older = ext.ca.crlPem;
    await ext.ca.revoke(['agent1.test']);
    const revokedSerial = parseCert((await ext.ca.getCertificate('agent1.test')) ?? assert.fail('agent1.test has no certificate')).serial;
    let changed = 0;
    trust.onChange(() => changed++);
    crlBody = ext.ca.crlPem;
    assert.equal(await trust.refreshCrl(), true);
    assert.equal(trust.isRevoked(revokedSerial), true);
    assert.equal(changed, 1);

    crlBody = older;
    assert.equal(await trust.refreshCrl(), false, 'an older CRL is ignored');
    assert.equal(trust.isRevoked(revokedSerial), true, 'the revocation stays');

    const stranger = await generateKeyPair({ type: 'rsa', bits: 2048 });
    const strangerCa = await createCaCertificate({ commonName: parseCert(ext.ca.caBundlePem).commonName ?? 'x', keyPair: stranger, serial: 1n, notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 86_400_000) });
    crlBody = await createCrl({ signer: await loadSigner(strangerCa, stranger.privateKeyPem), number: 99n, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000), revoked: [] });
    assert.equal(trust.crlRefreshFailures, 0, 'an older CRL is not a failure');
    await assert.rejects(trust.refreshCrl(), (e) => isRingmasterError(e, 'RM_CA_EXTERNAL_INVALID'));
    assert.equal(trust.crlRefreshFailures, 1);
    assert.equal(trust.isRevoked(revokedSerial), true, 'a CRL signed by another key changes nothing');
    assert.equal(changed, 1);
    assert.equal(await readFile(join(stateDir, 'ssl', 'crl.pem'), 'utf8'), ext.ca.crlPem, 'the kept CRL is the one in use');
  } finally {
    await fetch.close();
    await new Promise<void>((r) => scripted.close(() => r()));
  }
});

test('the CA commands and compiler config refuse with RM_CA_EXTERNAL and write nothing', async () => {
  const dir = await tempDir('rm-extca-cli-');
  const file = join(dir, 'ringmaster.json');
  await writeFile(file, JSON.stringify({
    stateDir: join(dir, 'state'),
    ca: { enabled: false, external: { pool: 'ca', caFile: join(extStateDir, 'ssl', 'certs', 'ca.pem') } },
    pools: { ca: { members: [{ name: 'extca', url: `https://localhost:${extPort}` }] } },
  }));
  for (const args of [['ca', 'list'], ['ca', 'sign', 'x.test'], ['compiler', 'config', 'c1.test', '--out', join(dir, 'c1')]]) {
    const r = await ringmasterCli(args, file);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, /RM_CA_EXTERNAL/, `${args.join(' ')}: ${r.stderr}`);
  }
  await assert.rejects(access(join(dir, 'state', 'ca')), 'no CA directory was created');
  await assert.rejects(access(join(dir, 'c1')), 'no compiler configuration was written');
});
