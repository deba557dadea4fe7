import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, type CaConfig } from './authority.ts';
import { ManualClock, systemClock } from '../lib/clock.ts';
import { silentLog } from '../observability/log.ts';
import { resolveConfig } from '../config/load.ts';
import { generateKeyPair, createCsr, parseCert, parseCrl } from './x509.ts';
import { isRingmasterError } from '../lib/errors.ts';

async function caConfig(extra: Record<string, unknown> = {}): Promise<CaConfig> {
  const stateDir = await mkdtemp(join(tmpdir(), 'rm-authority-'));
  const c = resolveConfig({ ca: { keyLength: 2048, ...extra } }, { stateDir });
  return { ...c.ca, stateDir, serverCertname: 'ringmaster.test' };
}

test('concurrent autosigned submissions get unique serials that match the inventory', async () => {
  const config = await caConfig({ autosign: { all: true } });
  const ca = await CertificateAuthority.create(config, { clock: systemClock, log: silentLog });
  const key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const names = Array.from({ length: 60 }, (_, i) => `node${i}.test`);
  const csrs = await Promise.all(names.map((n) => createCsr({ commonName: n, keyPair: key })));
  const results = await Promise.all(names.map((n, i) => ca.submitCsr(n, csrs[i] ?? '')));
  assert.ok(results.every((r) => r.state === 'signed'));
  const signed = await readdir(join(config.dir, 'signed'));
  assert.equal(signed.length, 60);
  const serials = await Promise.all(signed.map(async (f) => parseCert(await readFile(join(config.dir, 'signed', f), 'utf8')).serial));
  assert.equal(new Set(serials).size, 60);
  const inventory = await ca.inventory();
  for (const s of serials) assert.ok(inventory.some((e) => e.serial === s), `serial ${s} in inventory`);
  const next = await ca.store.readNextSerial();
  assert.ok(serials.every((s) => s < next));
  // The CA certificate took serial 1.
  assert.ok(!serials.includes(1n));
});

test('the CRL is re-signed once less than renewBefore remains, without being asked', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const config = await caConfig({ crl: { ttl: '100d', renewBefore: '30d' } });
  const ca = await CertificateAuthority.create(config, { clock, log: silentLog });
  const first = parseCrl(await readFile(join(config.dir, 'ca_crl.pem'), 'utf8'));
  assert.equal(await ca.renewCrlIfDue(), false);
  clock.advance(71 * 86400_000);
  assert.equal(await ca.renewCrlIfDue(), true);
  const second = parseCrl(await readFile(join(config.dir, 'ca_crl.pem'), 'utf8'));
  assert.equal(second.number, (first.number ?? 0n) + 1n);
  assert.ok((second.nextUpdate?.getTime() ?? 0) > (first.nextUpdate?.getTime() ?? 0));
  assert.equal(await ca.renewCrlIfDue(), false);
});

test('the infrastructure CRL is re-signed when it is due, also while the full CRL is not', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const config = await caConfig({ crl: { ttl: '100d', renewBefore: '30d', infra: true } });
  const ca = await CertificateAuthority.create(config, { clock, log: silentLog });
  const read = async (file: string) => parseCrl(await readFile(join(config.dir, file), 'utf8'));
  const infra0 = await read('infra_crl.pem');
  // The full CRL re-signed at day 40 is due at day 110; the infrastructure CRL made at day 0 is due at day 70.
  const key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  await ca.issueForKey({ certname: 'agent.test', publicKeyPem: key.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  clock.advance(40 * 86400_000);
  // An agent's revocation re-signs the full CRL only.
  await ca.revoke(['agent.test']);
  assert.equal((await read('infra_crl.pem')).pem, infra0.pem);
  const full = await read('ca_crl.pem');
  clock.advance(31 * 86400_000);
  assert.equal(await ca.renewCrlIfDue(), true);
  const infra1 = await read('infra_crl.pem');
  assert.equal(infra1.number, (infra0.number ?? 0n) + 1n);
  assert.ok((infra1.nextUpdate?.getTime() ?? 0) > (infra0.nextUpdate?.getTime() ?? 0));
  assert.equal((await read('ca_crl.pem')).pem, full.pem, 'the full CRL, not yet due, is left as it is');
  assert.equal(await ca.renewCrlIfDue(), false);
});

test('alt names wait for an operator who allows them', async () => {
  const config = await caConfig({ autosign: { all: true } });
  const ca = await CertificateAuthority.create(config, { clock: systemClock, log: silentLog });
  const key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const csr = await createCsr({ commonName: 'alt.test', keyPair: key, subjectAltNames: [{ type: 'dns', value: 'alt.test' }, { type: 'dns', value: 'www.alt.test' }] });
  await assert.rejects(ca.submitCsr('alt.test', csr), (err: unknown) => isRingmasterError(err, 'RM_CA_CSR_ALT_NAMES'));
  assert.equal((await ca.status('alt.test'))?.state, 'requested');
  const [refused] = await ca.sign(['alt.test']);
  assert.equal(refused?.ok, false);
  const [signed] = await ca.sign(['alt.test'], { allowDnsAltNames: true });
  assert.ok(signed?.ok);
  const status = await ca.status('alt.test');
  assert.deepEqual(status?.dns_alt_names.sort(), ['DNS:alt.test', 'DNS:www.alt.test']);
});

test('a CA directory with a missing or corrupt file is refused, naming the file', async () => {
  const config = await caConfig();
  await CertificateAuthority.create(config, { clock: systemClock, log: silentLog });
  const open = () => CertificateAuthority.open(config, { clock: systemClock, log: silentLog });
  const crl = await readFile(join(config.dir, 'ca_crl.pem'), 'utf8');
  await writeFile(join(config.dir, 'ca_crl.pem'), 'garbage');
  await assert.rejects(open(), (err: unknown) => isRingmasterError(err, 'RM_CA_DIR_INVALID') && err.message.includes('ca_crl.pem'));
  await writeFile(join(config.dir, 'ca_crl.pem'), crl);
  await writeFile(join(config.dir, 'serial'), 'zz\n');
  await assert.rejects(open(), (err: unknown) => isRingmasterError(err, 'RM_CA_DIR_INVALID') && err.message.includes('serial'));
  await writeFile(join(config.dir, 'serial'), '0010\n');
  await rm(join(config.dir, 'ca_key.pem'));
  await assert.rejects(open(), (err: unknown) => isRingmasterError(err, 'RM_CA_DIR_INVALID') && err.message.includes('ca_key.pem'));
});

test('revocation and cleaning', async () => {
  const config = await caConfig({ autosign: { all: true } });
  const ca = await CertificateAuthority.create(config, { clock: systemClock, log: silentLog });
  const key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  await ca.submitCsr('gone.test', await createCsr({ commonName: 'gone.test', keyPair: key }));
  const serial = parseCert((await ca.getCertificate('gone.test')) ?? '').serial;
  let changes = 0;
  ca.onChange(() => changes++);
  assert.deepEqual(await ca.revoke(['gone.test', 'never.test']), { revoked: ['gone.test'], missing: ['never.test'] });
  assert.ok(ca.isRevoked(serial));
  assert.equal(changes, 1);
  assert.equal((await ca.status('gone.test'))?.state, 'revoked');
  assert.deepEqual(await ca.clean(['gone.test']), { cleaned: ['gone.test'], missing: [] });
  assert.equal(await ca.status('gone.test'), undefined);
  // Cleaning a revoked certificate does not revoke it twice.
  assert.equal(parseCrl(ca.crlPem).revoked.filter((r) => r.serial === serial).length, 1);
});

test('renewal keeps subject, key and extensions, with a new serial and the renewal lifetime', async () => {
  const clock = new ManualClock(Date.now());
  const config = await caConfig({ autosign: { all: true }, autoRenewal: { enabled: true, certTtl: '60d' } });
  const ca = await CertificateAuthority.create(config, { clock, log: silentLog });
  const key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const csr = await createCsr({ commonName: 'renew.test', keyPair: key, extensionRequests: [{ oid: '1.3.6.1.4.1.34380.1.1.13', value: 'webserver' }] });
  await ca.submitCsr('renew.test', csr);
  const old = parseCert((await ca.getCertificate('renew.test')) ?? '');
  const renewed = await ca.renew(old);
  assert.equal(renewed.commonName, 'renew.test');
  assert.notEqual(renewed.serial, old.serial);
  assert.deepEqual(Buffer.from(renewed.publicKeySpki), Buffer.from(old.publicKeySpki));
  assert.equal(renewed.extensions.find((e) => e.oid === '1.3.6.1.4.1.34380.1.1.13')?.text, 'webserver');
  assert.ok(Math.abs(renewed.notAfter.getTime() - clock.now() - 60 * 86400_000) < 2000);
  await ca.revoke(['renew.test']);
  await assert.rejects(ca.renew(renewed), (err: unknown) => isRingmasterError(err, 'RM_CA_RENEWAL_FOREIGN'));
});
