import { RingmasterError } from '../lib/errors.ts';

// The DER subset that CSRs, certificates and CRLs need: low tag numbers and definite lengths of up to
// four bytes. The reader refuses anything else with a plain Error rather than guessing; the parsers in
// x509.ts turn that into their own error codes.

export type Der = { tag: number; raw: Uint8Array; content: Uint8Array };

/** The TLV at pos; without pos the buffer must hold exactly one. */
export function readDer(buf: Uint8Array, pos?: number): Der {
  const at = pos ?? 0;
  const tag = buf[at];
  let len = buf[at + 1];
  if (tag === undefined || len === undefined) throw new Error('truncated DER');
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p++] ?? Number.NaN);
  }
  if (!(p + len <= buf.length)) throw new Error('truncated DER');
  if (pos === undefined && p + len !== buf.length) throw new Error('trailing bytes after the DER structure');
  return { tag, raw: buf.subarray(at, p + len), content: buf.subarray(p, p + len) };
}

export function kids(d: Der): Der[] {
  if ((d.tag & 0x20) === 0) throw new Error('expected a constructed DER value');
  const out: Der[] = [];
  for (let p = 0; p < d.content.length; p += out[out.length - 1]?.raw.length ?? 0) out.push(readDer(d.content, p));
  return out;
}

export function want(d: Der | undefined, tag: number, what: string): Der {
  if (d?.tag !== tag) throw new Error(`${what} is missing or malformed`);
  return d;
}

export function decodeOid(c: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  let width = 0;
  for (const b of c) {
    // 20 bytes hold a 128-bit UUID arc; longer ones only serve to make the shifts quadratic.
    if (++width > 20) throw new Error('object identifier arc too long');
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) { arcs.push(v); v = 0n; width = 0; }
  }
  const first = arcs.shift();
  if (first === undefined || (c[c.length - 1]! & 0x80) !== 0) throw new Error('malformed object identifier');
  const top = first < 80n ? first / 40n : 2n;
  return [top, first - top * 40n, ...arcs].join('.');
}

export function decodeInt(c: Uint8Array): bigint {
  if (c.length === 0) throw new Error('empty INTEGER');
  const n = BigInt(`0x${hex(c)}`);
  return (c[0]! & 0x80) !== 0 ? n - (1n << BigInt(c.length * 8)) : n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text of the DER string types found in names, attributes and Puppet's extension values. */
export function decodeString(d: Der): string | undefined {
  if (d.tag === 0x0c) return utf8.decode(d.content);
  if (d.tag === 0x1e) return Buffer.from(d.content).swap16().toString('utf16le');
  return [0x12, 0x13, 0x14, 0x16, 0x1a].includes(d.tag) ? Buffer.from(d.content).toString('latin1') : undefined;
}

export function decodeTime(d: Der | undefined, what: string): Date {
  const s = d === undefined ? '' : Buffer.from(d.content).toString('latin1');
  const m = d?.tag === 0x17 ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s) : d?.tag === 0x18 ? /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(?:\.\d+)?Z$/.exec(s) : null;
  if (!m) throw new Error(`${what} is missing or malformed`);
  const [y, mo, day, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const year = d?.tag === 0x17 ? (y < 50 ? 2000 + y : 1900 + y) : y;
  const date = new Date(Date.UTC(year, mo - 1, day, h, mi, sec));
  // Date.UTC rolls month 13 into the next year; a field out of range is a malformed time, not a later one.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== day || h > 23 || mi > 59 || sec > 59) {
    throw new Error(`${what} is missing or malformed`);
  }
  return date;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export function encode(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const content = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const n = content.length;
  if (n >= 0x1000000) throw new Error('DER value too large');
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Uint8Array.from([tag, ...len]), content]);
}

/** A non-negative INTEGER (positive for serials): a leading zero keeps the high bit from making it negative. */
export function encodeInt(n: bigint, serial = false): Uint8Array {
  if (n < (serial ? 1n : 0n)) throw new RingmasterError('RM_INTERNAL', `${serial ? 'serial' : 'INTEGER'} out of range: ${n.toString()}`);
  const h = n.toString(16);
  const even = h.length % 2 ? `0${h}` : h;
  return encode(0x02, Buffer.from(parseInt(even.slice(0, 2), 16) & 0x80 ? `00${even}` : even, 'hex'));
}

export function encodeOid(oid: string): Uint8Array {
  if (!/^[0-2]\.\d+(\.\d+)*$/.test(oid)) throw new RingmasterError('RM_CA_CSR_MALFORMED', `"${oid}" is not a dotted object identifier`);
  const [a = 0n, b = 0n, ...rest] = oid.split('.').map(BigInt);
  const bytes: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const chunk = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...chunk);
  }
  return encode(0x06, Uint8Array.from(bytes));
}

export function encodeTime(d: Date): Uint8Array {
  const s = `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? encode(0x17, Buffer.from(s.slice(2))) : encode(0x18, Buffer.from(s));
}

export const encodeText = (tag: number, s: string): Uint8Array => encode(tag, Buffer.from(s, tag === 0x0c ? 'utf8' : 'latin1'));
