import 'reflect-metadata';
import * as px from '@peculiar/x509';
import { createHash, createPrivateKey, createPublicKey, generateKeyPair as nodeGenerateKeyPair, verify as nodeVerify, type KeyObject, type webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import { oids } from './oids.ts';

// The one place that knows X.509. Generation goes through @peculiar/x509; reading (CSRs, certs, CRLs)
// walks the DER directly, because input comes from the network and from foreign CA directories:
// the library throws on GeneralNames it does not model and re-encodes what it parses, while a
// small reader keeps the exact bytes (extensions are copied verbatim) and fails with one error type.

const webCrypto = globalThis.crypto;
px.cryptoProvider.set(webCrypto);

export type SubjectAltName = { type: 'dns' | 'ip'; value: string };
export type CertExtension = { oid: string; critical: boolean; der: Uint8Array; text?: string };
export type Fingerprints = { SHA1: string; SHA256: string; SHA512: string };
export type ParsedCsr = {
  pem: string; subjectDn: string; commonName: string | undefined;
  subjectAltNames: SubjectAltName[];
  /** SAN entries that are neither DNS nor IP (e.g. "email:a@b"); no Puppet CA signs them. */
  otherAltNames: string[];
  extensionRequests: CertExtension[];
  attributes: { oid: string; values: string[] }[];
  challengePassword: string | undefined;
  publicKeySpki: Uint8Array; publicKeyAlgorithm: string; fingerprints: Fingerprints;
};
export type ParsedCert = {
  pem: string; serial: bigint; subjectDn: string; commonName: string | undefined; issuerDn: string;
  notBefore: Date; notAfter: Date; subjectAltNames: SubjectAltName[]; otherAltNames: string[];
  extensions: CertExtension[]; isCa: boolean; subjectKeyId: string | undefined; authorityKeyId: string | undefined;
  fingerprints: Fingerprints; publicKeySpki: Uint8Array;
};
export type RevokedEntry = { serial: bigint; date: Date; reason?: number };
export type ParsedCrl = { pem: string; issuerDn: string; authorityKeyId: string | undefined; number: bigint | undefined; thisUpdate: Date; nextUpdate: Date | undefined; revoked: RevokedEntry[] };
export type KeyPair = { privateKeyPem: string; publicKeyPem: string };
export type Signer = { readonly cert: ParsedCert };
export type IssueParams = {
  signer: Signer; commonName: string; publicKeySpki: Uint8Array; serial: bigint; notBefore: Date; notAfter: Date;
  subjectAltNames: SubjectAltName[]; copyExtensions: CertExtension[]; cliAuth?: boolean;
};

// ---- DER reading -------------------------------------------------------------------------------

type Der = { tag: number; raw: Uint8Array; content: Uint8Array };

function readAt(buf: Uint8Array, pos: number): Der {
  const tag = buf[pos];
  let len = buf[pos + 1];
  if (tag === undefined || len === undefined) throw new Error('truncated DER');
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] ?? Number.NaN);
    if (Number.isNaN(len)) throw new Error('truncated DER');
  }
  if (p + len > buf.length) throw new Error('truncated DER');
  return { tag, raw: buf.subarray(pos, p + len), content: buf.subarray(p, p + len) };
}

function readDer(buf: Uint8Array): Der {
  const d = readAt(buf, 0);
  if (d.raw.length !== buf.length) throw new Error('trailing bytes after the DER structure');
  return d;
}

function kids(d: Der): Der[] {
  if ((d.tag & 0x20) === 0) throw new Error('expected a constructed DER value');
  const out: Der[] = [];
  for (let p = 0; p < d.content.length; p += out[out.length - 1]?.raw.length ?? 0) out.push(readAt(d.content, p));
  return out;
}

function want(d: Der | undefined, tag: number, what: string): Der {
  if (d?.tag !== tag) throw new Error(`${what} is missing or malformed`);
  return d;
}

function decodeOid(c: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of c) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) { arcs.push(v); v = 0n; }
  }
  const first = arcs.shift();
  if (first === undefined || (c[c.length - 1]! & 0x80) !== 0) throw new Error('malformed object identifier');
  const top = first < 80n ? first / 40n : 2n;
  return [top, first - top * 40n, ...arcs].join('.');
}

function decodeInt(c: Uint8Array): bigint {
  if (c.length === 0) throw new Error('empty INTEGER');
  const n = BigInt(`0x${hex(c)}`);
  return (c[0]! & 0x80) !== 0 ? n - (1n << BigInt(c.length * 8)) : n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text of the DER string types found in names, attributes and Puppet's extension values. */
function decodeString(d: Der): string | undefined {
  switch (d.tag) {
    case 0x0c: return utf8.decode(d.content);
    case 0x12: case 0x13: case 0x14: case 0x16: case 0x1a: return Buffer.from(d.content).toString('latin1');
    case 0x1e: return Buffer.from(d.content).swap16().toString('utf16le');
    default: return undefined;
  }
}

function decodeTime(d: Der | undefined, what: string): Date {
  const s = d === undefined ? '' : Buffer.from(d.content).toString('latin1');
  const m = d?.tag === 0x17 ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s) : d?.tag === 0x18 ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(?:\.\d+)?Z$/.exec(s) : null;
  if (!m) throw new Error(`${what} is missing or malformed`);
  const [y, mo, day, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  return new Date(Date.UTC(d?.tag === 0x17 ? (y < 50 ? 2000 + y : 1900 + y) : y, mo - 1, day, h, mi, sec));
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

// ---- DER writing (only the small values the library takes pre-encoded) ------------------------

function encode(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Uint8Array.from([tag, ...len]), content]);
}

function encodeInt(n: bigint): Uint8Array {
  let h = n.toString(16);
  if (h.length % 2) h = `0${h}`;
  if (parseInt(h.slice(0, 2), 16) & 0x80) h = `00${h}`;
  return encode(0x02, Buffer.from(h, 'hex'));
}

const encodeText = (tag: number, s: string): Uint8Array => encode(tag, Buffer.from(s, tag === 0x0c ? 'utf8' : 'latin1'));
const isPrintable = (s: string): boolean => /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);

// ---- PEM ---------------------------------------------------------------------------------------

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

// ---- names, extensions, alternative names ------------------------------------------------------

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
  try {
    const v = readDer(der);
    return v.tag === 0x0c || v.tag === 0x13 || v.tag === 0x16 ? decodeString(v) : undefined;
  } catch {
    return undefined;
  }
}

const otherAltLabels: Record<number, string> = { 0x81: 'email', 0x86: 'URI', 0x87: 'IP', 0x88: 'RID', 0xa0: 'othername', 0xa4: 'DirName' };

function parseSan(value: Uint8Array): { names: SubjectAltName[]; other: string[] } {
  const names: SubjectAltName[] = [];
  const other: string[] = [];
  for (const g of kids(want(readDer(value), 0x30, 'subjectAltName'))) {
    const s = Buffer.from(g.content);
    if (g.tag === 0x82) names.push({ type: 'dns', value: s.toString('latin1') });
    else if (g.tag === 0x87 && (s.length === 4 || s.length === 16)) names.push({ type: 'ip', value: formatIp(s) });
    else other.push(`${otherAltLabels[g.tag] ?? `[${g.tag & 0x1f}]`}:${g.tag === 0x81 || g.tag === 0x86 ? s.toString('latin1') : s.toString('hex')}`);
  }
  return { names, other };
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  return new URL(`http://[${groups}]`).hostname.slice(1, -1);
}

function ipBytes(ip: string): Uint8Array | undefined {
  if (isIP(ip) === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (isIP(ip) !== 6 || ip.includes('%')) return undefined;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const s = v4 ? ip.slice(0, v4.index) + Buffer.from(v4.slice(1).map(Number)).toString('hex').replace(/^(.{4})/, '$1:') : ip;
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.map((g) => g.padStart(4, '0')).join(''), 'hex');
}

function sanExtension(list: SubjectAltName[]): px.Extension {
  const names = list.map((s) => {
    const bytes = s.type === 'ip' ? ipBytes(s.value) : Buffer.from(/^[\x21-\x7e]+$/.test(s.value) ? s.value : domainToASCII(s.value), 'latin1');
    if (!bytes || bytes.length === 0) throw new RingmasterError('RM_CA_CSR_ALT_NAMES', `invalid subject alternative name ${s.type.toUpperCase()}:${s.value}`);
    return encode(s.type === 'ip' ? 0x87 : 0x82, bytes);
  });
  return new px.Extension(oids.subjectAltName, false, encode(0x30, Buffer.concat(names)));
}

const spkiAlgorithms: Record<string, string> = {
  '1.2.840.113549.1.1.1': 'rsa', '1.2.840.10045.2.1': 'ec', '1.2.840.113549.1.1.10': 'rsa-pss',
  '1.3.101.112': 'ed25519', '1.3.101.113': 'ed448', '1.2.840.10040.4.1': 'dsa',
};

// ---- parsing -----------------------------------------------------------------------------------

function malformed(message: string, cause?: unknown): RingmasterError {
  return new RingmasterError('RM_CA_CSR_MALFORMED', message, cause === undefined ? {} : { cause });
}

export function parseCsr(pem: string): ParsedCsr {
  const text = typeof pem === 'string' ? pem : '';
  const blocks = [...pemBlocks(text, 'CERTIFICATE REQUEST'), ...pemBlocks(text, 'NEW CERTIFICATE REQUEST')];
  if (blocks.length === 0) throw malformed('the body holds no PEM "CERTIFICATE REQUEST" block (or it is truncated)');
  if (blocks.length > 1) throw malformed(`the body holds ${blocks.length} PEM certificate requests; send exactly one`);
  const der = pemToDer(blocks[0]!);
  try {
    return csrFromDer(der);
  } catch (err) {
    throw malformed(`the certificate request cannot be parsed: ${errorMessage(err)}`, err);
  }
}

function csrFromDer(der: Uint8Array): ParsedCsr {
  const [info, alg, sig, ...extra] = kids(want(readDer(der), 0x30, 'CertificationRequest'));
  want(alg, 0x30, 'signature algorithm');
  want(sig, 0x03, 'signature');
  if (extra.length) throw new Error('unexpected fields after the signature');
  const [version, subject, spki, attrs, ...rest] = kids(want(info, 0x30, 'CertificationRequestInfo'));
  want(version, 0x02, 'version');
  if (rest.length) throw new Error('unexpected fields in CertificationRequestInfo');
  const name = parseName(want(subject, 0x30, 'subject'));
  const spkiDer = want(spki, 0x30, 'subjectPublicKeyInfo');
  const keyOid = decodeOid(want(kids(want(kids(spkiDer)[0], 0x30, 'key algorithm'))[0], 0x06, 'key algorithm id').content);
  const out: ParsedCsr = {
    pem: derToPem(der, 'CERTIFICATE REQUEST'), subjectDn: name.dn, commonName: name.cn,
    subjectAltNames: [], otherAltNames: [], extensionRequests: [], attributes: [], challengePassword: undefined,
    publicKeySpki: spkiDer.raw.slice(), publicKeyAlgorithm: spkiAlgorithms[keyOid] ?? keyOid, fingerprints: fingerprints(der),
  };
  const attributes = attrs === undefined ? [] : kids(want(attrs, 0xa0, 'attributes'));
  for (const a of attributes) {
    const [type, set] = kids(want(a, 0x30, 'attribute'));
    const oid = decodeOid(want(type, 0x06, 'attribute type').content);
    const values = kids(want(set, 0x31, `attribute ${oid} values`));
    if (oid !== oids.extensionRequest) {
      out.attributes.push({ oid, values: values.map((v) => decodeString(v) ?? `#${hex(v.raw)}`) });
      if (oid === oids.challengePassword && values[0]) out.challengePassword ??= decodeString(values[0]);
      continue;
    }
    if (values.length !== 1 || out.extensionRequests.length || out.subjectAltNames.length) throw new Error('more than one extension request');
    for (const ext of parseExtensions(values[0]!)) {
      if (ext.oid !== oids.subjectAltName) { out.extensionRequests.push(ext); continue; }
      const san = parseSan(ext.der);
      out.subjectAltNames.push(...san.names);
      out.otherAltNames.push(...san.other);
    }
  }
  return out;
}

function certFromDer(der: Uint8Array): { cert: ParsedCert; subjectRaw: Uint8Array } {
  const [tbs, alg, sig] = kids(want(readDer(der), 0x30, 'Certificate'));
  want(alg, 0x30, 'signature algorithm');
  want(sig, 0x03, 'signature');
  const t = kids(want(tbs, 0x30, 'TBSCertificate'));
  const i = t[0]?.tag === 0xa0 ? 1 : 0;
  const [notBefore, notAfter] = kids(want(t[i + 3], 0x30, 'validity'));
  const subject = want(t[i + 4], 0x30, 'subject');
  const spki = want(t[i + 5], 0x30, 'subjectPublicKeyInfo');
  const extsTag = t.slice(i + 6).find((x) => x.tag === 0xa3);
  const extensions = extsTag ? parseExtensions(want(kids(extsTag)[0], 0x30, 'extensions')) : [];
  const ext = (oid: string): Der | undefined => {
    const e = extensions.find((x) => x.oid === oid);
    return e && readDer(e.der);
  };
  const san = extensions.some((e) => e.oid === oids.subjectAltName) ? parseSan(extensions.find((e) => e.oid === oids.subjectAltName)!.der) : { names: [], other: [] };
  const bc = ext(oids.basicConstraints);
  const ski = ext(oids.subjectKeyIdentifier);
  const aki = ext(oids.authorityKeyIdentifier);
  const akiKeyId = aki && kids(want(aki, 0x30, 'authorityKeyIdentifier')).find((k) => k.tag === 0x80);
  const subjectName = parseName(subject);
  const cert: ParsedCert = {
    pem: derToPem(der, 'CERTIFICATE'),
    serial: decodeInt(want(t[i], 0x02, 'serial number').content),
    subjectDn: subjectName.dn, commonName: subjectName.cn,
    issuerDn: parseName(want(t[i + 2], 0x30, 'issuer')).dn,
    notBefore: decodeTime(notBefore, 'notBefore'), notAfter: decodeTime(notAfter, 'notAfter'),
    subjectAltNames: san.names, otherAltNames: san.other, extensions,
    isCa: bc !== undefined && kids(want(bc, 0x30, 'basicConstraints'))[0]?.tag === 0x01 && kids(bc)[0]!.content[0] !== 0,
    subjectKeyId: ski && hex(want(ski, 0x04, 'subjectKeyIdentifier').content),
    authorityKeyId: akiKeyId && hex(akiKeyId.content),
    fingerprints: fingerprints(der), publicKeySpki: spki.raw.slice(),
  };
  return { cert, subjectRaw: subject.raw.slice() };
}

function certsFrom(text: string, only: boolean): { cert: ParsedCert; subjectRaw: Uint8Array }[] {
  const blocks = pemBlocks(typeof text === 'string' ? text : '', 'CERTIFICATE');
  if (only && blocks.length !== 1) throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM certificate: expected one CERTIFICATE block, found ${blocks.length}`);
  return blocks.map((b, n) => {
    try {
      return certFromDer(pemToDer(b));
    } catch (err) {
      throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM certificate: ${only ? '' : `certificate ${n + 1}: `}${errorMessage(err)}`, { cause: err });
    }
  });
}

export function parseCert(pem: string): ParsedCert {
  return certsFrom(pem, true)[0]!.cert;
}

export function parseCertBundle(text: string): ParsedCert[] {
  return certsFrom(text, false).map((c) => c.cert);
}

function crlFromDer(der: Uint8Array): ParsedCrl {
  const [tbs, alg, sig] = kids(want(readDer(der), 0x30, 'CertificateList'));
  want(alg, 0x30, 'signature algorithm');
  want(sig, 0x03, 'signature');
  const t = kids(want(tbs, 0x30, 'TBSCertList'));
  let i = t[0]?.tag === 0x02 ? 1 : 0;
  want(t[i], 0x30, 'signature algorithm');
  const issuerDn = parseName(want(t[i + 1], 0x30, 'issuer')).dn;
  const thisUpdate = decodeTime(t[i + 2], 'thisUpdate');
  i += 3;
  const nextUpdate = t[i]?.tag === 0x17 || t[i]?.tag === 0x18 ? decodeTime(t[i++], 'nextUpdate') : undefined;
  const revoked = t[i]?.tag === 0x30 ? kids(t[i++]!).map((entry): RevokedEntry => {
    const [serial, date, exts] = kids(want(entry, 0x30, 'revoked certificate'));
    const reason = exts ? parseExtensions(exts).find((e) => e.oid === '2.5.29.21') : undefined;
    const out: RevokedEntry = { serial: decodeInt(want(serial, 0x02, 'revoked serial').content), date: decodeTime(date, 'revocationDate') };
    if (reason) out.reason = Number(decodeInt(want(readDer(reason.der), 0x0a, 'reason code').content));
    return out;
  }) : [];
  const exts = t[i]?.tag === 0xa0 ? parseExtensions(want(kids(t[i]!)[0], 0x30, 'CRL extensions')) : [];
  const number = exts.find((e) => e.oid === oids.crlNumber);
  const aki = exts.find((e) => e.oid === oids.authorityKeyIdentifier);
  const keyId = aki && kids(want(readDer(aki.der), 0x30, 'authorityKeyIdentifier')).find((k) => k.tag === 0x80);
  return {
    pem: derToPem(der, 'X509 CRL'), issuerDn, thisUpdate, nextUpdate, revoked,
    number: number && decodeInt(want(readDer(number.der), 0x02, 'CRL number').content),
    authorityKeyId: keyId && hex(keyId.content),
  };
}

export function parseCrlBundle(text: string): ParsedCrl[] {
  return pemBlocks(typeof text === 'string' ? text : '', 'X509 CRL').map((b, n) => {
    try {
      return crlFromDer(pemToDer(b));
    } catch (err) {
      throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM CRL: CRL ${n + 1}: ${errorMessage(err)}`, { cause: err });
    }
  });
}

export function parseCrl(pem: string): ParsedCrl {
  const crls = parseCrlBundle(pem);
  if (crls.length !== 1) throw new RingmasterError('RM_CA_DIR_INVALID', `not a PEM CRL: expected one X509 CRL block, found ${crls.length}`);
  return crls[0]!;
}

// ---- signature verification --------------------------------------------------------------------

const signatureHashes = new Map<string, string | null>([
  ['1.2.840.113549.1.1.5', 'sha1'], ['1.2.840.113549.1.1.14', 'sha224'], ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'], ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.1', 'sha1'], ['1.2.840.10045.4.3.1', 'sha224'], ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'], ['1.2.840.10045.4.3.4', 'sha512'], ['1.3.101.112', null], ['1.3.101.113', null],
]);

/** Checks the outer signature of a CSR, certificate or CRL (all three are SEQUENCE {tbs, alg, sig}). */
async function verifySigned(der: Uint8Array, spki: Uint8Array): Promise<boolean> {
  try {
    const [tbs, alg, sig] = kids(readDer(der));
    const hash = signatureHashes.get(decodeOid(want(kids(want(alg, 0x30, 'algorithm'))[0], 0x06, 'algorithm id').content));
    const bits = want(sig, 0x03, 'signature').content;
    if (hash === undefined || !tbs || bits[0] !== 0) return false;
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    return await new Promise<boolean>((resolve) => {
      nodeVerify(hash, tbs.raw, key, bits.subarray(1), (err, ok) => resolve(!err && ok));
    });
  } catch {
    return false;
  }
}

export function verifyCsrSignature(csr: ParsedCsr): Promise<boolean> {
  return verifySigned(pemToDer(csr.pem), csr.publicKeySpki);
}

export function verifyCrlSignature(crl: ParsedCrl, issuer: ParsedCert): Promise<boolean> {
  return verifySigned(pemToDer(crl.pem), issuer.publicKeySpki);
}

// ---- keys --------------------------------------------------------------------------------------

export function generateKeyPair(spec: { type: 'rsa'; bits: number } | { type: 'ec'; curve: 'P-256' | 'P-384' }): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKeyPem: string, privateKeyPem: string): void => {
      if (err) reject(new RingmasterError('RM_INTERNAL', `key generation failed: ${err.message}`, { cause: err }));
      else resolve({ privateKeyPem, publicKeyPem });
    };
    const publicKeyEncoding = { type: 'spki', format: 'pem' } as const;
    if (spec.type === 'rsa') nodeGenerateKeyPair('rsa', { modulusLength: spec.bits, publicKeyEncoding, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } }, done);
    else nodeGenerateKeyPair('ec', { namedCurve: spec.curve, publicKeyEncoding, privateKeyEncoding: { type: 'sec1', format: 'pem' } }, done);
  });
}

function privateKey(pem: string, code: ErrorCode, what: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new RingmasterError(code, `${what} is not an unencrypted PEM private key: ${errorMessage(err)}`, { cause: err });
  }
}

const curveNames: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
const rsaSha256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };

/** The WebCrypto import and signing parameters for a key (SHA-256 always, as Puppet uses). */
function webAlgorithm(key: KeyObject, code: ErrorCode): { importAs: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams; sign: webcrypto.Algorithm | webcrypto.EcdsaParams } {
  if (key.asymmetricKeyType === 'rsa') return { importAs: rsaSha256, sign: rsaSha256 };
  const curve = curveNames[key.asymmetricKeyDetails?.namedCurve ?? ''];
  if (key.asymmetricKeyType === 'ec' && curve) return { importAs: { name: 'ECDSA', namedCurve: curve }, sign: { name: 'ECDSA', hash: 'SHA-256' } };
  throw new RingmasterError(code, `unsupported key type ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits; what puppetserver and OpenSSL put in SKI. */
function keyIdentifier(spki: Uint8Array): string {
  const bits = want(kids(readDer(spki))[1], 0x03, 'subjectPublicKey').content.subarray(1);
  return createHash('sha1').update(bits).digest('hex');
}

// ---- signing -----------------------------------------------------------------------------------

type SignerState = { key: webcrypto.CryptoKey; issuer: px.Name; aki: px.Extension };
const signerStates = new WeakMap<Signer, SignerState>();

const netscapeComment = new px.Extension(oids.netscapeComment, false, encodeText(0x16, 'Puppet Server Internal Certificate'));
const leafProfile = [
  new px.BasicConstraintsExtension(false, undefined, true),
  new px.ExtendedKeyUsageExtension([oids.serverAuth, oids.clientAuth], true),
  new px.KeyUsagesExtension(px.KeyUsageFlags.digitalSignature | px.KeyUsageFlags.keyEncipherment, true),
];
const cliAuthTrue = new px.Extension(oids.ppCliAuth, false, encodeText(0x0c, 'true'));

function serialHex(serial: bigint): string {
  if (serial <= 0n) throw new RingmasterError('RM_INTERNAL', `certificate serial must be positive, got ${serial.toString()}`);
  const h = serial.toString(16);
  return h.length % 2 ? `0${h}` : h;
}

const cnName = (cn: string): px.Name => new px.Name([{ '2.5.4.3': [{ utf8String: cn }] }]);

/** Loads the CA. caCertPem may be a bundle: the certificate that matches the key is the signer. */
export async function loadSigner(caCertPem: string, caKeyPem: string): Promise<Signer> {
  const key = privateKey(caKeyPem, 'RM_CA_DIR_INVALID', 'ca_key.pem');
  if (key.asymmetricKeyType !== 'rsa') throw new RingmasterError('RM_CA_DIR_INVALID', `ca_key.pem is a ${key.asymmetricKeyType ?? 'unknown'} key; the CA signs with SHA256withRSA and needs an RSA key`);
  const pub = createPublicKey(key);
  const match = certsFrom(caCertPem, false).find(({ cert }) => createPublicKey({ key: Buffer.from(cert.publicKeySpki), format: 'der', type: 'spki' }).equals(pub));
  if (!match) throw new RingmasterError('RM_CA_DIR_INVALID', 'ca_key.pem does not match ca_crt.pem');
  if (!match.cert.isCa) throw new RingmasterError('RM_CA_DIR_INVALID', `ca_crt.pem: ${match.cert.subjectDn} is not a CA certificate (basicConstraints CA:TRUE missing)`);
  const signer: Signer = { cert: match.cert };
  signerStates.set(signer, {
    key: key.toCryptoKey(rsaSha256, false, ['sign']),
    issuer: new px.Name(match.subjectRaw),
    aki: new px.AuthorityKeyIdentifierExtension(match.cert.subjectKeyId ?? keyIdentifier(match.cert.publicKeySpki), false),
  });
  return Promise.resolve(signer);
}

function stateOf(signer: Signer): SignerState {
  const state = signerStates.get(signer);
  if (!state) throw new RingmasterError('RM_INTERNAL', 'signer was not created by loadSigner');
  return state;
}

async function signCert(p: { subject: px.Name; issuer: px.Name; spki: Uint8Array; serial: bigint; notBefore: Date; notAfter: Date; key: webcrypto.CryptoKey; extensions: px.Extension[] }): Promise<string> {
  const seen = new Set<string>();
  for (const e of p.extensions) {
    if (seen.has(e.type)) throw new RingmasterError('RM_CA_CSR_EXTENSION_FORBIDDEN', `extension ${e.type} would appear twice in the certificate`);
    seen.add(e.type);
  }
  const cert = await px.X509CertificateGenerator.create({
    serialNumber: serialHex(p.serial), subject: p.subject, issuer: p.issuer, notBefore: p.notBefore, notAfter: p.notAfter,
    publicKey: p.spki.slice(), signingKey: p.key, signingAlgorithm: rsaSha256, extensions: p.extensions,
  }, webCrypto);
  return derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE');
}

export async function createCaCertificate(p: { commonName: string; keyPair: KeyPair; serial: bigint; notBefore: Date; notAfter: Date }): Promise<string> {
  const key = privateKey(p.keyPair.privateKeyPem, 'RM_INTERNAL', 'the CA key');
  if (key.asymmetricKeyType !== 'rsa') throw new RingmasterError('RM_INTERNAL', 'the CA key must be RSA (the CA signs with SHA256withRSA)');
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  const keyId = keyIdentifier(spki);
  const name = cnName(p.commonName);
  return signCert({
    subject: name, issuer: name, spki, serial: p.serial, notBefore: p.notBefore, notAfter: p.notAfter, key: key.toCryptoKey(rsaSha256, false, ['sign']),
    extensions: [
      netscapeComment,
      new px.AuthorityKeyIdentifierExtension(keyId, false),
      new px.BasicConstraintsExtension(true, undefined, true),
      new px.KeyUsagesExtension(px.KeyUsageFlags.keyCertSign | px.KeyUsageFlags.cRLSign, true),
      new px.SubjectKeyIdentifierExtension(keyId, false),
    ],
  });
}

export async function issueCertificate(p: IssueParams): Promise<string> {
  const state = stateOf(p.signer);
  let keyId: string;
  try {
    keyId = keyIdentifier(p.publicKeySpki);
  } catch (err) {
    throw new RingmasterError('RM_CA_CSR_MALFORMED', `the public key to certify is malformed: ${errorMessage(err)}`, { cause: err });
  }
  const extensions = [netscapeComment, state.aki, ...leafProfile, new px.SubjectKeyIdentifierExtension(keyId, false)];
  for (const e of p.copyExtensions) extensions.push(new px.Extension(e.oid, e.critical, e.der));
  if (p.cliAuth) extensions.push(cliAuthTrue);
  if (p.subjectAltNames.length) extensions.push(sanExtension(p.subjectAltNames));
  return signCert({ subject: cnName(p.commonName), issuer: state.issuer, spki: p.publicKeySpki, serial: p.serial, notBefore: p.notBefore, notAfter: p.notAfter, key: state.key, extensions });
}

export async function createCrl(p: { signer: Signer; number: bigint; thisUpdate: Date; nextUpdate: Date; revoked: RevokedEntry[] }): Promise<string> {
  const state = stateOf(p.signer);
  const seen = new Set<bigint>();
  const entries = p.revoked.filter((r) => !seen.has(r.serial) && seen.add(r.serial)).map((r) => ({ serialNumber: serialHex(r.serial), revocationDate: r.date, reason: r.reason ?? 1 }));
  const crl = await px.X509CrlGenerator.create({
    issuer: state.issuer, thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate, signingKey: state.key, signingAlgorithm: rsaSha256,
    extensions: [state.aki, new px.Extension(oids.crlNumber, false, encodeInt(p.number))], entries,
  }, webCrypto);
  return derToPem(new Uint8Array(crl.rawData), 'X509 CRL');
}

export async function createCsr(p: { commonName: string; keyPair: KeyPair; subjectAltNames?: SubjectAltName[]; extensionRequests?: { oid: string; value: string; critical?: boolean }[]; challengePassword?: string }): Promise<string> {
  const key = privateKey(p.keyPair.privateKeyPem, 'RM_INTERNAL', 'the request key');
  const alg = webAlgorithm(key, 'RM_INTERNAL');
  const keys = { privateKey: key.toCryptoKey(alg.importAs, false, ['sign']), publicKey: createPublicKey(key).toCryptoKey(alg.importAs, true, ['verify']) };
  const extensions = p.subjectAltNames?.length ? [sanExtension(p.subjectAltNames)] : [];
  for (const e of p.extensionRequests ?? []) extensions.push(new px.Extension(e.oid, e.critical ?? false, encodeText(0x0c, e.value)));
  const pw = p.challengePassword;
  const attributes = pw === undefined ? [] : [new px.Attribute(oids.challengePassword, [encodeText(isPrintable(pw) ? 0x13 : 0x0c, pw)])];
  const csr = await px.Pkcs10CertificateRequestGenerator.create({ name: cnName(p.commonName), keys, signingAlgorithm: alg.sign, extensions, attributes }, webCrypto);
  return derToPem(new Uint8Array(csr.rawData), 'CERTIFICATE REQUEST');
}
