import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server, type TLSSocket, type SecureContextOptions } from 'node:tls';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { RequestObserver } from '../observability/observer.ts';
import type { RequestTrace } from '../observability/request.ts';
import { checkRequestTarget, type CheckedPath, type QueryParams } from './path.ts';
import { carryPeer, peerOf, type Peer } from './peer.ts';
import { ParkedSocket, park } from './parked.ts';
import { TlsTap } from './tls-tap.ts';
import { errorResponse, type ServiceRequest, type ServiceResponse } from './http.ts';
import { AgentConnection, type AgentRequest, type AgentSocket } from './agent-http.ts';
import type { AgentResponse } from './agent-response.ts';

// One HTTPS listener. It asks for a client certificate without requiring one (agents bootstrap
// without), lets OpenSSL verify what is presented against the CA bundle and CRL, and refuses
// every request on a connection whose certificate did not verify. The TLS context is swapped in
// place when the CRL changes, and each request re-checks the serial so that a revocation also
// reaches connections that were kept alive from before it.

/** PEM texts; `ca` and `crl` hold one PEM block each (Node reads only the first CRL of a string). */
export type TlsMaterial = { key: string; cert: string; ca: string[]; crl: string[] };
/** Answers a request, or returns undefined when it has answered on `req.raw.res` itself (the proxy). */
export type Dispatch = (req: ServiceRequest) => Promise<ServiceResponse | undefined>;

export type ListenerOptions = {
  name: string;
  address: string;
  port: number;
  requestHeaderTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Idle time after which a TLS 1.3 connection is parked out of OpenSSL (parked.ts); 0: never. */
  parkIdleAfterMs?: number | undefined;
  /**
   * With parking: a connection is tapped (and so can be parked) only when the listener already
   * holds this many open connections as it arrives; those below stay with OpenSSL alone and cost
   * no more per request than without parking. 0 taps every connection.
   */
  parkAboveConnections?: number | undefined;
  maxHeaderBytes: number;
  tls: TlsMaterial;
  dispatch: Dispatch;
  isRevoked: (serial: bigint) => boolean;
  log: Log;
  /** Metrics and access log; absent in tests that need neither. */
  observer?: RequestObserver | undefined;
};

export class Listener {
  readonly name: string;
  #server: Server;
  #options: ListenerOptions;
  #log: Log;
  #draining = false;
  /** Open connections, for the drain and the timeout sweep. */
  #connections = new Set<AgentConnection>();
  #sweep: NodeJS.Timeout | undefined;
  /** With parking: the TCP server whose connections reach #server through a tap each. */
  #tcp: TcpServer | undefined;
  /**
   * Taps by their ClientHello's random, until their handshake's keylog lines have been matched;
   * null for a random two connections sent (a client copying another's), which neither may use.
   */
  #hellos = new Map<string, TlsTap | null>();
  #taps = new WeakMap<TLSSocket, TlsTap>();
  /** With parking: TCP connections open now, handshaking or not. */
  #open = 0;
  #closed = (): void => {
    this.#open--;
  };
  /** Connections parked now, and since start. */
  parked = 0;
  parkedTotal = 0;

  constructor(options: ListenerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#log = options.log;
    this.#server = createServer({
      ...secureOptions(options.tls),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      // A client that connects and never finishes its handshake is held no longer than a slow head.
      handshakeTimeout: options.requestHeaderTimeoutMs,
      noDelay: true,
    });
    const settings = {
      maxHeaderBytes: options.maxHeaderBytes,
      headerTimeoutMs: options.requestHeaderTimeoutMs,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs,
      onRefused: (err: RingmasterError, remote: string | undefined) => {
        options.observer?.requestRefused(this.name, err.code);
        this.#log.debug({ listener: this.name, remote, code: err.code, err: err.message }, 'request refused');
      },
      onClosed: (conn: AgentConnection) => {
        if (this.#connections.delete(conn) && conn.socket instanceof ParkedSocket) this.parked--;
      },
    };
    const onRequest = (req: AgentRequest, res: AgentResponse): void => {
      // The observer's record is made when the answer closes.
      const observed = options.observer?.begin(this.name, req, res, () => this.#certname(req.socket));
      if (observed) res.whenClosed(observed.end);
      void this.#handle(req, res, observed?.trace);
    };
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      const tap = this.#taps.get(socket);
      if (tap) {
        if (tap.clientRandom !== undefined) this.#hellos.delete(tap.clientRandom);
        // Under a tap node:tls sees no TCP socket: the agent's address comes from the tap's.
        Object.defineProperty(socket, 'remoteAddress', { value: tap.raw.remoteAddress });
      }
      const conn = new AgentConnection(socket, settings, onRequest, tap);
      this.#connections.add(conn);
      if (options.observer) {
        const peer = this.#peer(socket);
        options.observer.tlsHandshake(this.name, peer.kind, peer.kind === 'rejected' ? peer.reason : undefined);
      }
    });
    if ((options.parkIdleAfterMs ?? 0) > 0) this.#tapped();
    this.#server.on('tlsClientError', (err: Error) => {
      options.observer?.tlsFailure(this.name, err);
      this.#log.debug({ listener: this.name, err: errorMessage(err) }, 'TLS handshake failed');
    });
  }

  /**
   * Connections are accepted by a TCP server and handed to the TLS server through a tap, so that
   * idle ones can be parked. The keylog lines of each handshake carry its traffic secrets; they
   * are matched to the tap by the ClientHello's random and kept nowhere else.
   */
  #tapped(): void {
    const above = this.#options.parkAboveConnections ?? 0;
    this.#tcp = createTcpServer({ noDelay: true }, (raw) => {
      this.#open++;
      // One function for every socket: a closure made here would share this scope's context,
      // which holds the tap, and keep the tap and its TLS socket alive after parking.
      raw.once('close', this.#closed);
      if (this.#open - 1 < above) {
        // node:tls asks OpenSSL for a connection's key log only when the server has a 'keylog'
        // listener as the connection arrives: a connection that will never be parked has none.
        this.#server.off('keylog', this.#keylog);
        this.#server.emit('connection', raw);
        this.#server.on('keylog', this.#keylog);
        return;
      }
      const tap = new TlsTap(raw, (random) => this.#hellos.set(random, this.#hellos.has(random) ? null : tap));
      tap.once('close', () => {
        if (tap.clientRandom !== undefined && this.#hellos.get(tap.clientRandom) !== undefined) this.#hellos.delete(tap.clientRandom);
      });
      this.#server.emit('connection', tap);
    });
    this.#server.on('keylog', this.#keylog);
  }

  #keylog = (line: Buffer, socket: TLSSocket): void => {
    const text = line.toString('latin1');
    const [label, random, secret] = text.trim().split(' ');
    const tap = random === undefined ? undefined : this.#hellos.get(random);
    if (!tap || secret === undefined) return;
    this.#taps.set(socket, tap);
    if (label === 'CLIENT_TRAFFIC_SECRET_0') tap.clientSecret = Buffer.from(secret, 'hex');
    else if (label === 'SERVER_TRAFFIC_SECRET_0') tap.serverSecret = Buffer.from(secret, 'hex');
  };

  async listen(): Promise<AddressInfo> {
    const address = await listenOn(this.#tcp ?? this.#server, this.#options.port, this.#options.address);
    const parkAfter = this.#options.parkIdleAfterMs ?? 0;
    // Slow heads and idle keep-alive connections are found by one sweep, not a timer per request.
    const every = Math.max(50, Math.min(1000, Math.min(this.#options.requestHeaderTimeoutMs, this.#options.keepAliveTimeoutMs) / 4));
    this.#sweep = setInterval(() => {
      const now = performance.now();
      for (const conn of this.#connections) {
        conn.expire(now);
        if (parkAfter > 0 && conn.parkable(now, parkAfter)) this.#park(conn);
      }
    }, parkAfter > 0 ? Math.min(every, Math.max(50, parkAfter / 2)) : every).unref();
    return address;
  }

  /** For the metrics: agent connections open (handshake done), parked now, parked since start. */
  stats(): { connections: number; parked: number; parkedTotal: number } {
    return { connections: this.#connections.size, parked: this.parked, parkedTotal: this.parkedTotal };
  }

  address(): AddressInfo {
    return (this.#tcp ?? this.#server).address() as AddressInfo;
  }

  #park(conn: AgentConnection): void {
    const tls = conn.socket as TLSSocket;
    const result = park(tls, conn.tap!);
    if ('kept' in result) {
      // Bytes still on their way: the next sweep tries again. Otherwise it stays with OpenSSL.
      if (result.again) return;
      conn.tap = undefined;
      this.#log.debug({ listener: this.name, remote: tls.remoteAddress, why: result.kept }, 'idle connection kept in TLS');
      return;
    }
    carryPeer(tls, result.parked);
    conn.rebind(result.parked);
    this.parked++;
    this.parkedTotal++;
  }

  /** New handshakes use the new material at once; nothing is restarted. */
  updateTls(tls: TlsMaterial): void {
    this.#server.setSecureContext(secureOptions(tls));
  }

  #isDraining = (): boolean => this.#draining;

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Stops accepting, answers what arrives on open connections with `Connection: close`, lets
   * requests in flight finish until the deadline, then cuts what is left. A connection is closed
   * once it has been idle for `idleGraceMs`, so a request an agent sends on it just now is
   * answered rather than reset (http.Server#close would drop idle connections at once).
   */
  async close(deadlineMs = 10_000, idleGraceMs = Math.min(500, deadlineMs)): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => (this.#tcp ?? this.#server).close(() => resolve()));
    const sweep = () => {
      const now = performance.now();
      for (const conn of this.#connections) {
        if (!conn.busy && now - conn.idleSince >= idleGraceMs) conn.destroy();
      }
    };
    const sweeper = setInterval(sweep, Math.max(10, Math.min(100, idleGraceMs)));
    const timer = setTimeout(() => {
      for (const conn of this.#connections) conn.destroy();
    }, deadlineMs);
    sweep();
    await closed;
    clearInterval(sweeper);
    clearInterval(this.#sweep);
    clearTimeout(timer);
  }

  async #handle(req: AgentRequest, res: AgentResponse, trace: RequestTrace | undefined): Promise<void> {
    let response: ServiceResponse;
    try {
      const peer = this.#peer(req.socket);
      if (peer.kind === 'rejected') {
        throw new RingmasterError('RM_TLS_PEER_REJECTED', `client certificate${peer.certname ? ` for ${peer.certname}` : ''} refused: ${peer.reason}`);
      }
      const answer = await this.#options.dispatch(new ListenerRequest(req, res, checkRequestTarget(req.url), peer, this.#isDraining, trace));
      if (answer === undefined) return;
      response = answer;
    } catch (err) {
      if (!(err instanceof RingmasterError) || err.code === 'RM_INTERNAL') {
        this.#log.error({ err, url: req.url }, 'request failed');
      }
      response = errorResponse(err instanceof RingmasterError ? err : new RingmasterError('RM_INTERNAL', 'internal error', { cause: err }));
    }
    if (res.headersSent) {
      // Part of an answer is out: the only honest signal left is to cut the connection.
      res.destroy();
      return;
    }
    const code = response.headers?.['x-ringmaster-error'];
    if (trace && code !== undefined) trace.code ??= code;
    this.#send(req, res, response, trace);
  }

  #certname(socket: AgentSocket): string | undefined {
    const peer = this.#peer(socket);
    return peer.kind === 'verified' ? peer.certname : undefined;
  }

  #peer(socket: AgentSocket): Peer {
    const peer = peerOf(socket);
    if (peer.kind === 'verified' && this.#options.isRevoked(peer.cert.serial)) {
      return { kind: 'rejected', reason: 'certificate revoked', certname: peer.certname };
    }
    return peer;
  }

  #send(req: AgentRequest, res: AgentResponse, r: ServiceResponse, trace: RequestTrace | undefined): void {
    const body = r.body === undefined ? undefined : typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
    const headers: Record<string, string | number> = { ...r.headers };
    if (body !== undefined && r.status !== 204 && r.status !== 304) headers['content-length'] = body.length;
    // A request body we did not read would otherwise be parsed as the next request.
    if (!req.complete || this.#draining) headers.connection = 'close';
    res.writeHead(r.status, headers);
    const sent = req.method === 'HEAD' || r.status === 204 || r.status === 304 ? undefined : body;
    if (trace && sent) trace.bytes = (trace.bytes ?? 0) + sent.length;
    res.end(sent);
  }
}

/** Binds `server`; a failure to bind (port taken) rejects instead of being thrown as an event. */
export async function listenOn(server: TcpServer, port: number, address: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** The TLS material as node:tls options, for a server's creation and for setSecureContext. */
export function secureOptions(tls: TlsMaterial): SecureContextOptions {
  return { key: tls.key, cert: tls.cert, ca: tls.ca, crl: tls.crl };
}

/**
 * What the services and the gateway see of a request. A class, not an object literal: V8 builds
 * a literal that has a getter (`segments`, split only for the services that read it) in a slow
 * form that kept everything the getter's closure reaches (the request, its response, its head)
 * alive through young collections until the next full one, about 0.9 KB per request promoted to
 * the old generation and young pauses of 3-8 ms instead of 1 (docs/benchmarks.md).
 */
class ListenerRequest implements ServiceRequest {
  readonly method: string;
  readonly path: string;
  readonly query: QueryParams;
  readonly headers: IncomingHttpHeaders;
  readonly peer: Peer;
  readonly rawTarget: string;
  readonly raw: { req: AgentRequest; res: AgentResponse };
  readonly draining: () => boolean;
  readonly trace: RequestTrace | undefined;
  #target: CheckedPath;

  constructor(req: AgentRequest, res: AgentResponse, target: CheckedPath, peer: Peer, draining: () => boolean, trace: RequestTrace | undefined) {
    this.method = req.method;
    this.path = target.path;
    this.query = target.query;
    this.headers = req.headers;
    this.peer = peer;
    this.rawTarget = req.url;
    this.raw = { req, res };
    this.draining = draining;
    this.trace = trace;
    this.#target = target;
  }

  get segments(): string[] {
    return this.#target.segments;
  }

  body(limit: number): Promise<Buffer> {
    return readBody(this.raw.req, limit);
  }
}

async function readBody(req: AgentRequest, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  if (req.body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
