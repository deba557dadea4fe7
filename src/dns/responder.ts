import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Clock } from '../lib/clock.ts';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { RateLimiter, type RateLimitSettings } from './ratelimit.ts';
import { decodeQuery, encodeReply, rcodeName, rcodes, type Reply } from './wire.ts';
import { answer, zoneOf, type ZoneSnapshot } from './zone.ts';

// The DNS responder's sockets: UDP and TCP on one address and port. `handle` turns one message
// into the bytes to send back (or nothing), and never throws: whatever arrives, the worst outcome
// is FORMERR or silence. Counters are kept for a metrics module to read (`stats()`).

export type ResponderSettings = {
  address: string;
  port: number;
  maxUdpSize: number;
  rateLimit: RateLimitSettings;
  tcp: { idleTimeout: number; maxConnections: number };
};

export type ResponderDeps = { clock: Clock; log: Log; zones: () => readonly ZoneSnapshot[] };

export type DnsStats = {
  queries: { udp: number; tcp: number };
  /** Replies sent, by RCODE name (NOERROR, NXDOMAIN, REFUSED, FORMERR, NOTIMP, BADVERS). */
  responses: Record<string, number>;
  /** Replies too large for the client's UDP size, sent empty with TC set. */
  truncated: number;
  /** Queries not answered at all, by why. */
  dropped: { rateLimited: number; short: number; response: number; oversize: number; badSourcePort: number };
  /** Rate-limited queries answered with an empty truncated reply (see rateLimit.slip). */
  slipped: number;
  /** Answers that named every target because none was healthy (a counter). */
  fallbackAnswers: number;
  /** Names currently answered that way (a gauge, set when health changes). */
  fallbackNames: number;
  tcp: { open: number; refused: number };
  rateLimitedSources: number;
};

/** Largest query accepted over UDP; a real one is well under 512 bytes. */
const MAX_UDP_QUERY = 4096;
/** Source ports that are services answering anything (echo, daytime, chargen, time): a reply there could start a loop. */
const badSourcePorts = new Set([0, 7, 13, 19, 37]);

export class DnsResponder {
  #settings: ResponderSettings;
  #deps: ResponderDeps;
  #limiter: RateLimiter;
  #turns = new Map<string, number>();
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #connections = new Set<Socket>();
  #stats: DnsStats = {
    queries: { udp: 0, tcp: 0 },
    responses: {},
    truncated: 0,
    dropped: { rateLimited: 0, short: 0, response: 0, oversize: 0, badSourcePort: 0 },
    slipped: 0,
    fallbackAnswers: 0,
    fallbackNames: 0,
    tcp: { open: 0, refused: 0 },
    rateLimitedSources: 0,
  };

  constructor(settings: ResponderSettings, deps: ResponderDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#limiter = new RateLimiter(settings.rateLimit, deps.clock);
  }

  stats(): DnsStats {
    return structuredClone({ ...this.#stats, tcp: { ...this.#stats.tcp, open: this.#connections.size }, rateLimitedSources: this.#limiter.size });
  }

  setFallbackNames(n: number): void {
    this.#stats.fallbackNames = n;
  }

  /** The reply to one message from `source` (an IP address), or undefined to stay silent. */
  handle(msg: Buffer, transport: 'udp' | 'tcp', source: string): Buffer | undefined {
    const s = this.#stats;
    s.queries[transport]++;
    if (transport === 'udp' && msg.length > MAX_UDP_QUERY) {
      s.dropped.oversize++;
      return undefined;
    }
    // Spoofing a source needs UDP; over TCP the peer has proved its address.
    const verdict = transport === 'udp' ? this.#limiter.check(source) : 'pass';
    if (verdict === 'drop') {
      s.dropped.rateLimited++;
      return undefined;
    }
    const d = decodeQuery(msg);
    if (d.kind === 'drop') {
      s.dropped[d.reason]++;
      return undefined;
    }
    const limit = transport === 'tcp' ? 65535 : Math.min(this.#settings.maxUdpSize, d.kind === 'query' && d.query.edns ? d.query.edns.udpSize : 512);
    const edns = (d.kind === 'query' ? d.query.edns : d.edns) ? { udpSize: this.#settings.maxUdpSize } : undefined;
    let reply: Reply;
    if (d.kind === 'error') {
      reply = { id: d.id, opcode: d.opcode, rd: d.rd, aa: false, rcode: d.rcode, question: d.question, answers: [], authorities: [], additionals: [], edns };
    } else if (verdict === 'slip') {
      // No larger than the query: the question and TC, nothing else.
      s.slipped++;
      const q = d.query;
      const out = encodeReply({ id: q.id, opcode: q.opcode, rd: q.rd, aa: false, rcode: rcodes.NOERROR, question: q.question, answers: [], authorities: [], additionals: [], edns: undefined }, limit).buf;
      out.writeUInt16BE(out.readUInt16BE(2) | 0x0200, 2);
      return out;
    } else {
      const q = d.query;
      const zones = this.#deps.zones();
      const a = answer(zones, q.question, (name) => this.#turn(name));
      if (a.answers.length > 0 && zoneOf(zones, q.question.name)?.fallbackNames.has(q.question.name)) s.fallbackAnswers++;
      reply = { id: q.id, opcode: q.opcode, rd: q.rd, question: q.question, edns, ...a };
    }
    const { buf, truncated } = encodeReply(reply, limit);
    if (truncated) s.truncated++;
    const name = rcodeName(reply.rcode);
    s.responses[name] = (s.responses[name] ?? 0) + 1;
    return buf;
  }

  #turn(name: string): number {
    const n = (this.#turns.get(name) ?? 0) + 1;
    // Names that get here have several addresses, so they are configured ones: the map stays small.
    this.#turns.set(name, n >= 1_000_000 ? 0 : n);
    return n;
  }

  /** Binds UDP, then TCP on the same port (the one the kernel picked, when port is 0). */
  async listen(): Promise<AddressInfo> {
    const { address } = this.#settings;
    for (let attempt = 0; ; attempt++) {
      const udp = await this.#bindUdp(address, this.#settings.port);
      const port = (udp.address()).port;
      try {
        this.#tcp = await this.#bindTcp(address, port);
        this.#udp = udp;
        return udp.address();
      } catch (err) {
        udp.close();
        // A kernel-picked UDP port may be taken for TCP; pick again.
        if (this.#settings.port !== 0 || attempt >= 5) throw err;
      }
    }
  }

  #bindUdp(address: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const udp = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
      udp.once('error', (err) => reject(new RingmasterError('RM_DNS_LISTEN', `cannot listen on UDP ${address}:${port}: ${errorMessage(err)}`, { cause: err })));
      udp.bind(port, address, () => {
        udp.removeAllListeners('error');
        udp.on('error', (err) => this.#deps.log.warn({ err: errorMessage(err) }, 'DNS UDP socket error'));
        udp.on('message', (msg, rinfo) => {
          if (badSourcePorts.has(rinfo.port)) {
            this.#stats.dropped.badSourcePort++;
            return;
          }
          const out = this.handle(msg, 'udp', rinfo.address);
          if (out) udp.send(out, rinfo.port, rinfo.address);
        });
        resolve(udp);
      });
    });
  }

  #bindTcp(address: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.#accept(socket));
      server.once('error', (err) => reject(new RingmasterError('RM_DNS_LISTEN', `cannot listen on TCP ${address}:${port}: ${errorMessage(err)}`, { cause: err })));
      server.listen({ host: address, port, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.#deps.log.warn({ err: errorMessage(err) }, 'DNS TCP server error'));
        resolve(server);
      });
    });
  }

  /** Messages over TCP carry a two-byte length (RFC 1035 4.2.2); several may come on one connection. */
  #accept(socket: Socket): void {
    if (this.#connections.size >= this.#settings.tcp.maxConnections) {
      this.#stats.tcp.refused++;
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.#settings.tcp.idleTimeout, () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        const out = this.handle(msg, 'tcp', socket.remoteAddress ?? '');
        if (!out) continue;
        const frame = Buffer.allocUnsafe(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        // A client that sends faster than it reads waits for its answers.
        if (!socket.write(frame)) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      }
    });
  }

  async close(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const c of this.#connections) c.destroy();
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }
}
