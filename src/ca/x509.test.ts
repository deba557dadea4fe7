import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { isRingmasterError } from '../lib/errors.ts';
import { oids, ppAuthCertExt } from './oids.ts';
import {
  createCaCertificate, createCrl, createCsr, generateKeyPair, issueCertificate, loadSigner, parseCert, parseCertBundle, parseCrl,
  parseCrlBundle, parseCsr, pemBlocks, verifyCrlSignature, verifyCsrSignature, type KeyPair, type Signer,
} from './x509.ts';

const DAY = 86_400_000;
const now = Date.UTC(2026, 0, 15, 12, 0, 0);
let dir: string;
let caKey: KeyPair;
let caPem: string;
let signer: Signer;
let agentKey: KeyPair;

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** stdout and stderr together, for the commands that report verification on stderr. */
function opensslAll(...args: string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

const matches = (code: string, message?: RegExp) => (err: unknown): boolean =>
  isRingmasterError(err) && err.code === code && (message === undefined || message.test(err.message));
const throwsWith = (code: string, fn: () => unknown, message?: RegExp): void => assert.throws(fn, matches(code, message));
const rejectsWith = (code: string, p: Promise<unknown>, message?: RegExp): Promise<void> => assert.rejects(p, matches(code, message));

const issue = (over: Partial<Parameters<typeof issueCertificate>[0]> = {}): Promise<string> =>
  issueCertificate({
    signer, commonName: 'agent1.example.com', publicKeySpki: parseCsr(csrPem).publicKeySpki, serial: 2n,
    notBefore: new Date(now - DAY), notAfter: new Date(now + 365 * DAY), subjectAltNames: [{ type: 'dns', value: 'agent1.example.com' }],
    copyExtensions: [], ...over,
  });
let csrPem: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rm-x509-'));
  caKey = await generateKeyPair({ type: 'rsa', bits: 2048 });
  caPem = await createCaCertificate({ commonName: 'Puppet CA: ca.example.com', keyPair: caKey, serial: 1n, notBefore: new Date(now - DAY), notAfter: new Date(now + 15 * 365 * DAY) });
  signer = await loadSigner(caPem, caKey.privateKeyPem);
  agentKey = await generateKeyPair({ type: 'rsa', bits: 2048 });
  csrPem = await createCsr({ commonName: 'agent1.example.com', keyPair: agentKey });
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('keys', () => {
  it('writes RSA keys as PKCS#1 and EC keys as SEC1, public keys as SPKI', async () => {
    assert.match(caKey.privateKeyPem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.match(caKey.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    const ec = await generateKeyPair({ type: 'ec', curve: 'P-384' });
    assert.match(ec.privateKeyPem, /^-----BEGIN EC PRIVATE KEY-----\n/);
    assert.equal(createPrivateKey(ec.privateKeyPem).asymmetricKeyDetails?.namedCurve, 'secp384r1');
  });
});

describe('CA certificate and signer', () => {
  it('has the puppetserver CA extension set', () => {
    const text = openssl('x509', '-in', file('ca.pem', caPem), '-noout', '-text');
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.match(text, /Netscape Comment:\s+Puppet Server Internal Certificate/);
    assert.match(text, /Subject: CN = Puppet CA: ca.example.com/);
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    const ca = signer.cert;
    assert.equal(ca.isCa, true);
    assert.equal(ca.subjectDn, 'CN=Puppet CA: ca.example.com');
    assert.equal(ca.issuerDn, ca.subjectDn);
    assert.equal(ca.serial, 1n);
    assert.ok(ca.subjectKeyId && ca.subjectKeyId === ca.authorityKeyId);
    assert.match(text, new RegExp(`Subject Key Identifier:\\s+${ca.subjectKeyId.toUpperCase().replace(/(..)(?!$)/g, '$1:')}`));
    assert.equal(openssl('verify', '-CAfile', file('ca.pem', caPem), file('ca.pem', caPem)).trim(), `${join(dir, 'ca.pem')}: OK`);
  });

  it('accepts a PKCS#8 key and picks the matching certificate out of a bundle', async () => {
    const pkcs8 = createPrivateKey(caKey.privateKeyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
    const otherKey = await generateKeyPair({ type: 'rsa', bits: 2048 });
    const root = await createCaCertificate({ commonName: 'Other Root', keyPair: otherKey, serial: 1n, notBefore: new Date(now), notAfter: new Date(now + DAY) });
    const s = await loadSigner(`${root}${caPem}`, pkcs8);
    assert.equal(s.cert.subjectDn, 'CN=Puppet CA: ca.example.com');
  });

  it('refuses a key that does not match, a non-RSA key, garbage and a non-CA certificate', async () => {
    const otherKey = await generateKeyPair({ type: 'rsa', bits: 2048 });
    await rejectsWith('RM_CA_DIR_INVALID', loadSigner(caPem, otherKey.privateKeyPem), /^ca_key.pem does not match ca_crt.pem$/);
    const ec = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    await rejectsWith('RM_CA_DIR_INVALID', loadSigner(caPem, ec.privateKeyPem), /RSA/);
    await rejectsWith('RM_CA_DIR_INVALID', loadSigner(caPem, 'not a key'), /ca_key.pem/);
    await rejectsWith('RM_CA_DIR_INVALID', loadSigner('', caKey.privateKeyPem), /does not match/);
    await rejectsWith('RM_CA_DIR_INVALID', loadSigner(await issue(), agentKey.privateKeyPem), /not a CA certificate/);
  });
});

describe('issueCertificate', () => {
  it('issues the puppetserver agent profile, verifiable by openssl', async () => {
    const csr = parseCsr(await createCsr({ commonName: 'agent1.example.com', keyPair: agentKey, extensionRequests: [{ oid: `${ppAuthCertExt}.13`, value: 'web' }, { oid: '1.3.6.1.4.1.34380.1.1.12', value: 'production' }] }));
    const pem = await issue({
      serial: 0x80n, copyExtensions: csr.extensionRequests, cliAuth: true,
      subjectAltNames: [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.0.0.5' }, { type: 'dns', value: 'agent1.example.com' }],
    });
    const certFile = file('agent.pem', pem);
    assert.equal(openssl('verify', '-CAfile', file('ca.pem', caPem), certFile).trim(), `${certFile}: OK`);
    assert.match(openssl('verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), certFile), /OK/);
    assert.match(openssl('verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), certFile), /OK/);
    const text = openssl('x509', '-in', certFile, '-noout', '-text');
    assert.match(text, /Serial Number: 128 \(0x80\)/);
    assert.match(text, /Issuer: CN = Puppet CA: ca.example.com/);
    assert.match(text, /Subject: CN = agent1.example.com/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Extended Key Usage: critical\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.match(text, /Netscape Comment:\s+Puppet Server Internal Certificate/);
    assert.match(text, /Subject Alternative Name:\s+DNS:puppet, IP Address:10.0.0.5, DNS:agent1.example.com/);
    assert.doesNotMatch(text, /Alternative Name: critical/);

    const cert = parseCert(pem);
    assert.equal(cert.serial, 128n);
    assert.equal(cert.commonName, 'agent1.example.com');
    assert.equal(cert.issuerDn, signer.cert.subjectDn);
    assert.equal(cert.authorityKeyId, signer.cert.subjectKeyId);
    assert.equal(cert.isCa, false);
    assert.deepEqual(cert.subjectAltNames, [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.0.0.5' }, { type: 'dns', value: 'agent1.example.com' }]);
    assert.deepEqual(cert.publicKeySpki, csr.publicKeySpki);
    const byOid = new Map(cert.extensions.map((e) => [e.oid, e]));
    assert.equal(byOid.get(oids.ppCliAuth)?.text, 'true');
    assert.equal(byOid.get(`${ppAuthCertExt}.13`)?.text, 'web');
    assert.equal(byOid.get('1.3.6.1.4.1.34380.1.1.12')?.text, 'production');
    assert.deepEqual(byOid.get('1.3.6.1.4.1.34380.1.1.12')?.der, csr.extensionRequests[1]?.der);
    assert.equal(byOid.get(oids.basicConstraints)?.critical, true);
    const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(text)?.[1];
    assert.equal(cert.subjectKeyId?.toUpperCase().replace(/(..)(?!$)/g, '$1:'), ski);
    const fp = openssl('x509', '-in', certFile, '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
    assert.equal(cert.fingerprints.SHA256, fp);
  });

  it('encodes IPv6, IDN and far-future dates correctly and omits an empty SAN', async () => {
    const pem = await issue({
      notAfter: new Date(Date.UTC(2061, 5, 1)),
      subjectAltNames: [{ type: 'ip', value: '2001:db8::1' }, { type: 'ip', value: '::ffff:10.0.0.1' }, { type: 'dns', value: 'ünï.example' }],
    });
    const text = openssl('x509', '-in', file('v6.pem', pem), '-noout', '-text');
    assert.match(text, /IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:A00:1, DNS:xn--n-nga1b.example/);
    assert.match(text, /Not After : Jun {2}1 00:00:00 2061 GMT/);
    const cert = parseCert(pem);
    assert.deepEqual(cert.subjectAltNames.map((s) => s.value), ['2001:db8::1', '::ffff:a00:1', 'xn--n-nga1b.example']);
    assert.equal(cert.notAfter.toISOString(), '2061-06-01T00:00:00.000Z');
    const bare = parseCert(await issue({ subjectAltNames: [] }));
    assert.equal(bare.extensions.some((e) => e.oid === oids.subjectAltName), false);
  });

  it('refuses duplicate extensions, bad serials, bad keys and bad SANs', async () => {
    const dup = { oid: oids.basicConstraints, critical: true, der: Uint8Array.of(0x30, 0x00) };
    await rejectsWith('RM_CA_CSR_EXTENSION_FORBIDDEN', issue({ copyExtensions: [dup] }), /twice/);
    await rejectsWith('RM_INTERNAL', issue({ serial: 0n }), /serial/);
    await rejectsWith('RM_INTERNAL', issue({ serial: -5n }), /serial/);
    await rejectsWith('RM_CA_CSR_MALFORMED', issue({ publicKeySpki: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00) }));
    await rejectsWith('RM_CA_CSR_ALT_NAMES', issue({ subjectAltNames: [{ type: 'ip', value: '300.1.1.1' }] }));
    await rejectsWith('RM_CA_CSR_ALT_NAMES', issue({ subjectAltNames: [{ type: 'ip', value: 'fe80::1%eth0' }] }));
    await rejectsWith('RM_INTERNAL', issue({ signer: { cert: signer.cert } }), /loadSigner/);
  });

  it('issues for EC agent keys too', async () => {
    const ec = await generateKeyPair({ type: 'ec', curve: 'P-256' });
    const csr = parseCsr(await createCsr({ commonName: 'ec.example.com', keyPair: ec }));
    assert.equal(csr.publicKeyAlgorithm, 'ec');
    const pem = await issue({ commonName: 'ec.example.com', publicKeySpki: csr.publicKeySpki });
    const certFile = file('ec.pem', pem);
    assert.equal(openssl('verify', '-CAfile', file('ca.pem', caPem), certFile).trim(), `${certFile}: OK`);
  });
});

describe('CRLs', () => {
  it('creates a v2 CRL with number, AKI and keyCompromise entries that openssl enforces', async () => {
    const cert = await issue({ serial: 0xabcdn });
    const crlPem = await createCrl({ signer, number: 7n, thisUpdate: new Date(now), nextUpdate: new Date(now + 5 * 365 * DAY), revoked: [{ serial: 0xabcdn, date: new Date(now) }, { serial: 3n, date: new Date(now), reason: 4 }, { serial: 3n, date: new Date(now) }] });
    const crlFile = file('crl.pem', crlPem);
    const text = openssl('crl', '-in', crlFile, '-noout', '-text');
    assert.match(text, /Version 2/);
    assert.match(text, /CRL Number:\s+7/);
    assert.match(text, /Authority Key Identifier/);
    assert.match(text, /Serial Number: ABCD\s+Revocation Date: Jan 15 12:00:00 2026 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise/);
    assert.match(text, /Superseded/);
    assert.match(opensslAll('crl', '-in', crlFile, '-CAfile', join(dir, 'ca.pem'), '-noout'), /verify OK/);
    assert.throws(() => openssl('verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', join(dir, 'ca.pem'), file('revoked.pem', cert)), /certificate revoked/);

    const crl = parseCrl(crlPem);
    assert.equal(crl.number, 7n);
    assert.equal(crl.issuerDn, signer.cert.subjectDn);
    assert.equal(crl.authorityKeyId, signer.cert.subjectKeyId);
    assert.equal(crl.thisUpdate.getTime(), now);
    assert.deepEqual(crl.revoked, [{ serial: 0xabcdn, date: new Date(now), reason: 1 }, { serial: 3n, date: new Date(now), reason: 4 }]);
    assert.equal(await verifyCrlSignature(crl, signer.cert), true);
    const stranger = await createCaCertificate({ commonName: 'Puppet CA: ca.example.com', keyPair: agentKey, serial: 1n, notBefore: new Date(now), notAfter: new Date(now + DAY) });
    assert.equal(await verifyCrlSignature(crl, parseCert(stranger)), false);
  });

  it('parses an empty CRL and a chain in order', async () => {
    const a = await createCrl({ signer, number: 0n, thisUpdate: new Date(now), nextUpdate: new Date(now + DAY), revoked: [] });
    const b = await createCrl({ signer, number: 1n, thisUpdate: new Date(now), nextUpdate: new Date(now + DAY), revoked: [{ serial: 9n, date: new Date(now) }] });
    const chain = parseCrlBundle(`${a}\r\n${b}`.replace(/\n/g, '\r\n'));
    assert.deepEqual(chain.map((c) => c.number), [0n, 1n]);
    assert.deepEqual(chain[0]?.revoked, []);
    throwsWith('RM_CA_DIR_INVALID', () => parseCrl(`${a}${b}`), /expected one/);
    throwsWith('RM_CA_DIR_INVALID', () => parseCrl(a.replace(/[A-Za-z]{8}\n/, '\n')), /not a PEM CRL/);
  });
});

describe('createCsr / parseCsr', () => {
  it('builds requests openssl verifies, with Puppet-style attributes and extensions', async () => {
    const pem = await createCsr({
      commonName: 'web01.example.com', keyPair: agentKey, challengePassword: 'Tok3n-42',
      subjectAltNames: [{ type: 'dns', value: 'web01' }, { type: 'ip', value: '192.0.2.7' }],
      extensionRequests: [{ oid: '1.3.6.1.4.1.34380.1.1.13', value: 'webserver' }],
    });
    const csrFile = file('req.pem', pem);
    assert.match(opensslAll('req', '-in', csrFile, '-noout', '-verify'), /verify OK/);
    assert.match(openssl('asn1parse', '-in', csrFile), /PRINTABLESTRING\s+:Tok3n-42/);
    const csr = parseCsr(pem);
    assert.equal(csr.commonName, 'web01.example.com');
    assert.equal(csr.subjectDn, 'CN=web01.example.com');
    assert.equal(csr.challengePassword, 'Tok3n-42');
    assert.deepEqual(csr.attributes, [{ oid: oids.challengePassword, values: ['Tok3n-42'] }]);
    assert.deepEqual(csr.subjectAltNames, [{ type: 'dns', value: 'web01' }, { type: 'ip', value: '192.0.2.7' }]);
    assert.deepEqual(csr.extensionRequests.map((e) => [e.oid, e.critical, e.text]), [['1.3.6.1.4.1.34380.1.1.13', false, 'webserver']]);
    assert.equal(csr.publicKeyAlgorithm, 'rsa');
    assert.equal(await verifyCsrSignature(csr), true);
    const utf = parseCsr(await createCsr({ commonName: 'x', keyPair: agentKey, challengePassword: 'pässword_*' }));
    assert.equal(utf.challengePassword, 'pässword_*');
  });

  it('parses what openssl req produces: SANs, a pp_role UTF8String and a challengePassword', async () => {
    const keyFile = file('agent.key', agentKey.privateKeyPem);
    const cfg = file('req.cnf', '[req]\ndistinguished_name = dn\nattributes = attrs\nprompt = no\n[dn]\nCN = x\n[attrs]\nchallengePassword = psk-from-csr-attributes\n');
    // The CN comes from the config: -subj would drop the [attrs] section.
    const pem = openssl('req', '-new', '-key', keyFile, '-config', cfg,
      '-addext', 'subjectAltName=DNS:x,DNS:y', '-addext', '1.3.6.1.4.1.34380.1.1.13=ASN1:UTF8String:webserver');
    const csr = parseCsr(pem);
    assert.equal(csr.commonName, 'x');
    assert.deepEqual(csr.subjectAltNames, [{ type: 'dns', value: 'x' }, { type: 'dns', value: 'y' }]);
    assert.deepEqual(csr.extensionRequests.map((e) => [e.oid, e.text]), [['1.3.6.1.4.1.34380.1.1.13', 'webserver']]);
    assert.equal(csr.challengePassword, 'psk-from-csr-attributes');
    assert.equal(await verifyCsrSignature(csr), true);
    const multi = parseCsr(openssl('req', '-new', '-key', keyFile, '-subj', '/C=US/O=Acme, Inc./CN=multi', '-addext', 'subjectAltName=email:a@b.example,URI:https://x.example/'));
    assert.equal(multi.subjectDn, 'CN=multi,O=Acme\\, Inc.,C=US');
    assert.deepEqual(multi.otherAltNames, ['email:a@b.example', 'URI:https://x.example/']);
    assert.deepEqual(multi.subjectAltNames, []);
  });

  it('detects a tampered signature', async () => {
    const der = Buffer.from(pemBlocks(csrPem, 'CERTIFICATE REQUEST')[0]!.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der.writeUInt8(der.readUInt8(der.length - 5) ^ 0x01, der.length - 5);
    const tampered = parseCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);
    assert.equal(await verifyCsrSignature(tampered), false);
    const renamed = parseCsr(csrPem.replace(/\n/g, '').replace(/-----(BEGIN|END) CERTIFICATE REQUEST-----/g, '\n')
      .replace(/^\n(.*)\n$/s, (_, b64: string) => `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(Buffer.from(b64, 'base64').toString('latin1').replace('agent1', 'agent2'), 'latin1').toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`));
    assert.equal(renamed.commonName, 'agent2.example.com');
    assert.equal(await verifyCsrSignature(renamed), false);
    assert.equal(await verifyCsrSignature(parseCsr(csrPem)), true);
  });

  it('refuses garbage, truncation and two blocks with RM_CA_CSR_MALFORMED', () => {
    const lines = csrPem.trim().split('\n');
    const cases: [string, RegExp][] = [
      ['', /no PEM/], ['hello world', /no PEM/], [lines.slice(0, -1).join('\n'), /no PEM/],
      [[...lines.slice(0, 3), lines[lines.length - 1]].join('\n'), /cannot be parsed/],
      ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----', /cannot be parsed/],
      [`${csrPem}${csrPem}`, /exactly one/],
    ];
    for (const [input, message] of cases) throwsWith('RM_CA_CSR_MALFORMED', () => parseCsr(input), message);
    throwsWith('RM_CA_CSR_MALFORMED', () => parseCsr(undefined as unknown as string));
  });

  it('reads 128-bit UUID arcs but refuses absurdly long ones', async () => {
    const uuidArc = `2.25.${(2n ** 127n + 12345n).toString()}`;
    const ok = parseCsr(await createCsr({ commonName: 'x', keyPair: agentKey, extensionRequests: [{ oid: uuidArc, value: 'v' }] }));
    assert.equal(ok.extensionRequests[0]?.oid, uuidArc);
    const huge = await createCsr({ commonName: 'x', keyPair: agentKey, extensionRequests: [{ oid: `1.2.${(2n ** 400n).toString()}`, value: 'v' }] });
    throwsWith('RM_CA_CSR_MALFORMED', () => parseCsr(huge), /arc too long/);
    await rejectsWith('RM_CA_CSR_MALFORMED', createCsr({ commonName: 'x', keyPair: agentKey, extensionRequests: [{ oid: 'pp_role', value: 'v' }] }), /object identifier/);
  });

  it('never throws anything but RM_CA_CSR_MALFORMED on corrupted DER', () => {
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const copy = Buffer.from(i % 3 === 0 ? der.subarray(0, rnd(der.length)) : der);
      for (let j = 0; j < 1 + rnd(4); j++) copy[rnd(copy.length)] = rnd(256);
      try {
        parseCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${copy.toString('base64')}\n-----END CERTIFICATE REQUEST-----`);
      } catch (err) {
        assert.ok(isRingmasterError(err, 'RM_CA_CSR_MALFORMED'), `unexpected ${String(err)}`);
      }
    }
  });
});

describe('PEM handling', () => {
  it('splits blocks tolerantly and rejects bad certificates with RM_CA_DIR_INVALID', async () => {
    const second = await issue({ serial: 5n });
    const bundle = `junk\r\n${caPem.replace(/\n/g, '\r\n')}\r\n${second}`;
    assert.equal(pemBlocks(bundle, 'CERTIFICATE').length, 2);
    assert.deepEqual(parseCertBundle(bundle).map((c) => c.serial), [1n, 5n]);
    assert.equal(pemBlocks(bundle, 'CERTIFICATE')[0], caPem);
    throwsWith('RM_CA_DIR_INVALID', () => parseCert(bundle), /^not a PEM certificate: expected one/);
    throwsWith('RM_CA_DIR_INVALID', () => parseCert('nothing'), /^not a PEM certificate/);
    throwsWith('RM_CA_DIR_INVALID', () => parseCertBundle(`${caPem}-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n`), /certificate 2/);
  });
});

const javaClasspath = ['ssl-utils', 'bcprov', 'bcpkix', 'bcutil'].map((j) => `/usr/share/java/${j}.jar`);
const javaSource = `import com.puppetlabs.ssl_utils.SSLUtils; import java.io.*; import java.nio.file.*; import java.util.*;
public class Interop { static Reader r(String f) throws IOException { return Files.newBufferedReader(Path.of(f)); }
  public static void main(String[] a) throws Exception { String d = a[0];
    var ca = SSLUtils.pemToCaCert(r(d + "/ca_crt.pem"), r(d + "/ca_key.pem"));
    var cert = SSLUtils.pemToCerts(r(d + "/agent.pem")).get(0); cert.verify(ca.getPublicKey()); cert.checkValidity();
    var crl = SSLUtils.pemToCRL(r(d + "/crl.pem")); crl.verify(ca.getPublicKey());
    var csr = SSLUtils.pemToCertificateRequest(r(d + "/req.pem"));
    System.out.println(SSLUtils.getCnFromX500Principal(cert.getSubjectX500Principal()) + "|" + SSLUtils.getSerialNumber(cert) + "|"
      + SSLUtils.getFingerprint(cert, "SHA-256") + "|" + new TreeSet<>(cert.getCriticalExtensionOIDs()) + "|" + SSLUtils.isRevoked(crl, cert) + "|" + SSLUtils.isSignatureValid(csr));
    try (Writer w = Files.newBufferedWriter(Path.of(d + "/java-req.pem"))) {
      SSLUtils.writeToPEM(SSLUtils.generateCertificateRequest(SSLUtils.generateKeyPair(2048), "CN=java.example.com", List.of()), w); } } }`;
const rubySource = `require "puppet"; require "json"; Puppet::SSL::Oids.register_puppet_oids; d = ARGV[0]
cert = OpenSSL::X509::Certificate.new(File.read(d + "/agent.pem")); req = Puppet::SSL::CertificateRequest.from_s(File.read(d + "/req.pem"))
store = OpenSSL::X509::Store.new; store.add_cert(OpenSSL::X509::Certificate.new(File.read(d + "/ca_crt.pem")))
store.add_crl(OpenSSL::X509::CRL.new(File.read(d + "/crl.pem"))); store.flags = OpenSSL::X509::V_FLAG_CRL_CHECK
puts JSON.generate({ ext: Puppet::SSL::Certificate.from_instance(cert).custom_extensions, sans: Puppet::SSL::Certificate.from_instance(cert).subject_alt_names,
  reqExt: req.request_extensions, attrs: req.custom_attributes, verified: store.verify(cert), error: store.error_string })`;

describe('interoperability with the real Puppet tooling on this machine', () => {
  let lab: string;
  before(async () => {
    lab = mkdtempSync(join(tmpdir(), 'rm-x509-interop-'));
    const req = await createCsr({ commonName: 'agent9.example.com', keyPair: agentKey, challengePassword: 'psk', extensionRequests: [{ oid: '1.3.6.1.4.1.34380.1.1.13', value: 'web' }] });
    const csr = parseCsr(req);
    const cert = await issue({ commonName: 'agent9.example.com', serial: 0xff01n, copyExtensions: csr.extensionRequests, notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY),
      subjectAltNames: [{ type: 'dns', value: 'agent9.example.com' }, { type: 'ip', value: '2001:db8::5' }] });
    const crl = await createCrl({ signer, number: 1n, thisUpdate: new Date(Date.now() - 1000), nextUpdate: new Date(Date.now() + DAY), revoked: [{ serial: 0xff01n, date: new Date() }] });
    const files = { 'ca_crt.pem': caPem, 'ca_key.pem': caKey.privateKeyPem, 'agent.pem': cert, 'crl.pem': crl, 'req.pem': req };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(lab, name), content);
  });
  after(() => rmSync(lab, { recursive: true, force: true }));

  it('puppetserver\'s ssl-utils (BouncyCastle) loads the CA, verifies cert, CRL and CSR, and makes CSRs we verify',
    { skip: !javaClasspath.every((j) => existsSync(j)) && 'puppetserver ssl-utils jars not installed' }, async () => {
      writeFileSync(join(lab, 'Interop.java'), javaSource);
      const out = execFileSync('java', ['-cp', javaClasspath.join(':'), join(lab, 'Interop.java'), lab], { encoding: 'utf8' }).trim();
      const cert = parseCert(readFileSync(join(lab, 'agent.pem'), 'utf8'));
      assert.equal(out, `agent9.example.com|65281|${cert.fingerprints.SHA256.replace(/:/g, '').toLowerCase()}|[2.5.29.15, 2.5.29.19, 2.5.29.37]|true|true`);
      const javaCsr = parseCsr(readFileSync(join(lab, 'java-req.pem'), 'utf8'));
      assert.equal(javaCsr.commonName, 'java.example.com');
      assert.equal(await verifyCsrSignature(javaCsr), true);
    });

  it('the Puppet agent\'s Ruby code reads our extensions, attributes and SANs and enforces our CRL',
    { skip: !existsSync('/usr/bin/puppet') && 'puppet-agent not installed' }, () => {
      const out = JSON.parse(execFileSync('ruby', ['-e', rubySource, lab], { encoding: 'utf8' })) as Record<string, unknown>;
      assert.deepEqual(out, {
        ext: [{ oid: 'pp_role', value: 'web' }], sans: ['DNS:agent9.example.com', 'IP Address:2001:DB8:0:0:0:0:0:5'],
        reqExt: [{ oid: 'pp_role', value: 'web' }], attrs: [{ oid: 'challengePassword', value: 'psk' }], verified: false, error: 'certificate revoked',
      });
    });
});
