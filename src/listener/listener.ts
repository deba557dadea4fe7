import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket, SecureContextOptions } from 'node:tls';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { RequestObserver } from '../observability/observer.ts';
import type { RequestTrace } from '../observability/request.ts';
import { checkRequestTarget } from './path.ts';
import { peerOf, type Peer } from './peer.ts';
import { errorResponse, type ServiceRequest, type ServiceResponse } from './http.ts';

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
  maxHeaderBytes: number;
  tls: TlsMaterial;
  dispatch: Dispatch;
  isRevoked: (serial: bigint) => boolean;
  log: Log;
  /** Metrics and access log; absent in tests that need neither. */
  observer?: RequestObserver | undefined;
};

// net.Server#close: stop accepting without http.Server's immediate close of idle connections.
const netClose = (server: NetServer, done: () => void): void => {
  NetServer.prototype.close.call(server, done);
};

export class Listener {
  readonly name: string;
  #server: Server;
  #options: ListenerOptions;
  #log: Log;
  #draining = false;
  /** Open connections and whether a request is running on each, for the drain. */
  #connections = new Map<Socket, { active: number; idleSince: number }>();

  constructor(options: ListenerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#log = options.log;
    this.#server = createServer({
      ...secureOptions(options.tls),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      requestTimeout: 0,
      headersTimeout: options.requestHeaderTimeoutMs,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      maxHeaderSize: options.maxHeaderBytes,
    });
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      this.#track(socket);
      if (options.observer) {
        const peer = this.#peer(socket);
        options.observer.tlsHandshake(this.name, peer.kind, peer.kind === 'rejected' ? peer.reason : undefined);
      }
    });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // One 'close' listener per request, for the drain's count and the observer's record.
      const state = this.#connections.get(req.socket);
      if (state) state.active++;
      const observed = options.observer?.begin(this.name, req, res, () => this.#certname(req.socket as TLSSocket));
      res.on('close', () => {
        if (state) {
          state.active--;
          state.idleSince = Date.now();
        }
        observed?.end();
      });
      void this.#handle(req, res, observed?.trace);
    });
    this.#server.on('tlsClientError', (err: Error) => {
      options.observer?.tlsFailure(this.name, err);
      this.#log.debug({ listener: this.name, err: errorMessage(err) }, 'TLS handshake failed');
    });
  }

  async listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#options.port, this.#options.address);
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** New handshakes use the new material at once; nothing is restarted. */
  updateTls(tls: TlsMaterial): void {
    this.#server.setSecureContext(secureOptions(tls));
  }

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
    const closed = new Promise<void>((resolve) => netClose(this.#server, resolve));
    const sweep = () => {
      const now = Date.now();
      for (const [socket, state] of this.#connections) {
        if (state.active === 0 && now - state.idleSince >= idleGraceMs) socket.destroy();
      }
    };
    const sweeper = setInterval(sweep, Math.max(10, Math.min(100, idleGraceMs)));
    const timer = setTimeout(() => {
      for (const socket of this.#connections.keys()) socket.destroy();
    }, deadlineMs);
    sweep();
    await closed;
    clearInterval(sweeper);
    clearTimeout(timer);
  }

  #track(socket: Socket): void {
    const state = { active: 0, idleSince: Date.now() };
    this.#connections.set(socket, state);
    socket.once('close', () => this.#connections.delete(socket));
  }

  async #handle(req: IncomingMessage, res: ServerResponse, trace: RequestTrace | undefined): Promise<void> {
    let response: ServiceResponse;
    try {
      const peer = this.#peer(req.socket as TLSSocket);
      if (peer.kind === 'rejected') {
        throw new RingmasterError('RM_TLS_PEER_REJECTED', `client certificate${peer.certname ? ` for ${peer.certname}` : ''} refused: ${peer.reason}`);
      }
      const target = checkRequestTarget(req.url);
      const answer = await this.#options.dispatch({
        method: req.method ?? 'GET',
        path: target.path,
        segments: target.segments,
        query: target.query,
        headers: req.headers,
        peer,
        body: (limit) => readBody(req, limit),
        rawTarget: req.url ?? '/',
        raw: { req, res },
        draining: () => this.#draining,
        trace,
      });
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

  #certname(socket: TLSSocket): string | undefined {
    const peer = this.#peer(socket);
    return peer.kind === 'verified' ? peer.certname : undefined;
  }

  #peer(socket: TLSSocket): Peer {
    const peer = peerOf(socket);
    if (peer.kind === 'verified' && this.#options.isRevoked(peer.cert.serial)) {
      return { kind: 'rejected', reason: 'certificate revoked', certname: peer.certname };
    }
    return peer;
  }

  #send(req: IncomingMessage, res: ServerResponse, r: ServiceResponse, trace: RequestTrace | undefined): void {
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
export async function listenOn(server: Server, port: number, address: string): Promise<AddressInfo> {
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

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
