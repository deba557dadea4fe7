// Adopting an existing Puppet CA: a directory made by the real `puppetserver ca setup` (root plus
// intermediate) and an agent certificate that CA signed are imported with `ringmaster ca import`;
// the old agent keeps working through ringmaster and new serials continue where the old CA stopped.
// A newer CRL of the root (signed with the root key `puppetserver ca setup` left) is taken over
// PUT certificate_revocation_list, and a real agent verifies the new chain.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rm as remove } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCrl, loadSigner, parseCert, parseCertBundle, parseCrlBundle } from '../../src/ca/x509.ts';
import {
  createAgent, describeRun, installIdentity, makeTempDir, puppetserverCaCli, skipUnlessInstalled, uniqueCertname, writeCaCliConf,
  type Agent,
} from '../helpers/puppet.ts';
import { caSetup, type OfflineCa } from '../helpers/puppetserver.ts';
import { httpsRequest, listCerts, nextSerial, signedSerials, startRingmasterFromImport, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent', 'puppetserver');
const oldAgent = 'agent-old.import.test';

describe('importing a CA made by puppetserver ca setup', { skip, timeout: 300_000 }, () => {
  let dir = '';
  let old: OfflineCa | undefined;
  let importedSerials = new Map<string, bigint>();
  let importedNext = 0n;
  let rm: Ringmaster | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');
  const oldCa = (): OfflineCa => old ?? assert.fail('puppetserver ca setup did not run');

  before(async () => {
    dir = await makeTempDir('import');
    old = await caSetup(join(dir, 'old'));
    // Offline signing is the only way the CLI signs without a running server; the cert carries
    // pp_cli_auth, which also lets it drive the CA API below.
    const gen = await old.generate(oldAgent);
    assert.equal(gen.code, 0, describeRun('puppetserver ca generate --ca-client', gen));
    importedSerials = await signedSerials(join(old.cadir, 'signed'));
    importedNext = await nextSerial(old.cadir);
    rm = await startRingmasterFromImport(old.cadir, { autosign: { allow: ['*.auto.test'] } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
    if (dir) await remove(dir, { recursive: true, force: true });
  });

  it('keeps the old agent working: verify, download its cert, TLS with its client cert', async () => {
    const agent = await createAgent({ certname: oldAgent, port: ringmaster().port });
    agents.push(agent);
    const { ssldir } = oldCa();
    // The agent's own files as the old CA's host left them: CA bundle, CRL chain, key and cert.
    await installIdentity(agent, {
      caCert: join(ssldir, 'certs', 'ca.pem'),
      crl: join(ssldir, 'crl.pem'),
      cert: join(ssldir, 'certs', `${oldAgent}.pem`),
      key: join(ssldir, 'private_keys', `${oldAgent}.pem`),
    });
    const original = await readFile(agent.paths.cert, 'utf8');

    const verify = await agent.sslVerify();
    assert.equal(verify.code, 0, describeRun('puppet ssl verify', verify));

    // Fetches its cert from ringmaster, checking ringmaster's server cert against the old bundle.
    const download = await agent.run(['ssl', 'download_cert']);
    assert.equal(download.code, 0, describeRun('puppet ssl download_cert', download));
    assert.equal(
      new X509Certificate(await readFile(agent.paths.cert)).fingerprint256,
      new X509Certificate(original).fingerprint256,
      'ringmaster serves the certificate the old CA signed',
    );

    const res = await httpsRequest({
      port: ringmaster().port,
      path: '/puppet-ca/v1/certificate/ca',
      ca: await readFile(agent.paths.caCert, 'utf8'),
      cert: original,
      key: await readFile(agent.paths.key, 'utf8'),
    });
    assert.equal(res.status, 200, res.body);
  });

  it('accepts the imported pp_cli_auth cert from the real puppetserver ca CLI', async () => {
    const { ssldir } = oldCa();
    const confFile = await writeCaCliConf(join(dir, 'old-admin.conf'), {
      certname: oldAgent,
      port: ringmaster().port,
      ssldir: join(dir, 'admin-ssl'),
      cadir: join(dir, 'admin-ca'),
      hostcert: join(ssldir, 'certs', `${oldAgent}.pem`),
      hostprivkey: join(ssldir, 'private_keys', `${oldAgent}.pem`),
      localcacert: join(ssldir, 'certs', 'ca.pem'),
      hostcrl: join(ssldir, 'crl.pem'),
    });
    const list = await puppetserverCaCli(['list', '--all'], { confFile });
    assert.equal(list.code, 0, describeRun('puppetserver ca list --all', list));
    assert.ok(list.stdout.includes(oldAgent), list.stdout);
  });

  it('takes a newer CRL of the root over PUT certificate_revocation_list, from pp_cli_auth only, and agents verify the new chain', async () => {
    const { cadir, ssldir } = oldCa();
    const bundle = await readFile(join(cadir, 'ca_crt.pem'), 'utf8');
    const root = await loadSigner(bundle, await readFile(join(cadir, 'root_key.pem'), 'utf8'));
    const [intermediate] = parseCertBundle(bundle);
    const ca = await readFile(join(ssldir, 'certs', 'ca.pem'), 'utf8');
    const admin = { cert: await readFile(join(ssldir, 'certs', `${oldAgent}.pem`), 'utf8'), key: await readFile(join(ssldir, 'private_keys', `${oldAgent}.pem`), 'utf8') };
    const crlChain = async () => parseCrlBundle((await httpsRequest({ port: ringmaster().port, path: '/puppet-ca/v1/certificate_revocation_list/ca', ca })).body);
    const before = await crlChain();
    const rootCrl = before.find((c) => c.issuerDn === root.cert.subjectDn) ?? assert.fail('no root CRL in the chain');
    const ownCrl = before.find((c) => c.issuerDn === intermediate!.subjectDn) ?? assert.fail('no CRL of the intermediate');
    const now = Date.now();
    const newer = await createCrl({ signer: root, number: (rootCrl.number ?? 0n) + 1n, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 365 * 86_400_000), revoked: [{ serial: 987_654_321n, date: new Date(now - 60_000) }] });
    const put = (body: string, id: { cert: string; key: string } | null = admin) =>
      httpsRequest({ port: ringmaster().port, path: '/puppet-ca/v1/certificate_revocation_list', method: 'PUT', ca, body, headers: { 'content-type': 'text/plain' }, ...(id ? { cert: id.cert, key: id.key } : {}) });

    // Only an operator certificate may replace CRLs.
    const anonymous = await put(newer, null);
    assert.equal(anonymous.status, 403, anonymous.body);
    assert.equal((await put('not a CRL')).status, 400);
    assert.match((await put('not a CRL')).body, /No valid CRLs submitted/);
    // A root CRL that revokes the intermediate would break every agent: refused, nothing written.
    const revokesIntermediate = await createCrl({ signer: root, number: (rootCrl.number ?? 0n) + 5n, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 86_400_000), revoked: [{ serial: intermediate!.serial, date: new Date(now - 60_000) }] });
    const refused = await put(revokesIntermediate);
    assert.equal(refused.status, 400, refused.body);
    assert.equal(refused.headers['x-ringmaster-error'], 'RM_CA_CRL_INVALID');
    assert.deepEqual((await crlChain()).map((c) => c.pem), before.map((c) => c.pem), 'a refused update changes nothing');

    const ok = await put(newer);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'Successfully updated CRLs.');
    const after = await crlChain();
    assert.equal(after.length, before.length);
    assert.equal(after.find((c) => c.issuerDn === root.cert.subjectDn)?.number, (rootCrl.number ?? 0n) + 1n);
    assert.ok(after.find((c) => c.issuerDn === root.cert.subjectDn)?.revoked.some((r) => r.serial === 987_654_321n));
    assert.equal(after.find((c) => c.issuerDn === intermediate!.subjectDn)?.pem, ownCrl.pem, 'the CA\'s own CRL is untouched');
    const onDisk = parseCrlBundle(await readFile(join(ringmaster().paths.caDir, 'ca_crl.pem'), 'utf8'));
    assert.deepEqual(onDisk.map((c) => c.pem), after.map((c) => c.pem));

    // A new agent downloads the bundle and the new CRL chain and checks both (certificate_revocation=chain).
    const name = uniqueCertname('crlchain', 'auto.test');
    const agent = await createAgent({ certname: name, port: ringmaster().port });
    agents.push(agent);
    const boot = await agent.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 0, describeRun('bootstrap with the updated CRL chain', boot));
    assert.deepEqual(parseCrlBundle(await readFile(agent.paths.crl, 'utf8')).map((c) => c.pem), after.map((c) => c.pem));
    assert.equal(parseCert(await readFile(agent.paths.cert, 'utf8')).issuerDn, intermediate!.subjectDn);
  });

  it('issues new certificates from the imported CA with serials continuing from its serial file', async () => {
    const name = uniqueCertname('new', 'auto.test');
    const agent = await createAgent({ certname: name, port: ringmaster().port });
    agents.push(agent);
    const boot = await agent.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 0, describeRun('bootstrap of a new agent', boot));

    const bundle = await readFile(join(oldCa().cadir, 'ca_crt.pem'), 'utf8');
    const intermediate = new X509Certificate(bundle);
    const cert = new X509Certificate(await readFile(agent.paths.cert));
    assert.ok(cert.checkIssued(intermediate), 'signed by the imported intermediate CA');

    const signed = await signedSerials(join(ringmaster().paths.caDir, 'signed'));
    for (const [n, s] of importedSerials) assert.equal(signed.get(n), s, `imported ${n} keeps its serial`);
    // ringmaster's own server cert is the other certificate it issued since the import, whether
    // or not it keeps a copy in signed/.
    const server = new X509Certificate(await readFile(join(ringmaster().paths.sslDir, 'certs', 'ringmaster.test.pem')));
    const issuedByName = new Map([...signed].filter(([n]) => !importedSerials.has(n)));
    issuedByName.set('ringmaster.test', BigInt(`0x${server.serialNumber}`));
    const issued = [...issuedByName.values()];
    const unique = [...new Set(issued)].sort((a, b) => (a < b ? -1 : 1));
    assert.equal(unique.length, issued.length, `serials issued after the import are distinct: ${issued.join(', ')}`);
    assert.equal(unique[0], importedNext, `the first serial after the import is the imported serial file's ${importedNext}`);
    const max = [...importedSerials.values()].reduce((a, b) => (a > b ? a : b), 0n);
    assert.ok(BigInt(`0x${cert.serialNumber}`) > max);

    const states = new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));
    assert.equal(states.get(oldAgent), 'signed');
    assert.equal(states.get(name), 'signed');
  });
});
