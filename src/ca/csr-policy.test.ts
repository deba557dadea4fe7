import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRingmasterError } from '../lib/errors.ts';
import { oids, ppAuthCertExt, ppPrivCertExt, ppRegCertExt } from './oids.ts';
import { createCsr, generateKeyPair, parseCsr, type KeyPair, type ParsedCsr, type SubjectAltName } from './x509.ts';
import { checkSigning, checkSubmission, finalSubjectAltNames, validateCertname, type CsrPolicy } from './csr-policy.ts';

const strict: CsrPolicy = { allowSubjectAltNames: false, allowAuthorizationExtensions: false };
const lenient: CsrPolicy = { allowSubjectAltNames: true, allowAuthorizationExtensions: true };
let key: KeyPair;
let dir: string;

before(async () => {
  key = await generateKeyPair({ type: 'rsa', bits: 2048 });
  dir = mkdtempSync(join(tmpdir(), 'rm-csr-policy-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const fails = (code: string, message?: RegExp) => (err: unknown): boolean =>
  isRingmasterError(err) && err.code === code && (message === undefined || message.test(err.message));

async function csr(commonName: string, opts: { sans?: SubjectAltName[]; exts?: [string, string][]; challengePassword?: string } = {}): Promise<ParsedCsr> {
  const extensionRequests = (opts.exts ?? []).map(([oid, value]) => ({ oid, value }));
  const pem = await createCsr({ commonName, keyPair: key, subjectAltNames: opts.sans ?? [], extensionRequests, ...(opts.challengePassword === undefined ? {} : { challengePassword: opts.challengePassword }) });
  return parseCsr(pem);
}

function opensslCsr(subject: string, ...extra: string[]): ParsedCsr {
  const keyFile = join(dir, 'key.pem');
  writeFileSync(keyFile, key.privateKeyPem);
  return parseCsr(execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subject, ...extra], { encoding: 'utf8' }));
}

describe('validateCertname', () => {
  const good = [
    'agent1', 'agent1.example.com', 'web_01.example.com', '_service.example', 'ünï.example', 'a', '0', 'a-b.c-d', 'a_', 'x'.repeat(255),
    'db-01.eu-west-1.internal', 'ñandú.example', '数据.example',
    'a.-b', // puppetserver's label pattern lets a label after the first start with '-'
  ];
  for (const name of good) it(`accepts ${JSON.stringify(name.length > 40 ? `${name.slice(0, 10)}…` : name)}`, () => validateCertname(name));

  const bad: [string, RegExp][] = [
    ['Agent1', /lower case/], ['AGENT.example.com', /lower case/], ['Ünï.example', /lower case/],
    ['a/b', /'\/'/], ['../etc/passwd', /'\/'/], ['..', /empty label/], ['a..b', /empty label/], ['.a', /empty label/], ['a.', /empty label/],
    ['x-', /ends with '-'/], ['a.b-', /ends with '-'/], ['*.x', /wildcard/], ['x*', /wildcard/],
    ['a b', /whitespace or control/], ['a\u0007b', /whitespace or control/], ['a\tb', /whitespace or control/], ['a\nb', /whitespace or control/],
    ['a\u00a0b', /whitespace or control/], ['a\u200bb', /whitespace or control/], ['', /empty/], ['x'.repeat(256), /255/],
    ['-agent', /must start with/], ['a-.b', /label "a-"/], ['a@b', /label "a@b"/], ['a:b', /label/],
    ['a,b', /label/], ['a\\b', /label/], ['a%2fb', /label/],
  ];
  for (const [name, message] of bad) {
    it(`refuses ${JSON.stringify(name.length > 40 ? `${name.slice(0, 10)}…` : name)}`, () => {
      assert.throws(() => validateCertname(name), fails('RM_CA_CERTNAME_INVALID', message));
    });
  }
});

describe('checkSubmission', () => {
  it('accepts a plain Puppet agent request, with custom attributes and Puppet extensions', async () => {
    const req = await csr('agent1.example.com', {
      challengePassword: 'psk', exts: [[`${ppRegCertExt}.13`, 'webserver'], [`${ppPrivCertExt}.7`, 'site'], ['1.3.6.1.4.1.34380.1.1.12', 'production']],
    });
    await checkSubmission(req, 'agent1.example.com', strict);
  });

  it('requires the CN to equal the name in the URL', async () => {
    await assert.rejects(checkSubmission(await csr('agent1.example.com'), 'agent2.example.com', strict),
      fails('RM_CA_CSR_SUBJECT_MISMATCH', /^Instance name "agent1.example.com" does not match requested key "agent2.example.com"$/));
    await assert.rejects(checkSubmission(opensslCsr('/O=Acme'), 'agent1', strict), fails('RM_CA_CSR_SUBJECT_MISMATCH', /no common name/));
  });

  it('applies the certname rules to the CN', async () => {
    await assert.rejects(checkSubmission(await csr('Agent1'), 'Agent1', strict), fails('RM_CA_CERTNAME_INVALID', /lower case/));
    await assert.rejects(checkSubmission(await csr('x-'), 'x-', strict), fails('RM_CA_CERTNAME_INVALID'));
  });

  it('refuses a request whose signature does not verify', async () => {
    const pem = (await csr('agent1')).pem;
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der.writeUInt8(der.readUInt8(der.length - 3) ^ 0x40, der.length - 3);
    const tampered = parseCsr(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);
    await assert.rejects(checkSubmission(tampered, 'agent1', strict), fails('RM_CA_CSR_SIGNATURE', /agent1/));
  });

  it('always refuses pp_cli_auth, even when authorization extensions are allowed', async () => {
    const req = await csr('agent1', { exts: [[oids.ppCliAuth, 'true']] });
    await assert.rejects(checkSubmission(req, 'agent1', lenient), fails('RM_CA_CSR_EXTENSION_FORBIDDEN', /pp_cli_auth/));
  });

  it('refuses extensions outside the Puppet arcs and lists them', async () => {
    const req = await csr('agent1', { exts: [['1.2.3.4', 'x'], [`${ppRegCertExt}.1`, 'uuid'], [oids.basicConstraints, 'y']] });
    await assert.rejects(checkSubmission(req, 'agent1', lenient),
      fails('RM_CA_CSR_EXTENSION_FORBIDDEN', /^Found extensions that are not permitted: 1\.2\.3\.4, 2\.5\.29\.19$/));
    const arcItself = await csr('agent1', { exts: [['1.3.6.1.4.1.34380.1.1', 'x']] });
    await assert.rejects(checkSubmission(arcItself, 'agent1', lenient), fails('RM_CA_CSR_EXTENSION_FORBIDDEN'));
  });

  it('refuses authorization extensions unless the policy allows them', async () => {
    const req = await csr('agent1', { exts: [[`${ppAuthCertExt}.13`, 'admin']] });
    await assert.rejects(checkSubmission(req, 'agent1', strict), fails('RM_CA_CSR_AUTH_EXTENSION', /ca\.allowAuthorizationExtensions/));
    await checkSubmission(req, 'agent1', { ...strict, allowAuthorizationExtensions: true });
  });

  it('refuses SANs that are wildcards or neither DNS nor IP', async () => {
    const wild = await csr('agent1', { sans: [{ type: 'dns', value: '*.example.com' }] });
    await assert.rejects(checkSubmission(wild, 'agent1', lenient), fails('RM_CA_CSR_ALT_NAMES', /DNS:\*\.example\.com contains a wildcard/));
    const email = opensslCsr('/CN=agent1', '-addext', 'subjectAltName=DNS:agent1,email:root@example.com');
    await assert.rejects(checkSubmission(email, 'agent1', lenient), fails('RM_CA_CSR_ALT_NAMES', /email:root@example\.com/));
  });

  it('leaves alternative names other than the CN to the signing check', async () => {
    await checkSubmission(await csr('agent1', { sans: [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.1.2.3' }] }), 'agent1', strict);
  });
});

describe('checkSigning', () => {
  const sign = { ...strict, allowDnsAltNames: false };

  it('allows no SAN or a SAN of just DNS:<cn>', async () => {
    checkSigning(await csr('agent1'), sign);
    checkSigning(await csr('agent1', { sans: [{ type: 'dns', value: 'agent1' }] }), sign);
  });

  it('refuses other SANs unless the configuration or the sign flag allows them', async () => {
    const req = await csr('agent1', { sans: [{ type: 'dns', value: 'agent1' }, { type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.1.2.3' }] });
    assert.throws(() => checkSigning(req, sign), fails('RM_CA_CSR_ALT_NAMES',
      /^CSR 'agent1' contains subject alternative names \(DNS:agent1, DNS:puppet, IP:10\.1\.2\.3\), which are disallowed\. .*ca\.allowSubjectAltNames.*--allow-dns-alt-names/));
    checkSigning(req, { ...sign, allowDnsAltNames: true });
    checkSigning(req, { ...sign, allowSubjectAltNames: true });
    const ipOnly = await csr('agent1', { sans: [{ type: 'ip', value: '10.1.2.3' }] });
    assert.throws(() => checkSigning(ipOnly, sign), fails('RM_CA_CSR_ALT_NAMES'));
  });

  it('re-runs the extension and SAN type rules', async () => {
    const auth = await csr('agent1', { exts: [[oids.ppAuthorization, 'x']] });
    assert.throws(() => checkSigning(auth, sign), fails('RM_CA_CSR_AUTH_EXTENSION'));
    checkSigning(auth, { ...sign, allowAuthorizationExtensions: true });
    const anything = { ...lenient, allowDnsAltNames: true };
    const cliAuth = await csr('agent1', { exts: [[oids.ppCliAuth, 'true']] });
    assert.throws(() => checkSigning(cliAuth, anything), fails('RM_CA_CSR_EXTENSION_FORBIDDEN', /pp_cli_auth/));
    const policies = await csr('agent1', { exts: [['2.5.29.32', 'x']] });
    assert.throws(() => checkSigning(policies, anything), fails('RM_CA_CSR_EXTENSION_FORBIDDEN', /2\.5\.29\.32/));
    const wild = await csr('agent1', { sans: [{ type: 'dns', value: '*.agent1' }] });
    assert.throws(() => checkSigning(wild, anything), fails('RM_CA_CSR_ALT_NAMES', /wildcard/));
  });
});

describe('finalSubjectAltNames', () => {
  const cases: [string, SubjectAltName[], SubjectAltName[]][] = [
    ['adds DNS:<certname> when no SAN was requested', [], [{ type: 'dns', value: 'agent1' }]],
    ['appends DNS:<certname> to the requested names', [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.0.0.1' }],
      [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.0.0.1' }, { type: 'dns', value: 'agent1' }]],
    ['keeps a requested DNS:<certname> where it is', [{ type: 'dns', value: 'agent1' }, { type: 'dns', value: 'puppet' }],
      [{ type: 'dns', value: 'agent1' }, { type: 'dns', value: 'puppet' }]],
    ['drops duplicates, DNS names compared without case', [{ type: 'dns', value: 'puppet' }, { type: 'dns', value: 'PUPPET' }, { type: 'ip', value: '10.0.0.1' }, { type: 'ip', value: '10.0.0.1' }],
      [{ type: 'dns', value: 'puppet' }, { type: 'ip', value: '10.0.0.1' }, { type: 'dns', value: 'agent1' }]],
  ];
  for (const [title, requested, expected] of cases) {
    it(title, async () => {
      assert.deepEqual(finalSubjectAltNames(await csr('agent1', { sans: requested }), 'agent1'), expected);
    });
  }
});
