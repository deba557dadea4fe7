import dnsPacket from 'dns-packet';
import { isIP } from 'node:net';

// DNS messages on the wire (RFC 1035, EDNS0 RFC 6891). The only importer of dns-packet, which
// checks a whole query (every section, every record type a client may put in it) and reads its
// OPT record. Answers are written here rather than by dns-packet because it does not compress
// names: without compression an SRV answer naming a handful of servers no longer fits the 512
// bytes of a client without EDNS0, such as the Ruby resolver Puppet agents use.

export const rrType = { A: 1, NS: 2, SOA: 6, AAAA: 28, SRV: 33, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const rrClass = { IN: 1, ANY: 255 } as const;
export const rcodes = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
export type Rcode = (typeof rcodes)[keyof typeof rcodes];
export const rcodeName = (rcode: number): string => Object.entries(rcodes).find(([, v]) => v === rcode)?.[0] ?? `RCODE${rcode}`;

export type Question = {
  /** The labels as asked (case kept, for the echo). */
  labels: Buffer[];
  /** Lower-case name for look-ups; a label holding "." or "\" is escaped, so it matches nothing configured. */
  name: string;
  type: number;
  class: number;
};

export type Edns = { udpSize: number; version: number };

export type Query = { id: number; opcode: number; rd: boolean; question: Question; edns: Edns | undefined };

/** A query to answer, an error to send back (header and what could be read), or silence. */
export type Decoded =
  | { kind: 'query'; query: Query }
  | { kind: 'error'; id: number; opcode: number; rd: boolean; rcode: Rcode; question: Question | undefined; edns: Edns | undefined }
  | { kind: 'drop'; reason: 'short' | 'response' };

export type ResourceRecord = { name: string; ttl: number } & (
  | { type: 'A' | 'AAAA'; address: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { type: 'NS'; host: string }
  | { type: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
);

export type Reply = {
  id: number;
  opcode: number;
  rd: boolean;
  aa: boolean;
  rcode: Rcode;
  question: Question | undefined;
  answers: readonly ResourceRecord[];
  authorities: readonly ResourceRecord[];
  additionals: readonly ResourceRecord[];
  /** Present when the query had EDNS0: the reply carries an OPT record advertising `udpSize`. */
  edns: { udpSize: number } | undefined;
};

const MAX_MESSAGE = 65535;

/** Reads a (possibly compressed) name; pointers may only go backwards, so a loop cannot be built. */
function readName(buf: Buffer, offset: number): { labels: Buffer[]; end: number } | undefined {
  const labels: Buffer[] = [];
  let pos = offset;
  let end = -1;
  let length = 0;
  for (;;) {
    if (pos >= buf.length) return undefined;
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { labels, end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) return undefined;
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (target >= pos) return undefined;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0 || pos + 1 + len > buf.length) return undefined;
    length += len + 1;
    if (length > 255) return undefined;
    labels.push(buf.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

const plainLabel = (l: Buffer): boolean => !l.includes(0x2e) && !l.includes(0x5c);

function lookupName(labels: Buffer[]): string {
  return labels
    .map((l) => (plainLabel(l) ? l.toString('latin1') : l.toString('latin1').replace(/[\\.]/g, (c) => `\\${c}`)).toLowerCase())
    .join('.');
}

/** Reads a query. Anything that is not a well-formed query gets FORMERR, or silence when it cannot be answered. */
export function decodeQuery(buf: Buffer): Decoded {
  if (buf.length < 12) return { kind: 'drop', reason: 'short' };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  // Never answer a response: two responders must not be made to talk to each other.
  if (flags & 0x8000) return { kind: 'drop', reason: 'response' };
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & 0x0100) !== 0;
  const qdcount = buf.readUInt16BE(4);
  let question: Question | undefined;
  if (qdcount === 1) {
    const n = readName(buf, 12);
    if (n && n.end + 4 <= buf.length) {
      question = { labels: n.labels, name: lookupName(n.labels), type: buf.readUInt16BE(n.end), class: buf.readUInt16BE(n.end + 2) };
    }
  }
  const error = (rcode: Rcode, q: Question | undefined, edns?: Edns): Decoded => ({ kind: 'error', id, opcode, rd, rcode, question: q, edns });
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(buf);
  } catch {
    return error(rcodes.FORMERR, undefined);
  }
  // Trailing bytes after the last record mean the counts and the contents disagree.
  if ((dnsPacket.decode as unknown as { bytes: number }).bytes !== buf.length) return error(rcodes.FORMERR, undefined);
  const opts = (packet.additionals ?? []).filter((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
  if (opts.length > 1 || (opts[0] && opts[0].name !== '.')) return error(rcodes.FORMERR, undefined);
  const opt = opts[0];
  const edns: Edns | undefined = opt ? { udpSize: Math.max(512, opt.udpPayloadSize), version: opt.ednsVersion ?? 0 } : undefined;
  if (opcode !== 0) return error(rcodes.NOTIMP, question, edns);
  if (qdcount !== 1 || !question) return error(rcodes.FORMERR, undefined, edns);
  // OPT is a pseudo-record: asking for it is malformed (RFC 6891 6.1.1).
  if (question.type === rrType.OPT) return error(rcodes.FORMERR, question, edns);
  if (edns && edns.version > 0) return error(rcodes.BADVERS, question, edns);
  return { kind: 'query', query: { id, opcode, rd, question, edns } };
}

/** Writes names with compression against everything written before (RFC 1035 4.1.4). */
class Writer {
  buf = Buffer.allocUnsafe(MAX_MESSAGE + 1024);
  pos = 0;
  #names = new Map<string, number>();

  reset(): void {
    this.pos = 0;
    this.#names.clear();
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  /** Labels as raw bytes (the question, as asked); `keys` are their lower-case look-up forms. */
  labels(labels: readonly Buffer[], keys: readonly string[]): void {
    for (let i = 0; i < labels.length; i++) {
      const key = keys.slice(i).join('.');
      const at = this.#names.get(key);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.pos < 0x4000) this.#names.set(key, this.pos);
      const l = labels[i]!;
      this.u8(l.length);
      l.copy(this.buf, this.pos);
      this.pos += l.length;
    }
    this.u8(0);
  }
  name(name: string): void {
    const keys = name === '' ? [] : name.split('.');
    this.labels(keys.map((k) => Buffer.from(k, 'latin1')), keys);
  }
}

const writer = new Writer();

function writeRecord(w: Writer, rr: ResourceRecord): void {
  w.name(rr.name);
  w.u16(rrType[rr.type]);
  w.u16(rrClass.IN);
  w.u32(rr.ttl);
  const lengthAt = w.pos;
  w.u16(0);
  switch (rr.type) {
    case 'A':
    case 'AAAA': {
      const bytes = addressBytes(rr.address);
      bytes.copy(w.buf, w.pos);
      w.pos += bytes.length;
      break;
    }
    case 'SRV':
      w.u16(rr.priority);
      w.u16(rr.weight);
      w.u16(rr.port);
      w.name(rr.target);
      break;
    case 'NS':
      w.name(rr.host);
      break;
    case 'SOA':
      w.name(rr.mname);
      w.name(rr.rname);
      for (const v of [rr.serial, rr.refresh, rr.retry, rr.expire, rr.minimum]) w.u32(v);
      break;
  }
  w.buf.writeUInt16BE(w.pos - lengthAt - 2, lengthAt);
}

const addressCache = new Map<string, Buffer>();

/** The 4 or 16 bytes of an address (cached: the same few addresses are written over and over). */
export function addressBytes(address: string): Buffer {
  let b = addressCache.get(address);
  if (b) return b;
  if (isIP(address) === 4) {
    b = Buffer.from(address.split('.').map(Number));
  } else {
    let a = address.replace(/%.*$/, '');
    // An IPv4 tail (::ffff:192.0.2.1) is two groups.
    const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
    if (v4) {
      const [o1, o2, o3, o4] = v4.slice(1).map(Number) as [number, number, number, number];
      a = `${a.slice(0, v4.index)}${((o1 << 8) | o2).toString(16)}:${((o3 << 8) | o4).toString(16)}`;
    }
    const [head = '', tail] = a.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    b = Buffer.alloc(16);
    groups.forEach((g, i) => b!.writeUInt16BE(parseInt(g, 16), i * 2));
  }
  if (addressCache.size < 10_000) addressCache.set(address, b);
  return b;
}

/**
 * The reply as bytes, at most `limit` long. Additional records that do not fit are left out;
 * when the answer or authority section does not fit, both are dropped and TC is set, so the
 * client asks again over TCP (RFC 2181 9).
 */
export function encodeReply(reply: Reply, limit: number): { buf: Buffer; truncated: boolean } {
  const w = writer;
  w.reset();
  const max = Math.min(limit, MAX_MESSAGE) - (reply.edns ? 11 : 0);
  const flagsAt = 2;
  w.u16(reply.id);
  w.u16(0);
  w.u16(reply.question ? 1 : 0);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  if (reply.question) {
    w.labels(reply.question.labels, reply.question.name === '' ? [] : reply.question.name.split('.'));
    w.u16(reply.question.type);
    w.u16(reply.question.class);
  }
  const afterQuestion = w.pos;
  let truncated = false;
  const counts = [0, 0, 0];
  sections: for (const [i, section] of [reply.answers, reply.authorities].entries()) {
    for (const rr of section) {
      writeRecord(w, rr);
      if (w.pos > max) {
        truncated = true;
        w.pos = afterQuestion;
        counts[0] = counts[1] = 0;
        break sections;
      }
      counts[i]!++;
    }
  }
  if (!truncated) {
    for (const rr of reply.additionals) {
      const mark = w.pos;
      writeRecord(w, rr);
      if (w.pos > max) {
        w.pos = mark;
        break;
      }
      counts[2]!++;
    }
  }
  if (reply.edns) {
    w.u8(0);
    w.u16(rrType.OPT);
    w.u16(reply.edns.udpSize);
    w.u32((reply.rcode >> 4) << 24);
    w.u16(0);
    counts[2]!++;
  }
  const flags = 0x8000 | ((reply.opcode & 0xf) << 11) | (reply.aa ? 0x0400 : 0) | (truncated ? 0x0200 : 0) | (reply.rd ? 0x0100 : 0) | (reply.rcode & 0xf);
  w.buf.writeUInt16BE(flags, flagsAt);
  w.buf.writeUInt16BE(counts[0]!, 6);
  w.buf.writeUInt16BE(counts[1]!, 8);
  w.buf.writeUInt16BE(counts[2]!, 10);
  return { buf: Buffer.from(w.buf.subarray(0, w.pos)), truncated };
}

// ---- for tests, the benchmark's client and the fuzz test: queries out, any message in ----

export type QueryOptions = { id?: number; type?: number; class?: number; rd?: boolean; udpSize?: number | undefined; ednsVersion?: number };

/** A query for `name` (case kept), with an OPT record when `udpSize` is given. */
export function encodeQuery(name: string, o: QueryOptions = {}): Buffer {
  const typeName = Object.entries(rrType).find(([, v]) => v === (o.type ?? rrType.A))?.[0];
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: o.id ?? 0,
    flags: o.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: (typeName ?? `UNKNOWN_${o.type}`) as dnsPacket.RecordType, class: o.class === undefined || o.class === 1 ? 'IN' : (`UNKNOWN_${o.class}` as 'IN') }],
    additionals: o.udpSize === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: o.udpSize, ednsVersion: o.ednsVersion ?? 0, flags: 0 } as dnsPacket.OptAnswer],
  };
  const buf = dnsPacket.encode(packet);
  // dns-packet knows only the types and classes it names; write any other one directly.
  const end = readName(buf, 12)?.end ?? 12;
  if (typeName === undefined && o.type !== undefined) buf.writeUInt16BE(o.type, end);
  if (o.class !== undefined && o.class !== 1) buf.writeUInt16BE(o.class, end + 2);
  return buf;
}

export type DecodedMessage = dnsPacket.DecodedPacket & { rcodeValue: number; tc: boolean; aa: boolean };

/** Any message, decoded (for checking replies). Throws when it is malformed. */
export function decodeMessage(buf: Buffer): DecodedMessage {
  const p = dnsPacket.decode(buf);
  const flags = buf.readUInt16BE(2);
  const opt = (p.additionals ?? []).find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
  return Object.assign(p, { rcodeValue: (flags & 0xf) | ((opt?.extendedRcode ?? 0) << 4), tc: (flags & 0x0200) !== 0, aa: (flags & 0x0400) !== 0 });
}
