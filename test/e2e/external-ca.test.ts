// An external CA: ringmaster runs no CA of its own (`ca.enabled: false`) and a real Puppet Server
// is both the certificate authority (pool `ca`) and the compiler (pool `compilers`). ringmaster
// gets its own certificate from that CA at first start, agents bootstrap and run through
// ringmaster against it, and a revocation made on the Puppet Server reaches ringmaster's listener
// through the CRL it refetches.
//
// The server runs in header mode (allow-header-cert-info), as a compiler behind ringmaster does:
// it takes each request's identity from the X-Client-* headers ringmaster sets, and does not check
// those certificates against its own CRL. So the refusal of a revoked agent seen here is
// ringmaster's, not the server's. Header mode also makes the server ignore TLS client
// certificates, so `puppetserver ca revoke` is refused; `revokeOnServer` sends what it needs.
import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, type Reply, type TlsIdentity } from '../helpers/https-client.ts';
import { createAgent, describeRun, pollUntil, runProcess, skipUnlessInstalled, uniqueCertname, type Agent, type RunResult } from '../helpers/puppet.ts';
import { caAdminRequest, revokeOnServer, startPuppetserver, type Puppetserver } from '../helpers/puppetserver.ts';
import { startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent', 'puppetserver', 'openssl');

const rmCertname = 'ringmaster.test';
const manifest = 'notify { "compiled-by ${settings::confdir}": }\n';
const succeeded = (r: RunResult): boolean => r.code === 0 || r.code === 2;
const serialOf = (pem: string | Buffer): bigint => BigInt(`0x${new X509Certificate(pem).serialNumber}`);

/** Serials listed in a PEM CRL, read with the openssl CLI's text form. */
async function crlSerials(pem: string): Promise<bigint[]> {
  const r = await runProcess('openssl', ['crl', '-noout', '-text'], { input: pem });
  assert.equal(r.code, 0, describeRun('openssl crl -text', r));
  return [...r.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => BigInt(`0x${m[1]}`));
}

describe('an external CA: a real Puppet Server signs for ringmaster and its agents', { skip, timeout: 600_000 }, () => {
  let ps: Puppetserver | undefined;
  let rm: Ringmaster | undefined;
  let caPem = '';
  const agents: Agent[] = [];
  const server = (): Puppetserver => ps ?? assert.fail('puppetserver did not start');
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');
  const withLogs = (msg: string): string =>
    `${msg}\n--- ringmaster (tail)\n${rm?.logs().slice(-4000) ?? ''}\n--- puppetserver (tail)\n${ps?.log().slice(-3000) ?? ''}`;

  before(async () => {
    // allowSubjectAltNames: ringmaster's own CSR asks for DNS:localhost, which the packaged ca.conf
    // refuses (400 "contains extra subject alternative names …, which are disallowed") even with
    // autosign. headerCertInfo: requests forwarded by ringmaster are authorised as the agent named
    // in X-Client-*.
    ps = await startPuppetserver({ autosign: true, allowSubjectAltNames: true, headerCertInfo: true, keylength: 2048, manifest, startTimeoutMs: 180_000 });
    const caFile = join(ps.ssldir, 'certs', 'ca.pem');
    caPem = await readFile(caFile, 'utf8');
    // The certificate names localhost (not 127.0.0.1), and Jetty wants Host to match the SNI name.
    const member = [{ name: 'ps', url: `https://localhost:${ps.port}` }];
    rm = await startRingmaster({
      server: { certname: rmCertname, dnsAltNames: ['localhost'] },
      ca: { enabled: false, external: { pool: 'ca', caFile, crlRefresh: '1s', waitForCert: '60s' } },
      pools: {
        ca: { members: member, upstreamTls: { clientCert: true } },
        compilers: { members: member, upstreamTls: { clientCert: true } },
      },
      // Key generation, the CSR, autosign and the first CRL all happen before "listening".
      startTimeoutMs: 120_000,
    });
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await rm?.cleanup();
    await ps?.cleanup();
  });

  const newAgent = async (prefix: string): Promise<Agent> => {
    const a = await createAgent({ certname: uniqueCertname(prefix, 'external.test'), port: ringmaster().port });
    agents.push(a);
    return a;
  };
  const bootstrapped = async (prefix: string): Promise<Agent> => {
    const a = await newAgent(prefix);
    const boot = await a.sslBootstrap({ waitforcert: 1, maxwaitforcert: 60, timeoutMs: 90_000 });
    assert.equal(boot.code, 0, withLogs(describeRun('puppet ssl bootstrap through ringmaster', boot)));
    return a;
  };
  const identityOf = async (a: Agent): Promise<TlsIdentity> => ({ cert: await readFile(a.paths.cert, 'utf8'), key: await readFile(a.paths.key, 'utf8') });
  const nodeRequest = async (a: Agent, agent?: HttpsAgent): Promise<Reply> =>
    call(ringmaster().port, 'GET', `/puppet/v3/node/${a.certname}?environment=production`, {
      ca: caPem,
      identity: await identityOf(a),
      headers: { Accept: 'application/json' },
      ...(agent ? { agent } : {}),
    });

  it("ringmaster's own key, certificate and CRL come from the external CA, kept in <stateDir>/ssl", async () => {
    const ssl = ringmaster().paths.sslDir;
    const ca = new X509Certificate(caPem);
    const certPem = await readFile(join(ssl, 'certs', `${rmCertname}.pem`), 'utf8');
    const cert = new X509Certificate(certPem);
    assert.equal(cert.subject, `CN=${rmCertname}`);
    assert.equal(cert.issuer, ca.subject, 'issued by the puppetserver CA');
    assert.ok(cert.checkIssued(ca), 'checkIssued against the puppetserver CA');
    assert.ok(cert.verify(ca.publicKey), "signature verifies with the puppetserver CA's key");
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    // The server's CA recorded it as one of its own.
    const signed = await readFile(join(server().cadir, 'signed', `${rmCertname}.pem`), 'utf8');
    assert.equal(serialOf(signed), serialOf(certPem));
    // The key ringmaster generated is the certificate's.
    const key = createPublicKey(await readFile(join(ssl, 'private_keys', `${rmCertname}.pem`), 'utf8'));
    assert.ok(key.equals(cert.publicKey), 'private key matches the certificate');
    assert.equal(new X509Certificate(await readFile(join(ssl, 'certs', 'ca.pem'))).fingerprint256, ca.fingerprint256, 'certs/ca.pem is the external CA');
    assert.ok(existsSync(join(ssl, 'crl.pem')), 'crl.pem fetched');
    assert.ok(!existsSync(join(ringmaster().paths.caDir, 'ca_key.pem')), 'no CA key of its own');
  });

  it("GET /puppet-ca/v1/certificate/ca through ringmaster is the puppetserver's CA certificate", async () => {
    // Trusting only the puppetserver CA also checks that ringmaster's listener presents the
    // certificate that CA issued.
    const r = await call(ringmaster().port, 'GET', '/puppet-ca/v1/certificate/ca', { ca: caPem });
    assert.equal(r.status, 200, withLogs(r.body));
    const served = new X509Certificate(r.body);
    assert.equal(served.fingerprint256, new X509Certificate(caPem).fingerprint256);
    assert.equal(served.subject, `CN=Puppet CA: ${server().certname}`);
  });

  it('a real agent bootstraps through ringmaster (autosigned by the puppetserver) and gets a catalog compiled there', async () => {
    const a = await bootstrapped('agent');
    const cert = new X509Certificate(await readFile(a.paths.cert));
    assert.ok(cert.verify(new X509Certificate(caPem).publicKey), "the agent's certificate is the puppetserver CA's");
    assert.ok(existsSync(join(server().cadir, 'signed', `${a.certname}.pem`)), 'in the puppetserver CA signed/');
    assert.equal(await readFile(a.paths.caCert, 'utf8').then((p) => new X509Certificate(p).fingerprint256), new X509Certificate(caPem).fingerprint256);
    const run = await a.run(['agent', '--test', '--waitforcert', '0'], { timeoutMs: 180_000 });
    assert.ok(succeeded(run), withLogs(describeRun('puppet agent --test through ringmaster', run)));
    assert.match(run.stdout, new RegExp(`^Notice: compiled-by ${join(server().root, 'confdir').replace(/[/.]/g, '\\$&')}$`, 'm'));
  });

  it('an agent revoked on the puppetserver is refused by ringmaster once it refetches the CRL; others are served', async () => {
    const victim = await bootstrapped('revoked');
    const bystander = await bootstrapped('bystander');
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await nodeRequest(victim)).status, 200, 'served before the revocation');
      assert.equal((await nodeRequest(victim, keepAlive)).status, 200, 'served before the revocation (kept-alive connection)');
      assert.equal((await nodeRequest(bystander)).status, 200);

      await revokeOnServer(server(), victim.certname);
      const status = await caAdminRequest(server(), 'GET', `/puppet-ca/v1/certificate_status/${victim.certname}`);
      assert.equal((JSON.parse(status.body) as { state: string }).state, 'revoked', status.body);
      const crl = await call(server().port, 'GET', '/puppet-ca/v1/certificate_revocation_list/ca', { ca: caPem, headers: { Host: `localhost:${server().port}` } });
      assert.equal(crl.status, 200, crl.body);
      const serial = serialOf(await readFile(victim.paths.cert));
      assert.ok((await crlSerials(crl.body)).includes(serial), `serial ${serial} in the puppetserver CRL`);

      // crlRefresh is 1s: a fresh connection (a new handshake) is refused within a few seconds.
      const refused = await pollUntil(
        'a fresh connection with the revoked certificate to be refused',
        async () => {
          const r = await nodeRequest(victim);
          return r.status === 200 ? undefined : r;
        },
        { timeoutMs: 15_000, intervalMs: 250 },
      ).catch((err: Error) => assert.fail(withLogs(err.message)));
      assert.deepEqual([refused.status, refused.headers['x-ringmaster-error']], [403, 'RM_TLS_PEER_REJECTED'], withLogs(refused.body));
      // The connection opened before the revocation is refused as well.
      const kept = await nodeRequest(victim, keepAlive);
      assert.deepEqual([kept.status, kept.headers['x-ringmaster-error']], [403, 'RM_TLS_PEER_REJECTED'], kept.body);
      // ringmaster's copy of the CRL on disk is the new one.
      const hostCrl = join(ringmaster().paths.sslDir, 'crl.pem');
      await pollUntil('the new CRL in <stateDir>/ssl/crl.pem', async () => ((await crlSerials(await readFile(hostCrl, 'utf8'))).includes(serial) ? true : undefined), { timeoutMs: 5_000, intervalMs: 250 });

      const other = await nodeRequest(bystander);
      assert.equal(other.status, 200, other.body);
      assert.equal((JSON.parse(other.body) as { name: string }).name, bystander.certname);
    } finally {
      keepAlive.destroy();
    }
  });
});
