import { createHash, createPrivateKey, createPublicKey, generateKeyPair as nodeGenerateKeyPair, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { promisify } from 'node:util';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import { decodeInt, decodeOid, decodeString, decodeTime, encode, encodeInt, encodeOid, encodeText, encodeTime, hex, kids, readDer, want, type Der } from './der.ts';
import { oids } from './oids.ts';

// The one place that knows X.509, written directly against DER and node:crypto. @peculiar/x509 was
// measured and dropped: its generator cost more than the RSA-4096 signature itself, it re-encodes what
// it parses (extensions must be copied verbatim), throws on GeneralNames it does not model, encoded
// the IP SAN ::ffff:10.0.0.1 as ::ffff:10 and truncated the OID 2.25.<128-bit uuid> to 2.25.

export type SubjectAltName = { type: 'dns' | 'ip'; value: string };
export type CertExtension = { oid: string; critical: boolean; der: Uint8Array; text?: string };
export type Fingerprints = { SHA1: string; SHA256: string; SHA512: string };
export type ParsedCsr = {
  pem: string; subjectDn: string; commonName: string | undefined; subjectAltNames: SubjectAltName[];
  /** SAN entries that are neither DNS nor IP (e.g. "email:a@b"); no Puppet CA signs them. */
  otherAltNames: string[];
  extensionRequests: CertExtension[]; attributes: { oid: string; values: string[] }[]; challengePassword: string | undefined;
  publicKeySpki: Uint8Array; publicKeyAlgorithm: string; fingerprints: Fingerprints;
};
export type ParsedCert = {
  pem: string; serial: bigint; subjectDn: string; commonName: string | undefined; issuerDn: string; notBefore: Date; notAfter: Date;
  subjectAltNames: SubjectAltName[]; otherAltNames: string[]; extensions: CertExtension[]; isCa: boolean;
  subjectKeyId: string | undefined; authorityKeyId: string | undefined; fingerprints: Fingerprints; publicKeySpki: Uint8Array;
};
export type RevokedEntry = { serial: bigint; date: Date; reason?: number };
export type ParsedCrl = {
  pem: string; issuerDn: string; authorityKeyId: string | undefined; number: bigint | undefined;
  thisUpdate: Date; nextUpdate: Date | undefined; revoked: RevokedEntry[];
  /** A delta CRL (deltaCRLIndicator), which lists only changes since a base CRL. */
  delta: boolean;
};
export type KeyPair = { privateKeyPem: string; publicKeyPem: string };
export type Signer = { readonly cert: ParsedCert };
export type IssueParams = {
  signer: Signer; commonName: string; publicKeySpki: Uint8Array; serial: bigint; notBefore: Date; notAfter: Date;
  subjectAltNames: SubjectAltName[]; copyExtensions: CertExtension[]; cliAuth?: boolean;
};

/** CSRs, certificates and CRLs are all SEQUENCE { body, signatureAlgorithm, signature }. */
function signedBody(der: Uint8Array, what: string): Der[] {
  const [body, alg, sig, ...extra] = kids(want(readDer(der), 0x30, what));
  want(alg, 0x30, 'signature algorithm');
  want(sig, 0x03, 'signature');
  if (extra.length) throw new Error(`unexpected fields after the ${what} signature`);
  return kids(want(body, 0x30, `${what} body`));
}

function attempt<T>(f: () => T): T | undefined {
  try { return f(); } catch { return undefined; }
}
const fail = (err: Error): never => {
  throw err;
};

const encodeExt = (oid: string, critical: boolean, value: Uint8Array): Uint8Array =>
  encode(0x30, encodeOid(oid), critical ? Uint8Array.of(0x01, 0x01, 0xff) : new Uint8Array(0), encode(0x04, value));
const cnName = (cn: string): Uint8Array => encode(0x30, encode(0x31, encode(0x30, encodeOid('2.5.4.3'), encodeText(0x0c, cn))));
const akiExt = (keyId: string): Uint8Array => encodeExt(oids.authorityKeyIdentifier, false, encode(0x30, encode(0x80, Buffer.from(keyId, 'hex'))));

export function pemBlocks(text: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----\\r?\\n?([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => derToPem(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'), label));
}

function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

const pemToDer = (pem: string): Uint8Array => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'));

function fingerprints(der: Uint8Array): Fingerprints {
  const fp = (alg: string): string => createHash(alg).update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
  return { SHA1: fp('sha1'), SHA256: fp('sha256'), SHA512: fp('sha512') };
}

const dnLabels: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.9': 'STREET', '2.5.4.10': 'O', '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC', '0.9.2342.19200300.100.1.1': 'UID',
};
const escapeDn = (s: string): string => s.replace(/[,+"\\<>;]/g, '\\$&').replace(/^[ #]/, '\\$&').replace(/ $/, '\\ ');

/** RFC 2253: most specific RDN first, as Java's X500Principal and `openssl -nameopt RFC2253` print it. */
function parseName(d: Der): { dn: string; cn: string | undefined } {
  let cn: string | undefined;
  const rdns = kids(d).map((set) => kids(want(set, 0x31, 'relative distinguished name')).map((ava) => {
    const [type, value] = kids(want(ava, 0x30, 'name attribute'));
    const oid = decodeOid(want(type, 0x06, 'name attribute type').content);
    if (!value) throw new Error('name attribute value is missing');
    const text = decodeString(value);
    if (oid === '2.5.4.3' && cn === undefined) cn = text;
    return `${dnLabels[oid] ?? oid}=${text === undefined ? `#${hex(value.raw)}` : escapeDn(text)}`;
  }).join('+'));
  return { dn: rdns.reverse().join(','), cn };
}

function parseExtensions(d: Der): CertExtension[] {
  const seen = new Set<string>();
  return kids(want(d, 0x30, 'extensions')).map((e) => {
    const k = kids(want(e, 0x30, 'extension'));
    const oid = decodeOid(want(k[0], 0x06, 'extension id').content);
    if (k.length !== 2 && k.length !== 3) throw new Error(`extension ${oid} is malformed`);
    if (seen.has(oid)) throw new Error(`extension ${oid} appears more than once`);
    seen.add(oid);
    const critical = k.length === 3 && want(k[1], 0x01, 'critical flag').content[0] !== 0;
    const der = want(k[k.length - 1], 0x04, `extension ${oid} value`).content.slice();
    const text = stringValue(der);
    return text === undefined ? { oid, critical, der } : { oid, critical, der, text };
  });
}

function stringValue(der: Uint8Array): string | undefined {
  const v = attempt(() => readDer(der));
  return v && (v.tag === 0x0c || v.tag === 0x13 || v.tag === 0x16) ? attempt(() => decodeString(v)) : undefined;
}

const extValue = (exts: CertExtension[], oid: string): Der | undefined => exts.filter((x) => x.oid === oid).map((e) => readDer(e.der))[0];

function akiKeyId(exts: CertExtension[]): string | undefined {
  const aki = extValue(exts, oids.authorityKeyIdentifier);
  const keyId = aki && kids(want(aki, 0x30, 'authorityKeyIdentifier')).find((k) => k.tag === 0x80);
  return keyId && hex(keyId.content);
}

const otherAltLabels: Record<number, string> = { 0x81: 'email', 0x86: 'URI', 0x87: 'IP', 0x88: 'RID', 0xa0: 'othername', 0xa4: 'DirName' };

function parseSan(value: Der | undefined): { names: SubjectAltName[]; other: string[] } {
  const names: SubjectAltName[] = [];
  const other: string[] = [];
  for (const g of value ? kids(want(value, 0x30, 'subjectAltName')) : []) {
    const s = Buffer.from(g.content);
    if (g.tag === 0x82) names.push({ type: 'dns', value: s.toString('latin1') });
    else if (g.tag === 0x87 && s.length === 4) names.push({ type: 'ip', value: [...s].join('.') });
    else if (g.tag === 0x87 && s.length === 16) names.push({ type: 'ip', value: new URL(`http://[${s.toString('hex').replace(/(....)(?!$)/g, '$1:')}]`).hostname.slice(1, -1) });
    else other.push(`${otherAltLabels[g.tag] ?? `[${g.tag & 0x1f}]`}:${g.tag === 0x81 || g.tag === 0x86 ? s.toString('latin1') : s.toString('hex')}`);
  }
  return { names, other };
}

function ipBytes(ip: string): Buffer | undefined {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6 || ip.includes('%')) return undefined;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const full = v4 ? `${ip.slice(0, v4.index)}${Buffer.from(v4.slice(1).map(Number)).toString('hex').replace(/^..../, '$&:')}` : ip;
  const [head = [], tail] = full.split('::').map((part) => (part ? part.split(':') : []));
  const groups = tail === undefined ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

/** DNS names go in as A-labels (IA5String cannot hold "ü"); IP addresses as their octets. */
function sanValue(list: SubjectAltName[]): Uint8Array {
  return encode(0x30, ...list.map((s) => {
    const value = s.type === 'ip' ? ipBytes(s.value) : Buffer.from(/^[\x21-\x7e]+$/.test(s.value) ? s.value : domainToASCII(s.value), 'latin1');
    if (!value?.length) throw new RingmasterError('RM_CA_CSR_ALT_NAMES', `invalid subject alternative name ${s.type.toUpperCase()}:${s.value}`);
    return encode(s.type === 'ip' ? 0x87 : 0x82, value);
  }));
}

const publicKey = (spki: Uint8Array): KeyObject => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });

const malformed = (message: string, cause?: unknown): RingmasterError => new RingmasterError('RM_CA_CSR_MALFORMED', message, { cause });

export function parseCsr(pem: string): ParsedCsr {
  const text = typeof pem === 'string' ? pem : '';
  const blocks = [...pemBlocks(text, 'CERTIFICATE REQUEST'), ...pemBlocks(text, 'NEW CERTIFICATE REQUEST')];
  if (blocks.length === 0) throw malformed('the body holds no PEM "CERTIFICATE REQUEST" block (or it is truncated)');
  if (blocks.length > 1) throw malformed(`the body holds ${blocks.length} PEM certificate requests; send exactly one`);
  try {
    return csrFromDer(pemToDer(blocks[0]!));
  } catch (err) {
    throw malformed(`the certificate request cannot be parsed: ${errorMessage(err)}`, err);
  }
}

function csrFromDer(der: Uint8Array): ParsedCsr {
  const [version, subject, spki, attrs, ...rest] = signedBody(der, 'CertificationRequest');
  want(version, 0x02, 'version');
  if (rest.length) throw new Error('unexpected fields in the request body');
  const name = parseName(want(subject, 0x30, 'subject'));
  const publicKeySpki = want(spki, 0x30, 'subjectPublicKeyInfo').raw.slice();
  const out: ParsedCsr = {
    pem: derToPem(der, 'CERTIFICATE REQUEST'), subjectDn: name.dn, commonName: name.cn,
    subjectAltNames: [], otherAltNames: [], extensionRequests: [], attributes: [], challengePassword: undefined,
    publicKeySpki, publicKeyAlgorithm: attempt(() => publicKey(publicKeySpki).asymmetricKeyType) ?? 'unknown', fingerprints: fingerprints(der),
  };
  let sawExtReq = false;
  for (const a of attrs === undefined ? [] : kids(want(attrs, 0xa0, 'attributes'))) {
    const [type, set] = kids(want(a, 0x30, 'attribute'));
    const oid = decodeOid(want(type, 0x06, 'attribute type').content);
    const values = kids(want(set, 0x31, `attribute ${oid} values`));
    if (oid !== oids.extensionRequest) {
      out.attributes.push({ oid, values: values.map((v) => decodeString(v) ?? `#${hex(v.raw)}`) });
      if (oid === oids.challengePassword && values[0]) out.challengePassword ??= decodeString(values[0]);
      continue;
    }
    // A second extension request could smuggle a SAN or a duplicate past the checks.
    if (values.length !== 1 || sawExtReq) throw new Error('more than one extension request');
    sawExtReq = true;
    const exts = parseExtensions(values[0]!);
    const san = parseSan(extValue(exts, oids.subjectAltName));
    out.extensionRequests = exts.filter((e) => e.oid !== oids.subjectAltName);
    out.subjectAltNames = san.names;
    out.otherAltNames = san.other;
  }
  return out;
}

function certFromDer(der: Uint8Array): { cert: ParsedCert; subjectRaw: Uint8Array } {
  const t = signedBody(der, 'Certificate');
  const i = t[0]?.tag === 0xa0 ? 1 : 0;
  const [notBefore, notAfter] = kids(want(t[i + 3], 0x30, 'validity'));
  const subject = want(t[i + 4], 0x30, 'subject');
  const extsTag = t.slice(i + 6).find((x) => x.tag === 0xa3);
  const extensions = extsTag ? parseExtensions(want(kids(extsTag)[0], 0x30, 'extensions')) : [];
  const san = parseSan(extValue(extensions, oids.subjectAltName));
  const bc = extValue(extensions, oids.basicConstraints);
  const caFlag = bc && kids(want(bc, 0x30, 'basicConstraints'))[0];
  const ski = extValue(extensions, oids.subjectKeyIdentifier);
  const subjectName = parseName(subject);
  const cert: ParsedCert = {
    pem: derToPem(der, 'CERTIFICATE'), serial: decodeInt(want(t[i], 0x02, 'serial number').content),
    subjectDn: subjectName.dn, commonName: subjectName.cn, issuerDn: parseName(want(t[i + 2], 0x30, 'issuer')).dn,
    notBefore: decodeTime(notBefore, 'notBefore'), notAfter: decodeTime(notAfter, 'notAfter'),
    subjectAltNames: san.names, otherAltNames: san.other, extensions, isCa: caFlag?.tag === 0x01 && caFlag.content[0] !== 0,
    subjectKeyId: ski && hex(want(ski, 0x04, 'subjectKeyIdentifier').content), authorityKeyId: akiKeyId(extensions),
    fingerprints: fingerprints(der), publicKeySpki: want(t[i + 5], 0x30, 'subjectPublicKeyInfo').raw.slice(),
  };
  return { cert, subjectRaw: subject.raw.slice() };
}

/** Every block of a file; callers add the file name to the RM_CA_DIR_INVALID message. */
function parseBlocks<T>(text: string, label: string, what: string, only: boolean, parse: (der: Uint8Array) => T): T[] {
  const blocks = pemBlocks(typeof text === 'string' ? text : '', label);
  if (only && blocks.length !== 1) throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM ${what}: expected one ${label} block, found ${blocks.length}`);
  return blocks.map((b, n) => {
    try {
      return parse(pemToDer(b));
    } catch (err) {
      throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM ${what}: ${only ? '' : `${what} ${n + 1}: `}${errorMessage(err)}`, { cause: err });
    }
  });
}

const certsFrom = (text: string): ReturnType<typeof certFromDer>[] => parseBlocks(text, 'CERTIFICATE', 'certificate', false, certFromDer);
export const parseCert = (pem: string): ParsedCert => parseBlocks(pem, 'CERTIFICATE', 'certificate', true, certFromDer)[0]!.cert;
export const parseCertBundle = (text: string): ParsedCert[] => certsFrom(text).map((c) => c.cert);

function crlFromDer(der: Uint8Array): ParsedCrl {
  const t = signedBody(der, 'CertificateList');
  let i = t[0]?.tag === 0x02 ? 1 : 0;
  want(t[i], 0x30, 'signature algorithm');
  const issuerDn = parseName(want(t[i + 1], 0x30, 'issuer')).dn;
  const thisUpdate = decodeTime(t[i + 2], 'thisUpdate');
  i += 3;
  const nextUpdate = t[i]?.tag === 0x17 || t[i]?.tag === 0x18 ? decodeTime(t[i++], 'nextUpdate') : undefined;
  const revoked = t[i]?.tag !== 0x30 ? [] : kids(t[i++]!).map((entry): RevokedEntry => {
    const [serial, date, exts] = kids(want(entry, 0x30, 'revoked certificate'));
    const reason = exts && extValue(parseExtensions(exts), '2.5.29.21');
    const out: RevokedEntry = { serial: decodeInt(want(serial, 0x02, 'revoked serial').content), date: decodeTime(date, 'revocationDate') };
    if (reason) out.reason = Number(decodeInt(want(reason, 0x0a, 'reason code').content));
    return out;
  });
  const exts = t[i]?.tag === 0xa0 ? parseExtensions(want(kids(t[i]!)[0], 0x30, 'CRL extensions')) : [];
  const number = extValue(exts, oids.crlNumber);
  return {
    pem: derToPem(der, 'X509 CRL'), issuerDn, thisUpdate, nextUpdate, revoked,
    number: number && decodeInt(want(number, 0x02, 'CRL number').content), authorityKeyId: akiKeyId(exts),
    delta: exts.some((e) => e.oid === oids.deltaCrlIndicator),
  };
}

export const parseCrl = (pem: string): ParsedCrl => parseBlocks(pem, 'X509 CRL', 'CRL', true, crlFromDer)[0]!;
export const parseCrlBundle = (text: string): ParsedCrl[] => parseBlocks(text, 'X509 CRL', 'CRL', false, crlFromDer);

const signatureHashes = new Map<string, string | null>([
  ['1.2.840.113549.1.1.5', 'sha1'], ['1.2.840.113549.1.1.14', 'sha224'], ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'], ['1.2.840.113549.1.1.13', 'sha512'], ['1.2.840.10045.4.1', 'sha1'],
  ['1.2.840.10045.4.3.1', 'sha224'], ['1.2.840.10045.4.3.2', 'sha256'], ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'], ['1.3.101.112', null], ['1.3.101.113', null],
]);

async function verifySigned(pem: string, spki: Uint8Array): Promise<boolean> {
  try {
    const [tbs, alg, sig] = kids(readDer(pemToDer(pem)));
    const hash = signatureHashes.get(decodeOid(want(kids(want(alg, 0x30, 'algorithm'))[0], 0x06, 'algorithm id').content));
    const bits = want(sig, 0x03, 'signature').content;
    if (hash === undefined || !tbs || bits[0] !== 0) return false;
    const key = publicKey(spki);
    return await new Promise<boolean>((resolve) => nodeVerify(hash, tbs.raw, key, bits.subarray(1), (err, ok) => resolve(!err && ok)));
  } catch {
    return false;
  }
}

export const verifyCsrSignature = (csr: ParsedCsr): Promise<boolean> => verifySigned(csr.pem, csr.publicKeySpki);
export const verifyCrlSignature = (crl: ParsedCrl, issuer: ParsedCert): Promise<boolean> => verifySigned(crl.pem, issuer.publicKeySpki);
export const verifyCertSignature = (cert: ParsedCert, issuer: ParsedCert): Promise<boolean> => verifySigned(cert.pem, issuer.publicKeySpki);

const generate = promisify(nodeGenerateKeyPair);

/** RSA keys as PKCS#1 ("RSA PRIVATE KEY") and EC keys as SEC1, the way Puppet writes them. */
export async function generateKeyPair(spec: { type: 'rsa'; bits: number } | { type: 'ec'; curve: 'P-256' | 'P-384' }): Promise<KeyPair> {
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
  const pair = await (spec.type === 'rsa'
    ? generate('rsa', { modulusLength: spec.bits, publicKeyEncoding, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } })
    : generate('ec', { namedCurve: spec.curve, publicKeyEncoding, privateKeyEncoding: { type: 'sec1', format: 'pem' } })
  ).catch((err: unknown) => Promise.reject(new RingmasterError('RM_INTERNAL', `key generation failed: ${errorMessage(err)}`, { cause: err })));
  return { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
}

function privateKey(pem: string, code: ErrorCode, what: string, rsaOnly: boolean): KeyObject {
  const key = attempt(() => createPrivateKey({ key: pem, format: 'pem' })) ?? fail(new RingmasterError(code, `${what} is not an unencrypted PEM private key`));
  if (rsaOnly && key.asymmetricKeyType !== 'rsa') throw new RingmasterError(code, `${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; the CA signs with SHA256withRSA and needs an RSA key`);
  return key;
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits; what puppetserver and OpenSSL put in SKI. */
function keyIdentifier(spki: Uint8Array): string {
  const bits = want(kids(readDer(spki))[1], 0x03, 'subjectPublicKey').content.subarray(1);
  return createHash('sha1').update(bits).digest('hex');
}

type SignerState = { key: KeyObject; issuerRaw: Uint8Array; keyId: string };
const signerStates = new WeakMap<Signer, SignerState>();
const sha256WithRsa = encode(0x30, encodeOid('1.2.840.113549.1.1.11'), Uint8Array.of(0x05, 0x00));
const netscapeComment = encodeExt(oids.netscapeComment, false, encodeText(0x16, 'Puppet Server Internal Certificate'));
const leafProfile = [
  encodeExt(oids.basicConstraints, true, encode(0x30)),
  encodeExt(oids.extKeyUsage, true, encode(0x30, encodeOid(oids.serverAuth), encodeOid(oids.clientAuth))),
  encodeExt(oids.keyUsage, true, Uint8Array.of(0x03, 0x02, 0x05, 0xa0)), // digitalSignature, keyEncipherment
];
const caProfile = [
  encodeExt(oids.basicConstraints, true, encode(0x30, Uint8Array.of(0x01, 0x01, 0xff))),
  encodeExt(oids.keyUsage, true, Uint8Array.of(0x03, 0x02, 0x01, 0x06)), // keyCertSign, cRLSign
];
const cliAuthTrue = encodeExt(oids.ppCliAuth, false, encodeText(0x0c, 'true'));
const skiExt = (keyId: string): Uint8Array => encodeExt(oids.subjectKeyIdentifier, false, encode(0x04, Buffer.from(keyId, 'hex')));

/** Loads the CA. caCertPem may be a bundle: the certificate that matches the key is the signer. */
export async function loadSigner(caCertPem: string, caKeyPem: string): Promise<Signer> {
  await Promise.resolve(); // failures below become rejections, as callers of an async loader expect
  const key = privateKey(caKeyPem, 'RM_CA_DIR_INVALID', 'ca_key.pem', true);
  const pub = createPublicKey(key);
  const match = certsFrom(caCertPem).find(({ cert }) => publicKey(cert.publicKeySpki).equals(pub));
  if (!match) throw new RingmasterError('RM_CA_DIR_INVALID', 'ca_key.pem does not match ca_crt.pem');
  if (!match.cert.isCa) throw new RingmasterError('RM_CA_DIR_INVALID', `ca_crt.pem: ${match.cert.subjectDn} is not a CA certificate (no basicConstraints CA:TRUE)`);
  const signer: Signer = { cert: match.cert };
  signerStates.set(signer, { key, issuerRaw: match.subjectRaw, keyId: match.cert.subjectKeyId ?? keyIdentifier(match.cert.publicKeySpki) });
  return signer;
}

const stateOf = (signer: Signer): SignerState => signerStates.get(signer) ?? fail(new RingmasterError('RM_INTERNAL', 'signer was not created by loadSigner'));

async function sign(tbs: Uint8Array, key: KeyObject, label: string, algorithm = sha256WithRsa): Promise<string> {
  const signature = await new Promise<Uint8Array>((resolve, reject) => nodeSign('sha256', tbs, key, (err, sig) => (err ? reject(err) : resolve(sig))));
  return derToPem(encode(0x30, tbs, algorithm, encode(0x03, Uint8Array.of(0), signature)), label);
}

type CertFields = { subjectCn: string; issuerRaw: Uint8Array; spki: Uint8Array; serial: bigint; notBefore: Date; notAfter: Date; key: KeyObject; extensions: Uint8Array[] };

async function signCert(p: CertFields): Promise<string> {
  const ids = p.extensions.map((e) => decodeOid(kids(readDer(e))[0]!.content));
  const twice = ids.find((oid, i) => ids.indexOf(oid) !== i);
  if (twice) throw new RingmasterError('RM_CA_CSR_EXTENSION_FORBIDDEN', `extension ${twice} would appear twice in the certificate`);
  return await sign(encode(0x30,
    Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02), encodeInt(p.serial, true), sha256WithRsa, p.issuerRaw,
    encode(0x30, encodeTime(p.notBefore), encodeTime(p.notAfter)), cnName(p.subjectCn), p.spki,
    encode(0xa3, encode(0x30, ...p.extensions))), p.key, 'CERTIFICATE');
}

export async function createCaCertificate(p: { commonName: string; keyPair: KeyPair; serial: bigint; notBefore: Date; notAfter: Date }): Promise<string> {
  const key = privateKey(p.keyPair.privateKeyPem, 'RM_INTERNAL', 'the CA key', true);
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const keyId = keyIdentifier(spki);
  const extensions = [netscapeComment, akiExt(keyId), ...caProfile, skiExt(keyId)];
  return await signCert({ subjectCn: p.commonName, issuerRaw: cnName(p.commonName), spki, serial: p.serial, notBefore: p.notBefore, notAfter: p.notAfter, key, extensions });
}

export async function issueCertificate(p: IssueParams): Promise<string> {
  const { key, issuerRaw, keyId: caKeyId } = stateOf(p.signer);
  const keyId = attempt(() => publicKey(p.publicKeySpki) && keyIdentifier(p.publicKeySpki)) ?? fail(new RingmasterError('RM_CA_CSR_MALFORMED', 'the public key to certify is malformed'));
  const extensions = [netscapeComment, akiExt(caKeyId), ...leafProfile, skiExt(keyId), ...p.copyExtensions.map((e) => encodeExt(e.oid, e.critical, e.der))];
  if (p.cliAuth) extensions.push(cliAuthTrue);
  if (p.subjectAltNames.length) extensions.push(encodeExt(oids.subjectAltName, false, sanValue(p.subjectAltNames)));
  return await signCert({ subjectCn: p.commonName, issuerRaw, spki: p.publicKeySpki, serial: p.serial, notBefore: p.notBefore, notAfter: p.notAfter, key, extensions });
}

/** A v2 CRL; entries without a reason get keyCompromise, as puppetserver writes every revocation. */
export async function createCrl(p: { signer: Signer; number: bigint; thisUpdate: Date; nextUpdate: Date; revoked: RevokedEntry[] }): Promise<string> {
  const { key, issuerRaw, keyId } = stateOf(p.signer);
  const seen = new Set<bigint>();
  const entries = p.revoked.filter((r) => !seen.has(r.serial) && seen.add(r.serial)).map((r) => {
    const reason = r.reason ?? 1;
    if (!Number.isInteger(reason) || reason < 0 || reason > 10) throw new RingmasterError('RM_INTERNAL', `invalid CRL reason code ${reason}`);
    const exts = reason === 0 ? [] : [encode(0x30, encodeExt('2.5.29.21', false, encode(0x0a, Uint8Array.of(reason))))];
    return encode(0x30, encodeInt(r.serial, true), encodeTime(r.date), ...exts);
  });
  return await sign(encode(0x30,
    Uint8Array.of(0x02, 0x01, 0x01), sha256WithRsa, issuerRaw, encodeTime(p.thisUpdate), encodeTime(p.nextUpdate),
    ...(entries.length ? [encode(0x30, ...entries)] : []),
    encode(0xa0, encode(0x30, akiExt(keyId), encodeExt(oids.crlNumber, false, encodeInt(p.number))))), key, 'X509 CRL');
}

const ecdsaWithSha256 = encode(0x30, encodeOid('1.2.840.10045.4.3.2'));
const attribute = (oid: string, value: Uint8Array): Uint8Array => encode(0x30, encodeOid(oid), encode(0x31, value));

/** A SHA-256 signed PKCS#10 request shaped like a Puppet agent's. */
export async function createCsr(p: {
  commonName: string; keyPair: KeyPair; subjectAltNames?: SubjectAltName[];
  extensionRequests?: { oid: string; value: string; critical?: boolean }[]; challengePassword?: string;
}): Promise<string> {
  const key = privateKey(p.keyPair.privateKeyPem, 'RM_INTERNAL', 'the request key', false);
  const type = key.asymmetricKeyType;
  const algorithm = type === 'rsa' ? sha256WithRsa : type === 'ec' ? ecdsaWithSha256 : fail(new RingmasterError('RM_INTERNAL', `cannot sign a request with a ${type ?? 'unknown'} key`));
  const extensions = [
    ...(p.subjectAltNames?.length ? [encodeExt(oids.subjectAltName, false, sanValue(p.subjectAltNames))] : []),
    ...(p.extensionRequests ?? []).map((e) => encodeExt(e.oid, e.critical ?? false, encodeText(0x0c, e.value))),
  ];
  const pw = p.challengePassword;
  // Puppet agents write csr_attributes as PrintableString; a value outside its alphabet needs UTF8String.
  const attributes = [
    ...(pw === undefined ? [] : [attribute(oids.challengePassword, encodeText(/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(pw) ? 0x13 : 0x0c, pw))]),
    ...(extensions.length ? [attribute(oids.extensionRequest, encode(0x30, ...extensions))] : []),
  ].sort((a, b) => Buffer.compare(a, b)); // DER orders a SET OF; Java verifies the signature over a DER re-encoding
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return await sign(encode(0x30, Uint8Array.of(0x02, 0x01, 0x00), cnName(p.commonName), spki, encode(0xa0, ...attributes)), key, 'CERTIFICATE REQUEST', algorithm);
}
