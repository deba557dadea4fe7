import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { listenOn, secureOptions, type TlsMaterial } from '../listener/listener.ts';
import { checkRequestTarget } from '../listener/path.ts';
import { peerOf, type Peer } from '../listener/peer.ts';
import type { AdminAuth } from './auth.ts';
import type { AdminAnswer, AdminApi } from './api.ts';
import { refuseCrossSite } from './origin.ts';

// The admin API's own HTTPS listener, apart from the agents' one: another address (loopback by
// default), JSON instead of Puppet's text errors, and its own authentication. Like the agent
// listener it asks for a client certificate without requiring one (a token client has none),
// lets OpenSSL verify it against the CA bundle and CRL, and re-checks revocation per request.

export type AdminServerOptions = {
  address: string;
  port: number;
  tls: TlsMaterial;
  isRevoked: (serial: bigint) => boolean;
  auth: AdminAuth;
  api: AdminApi;
  log: Log;
  /** Serves the dashboard's files (GET / and /ui/...) without authentication: they hold no data. True when it answered. */
  dashboard?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** GET /metrics: the Prometheus exposition (src/observability/metrics.ts), behind the same authentication. */
  metrics?: (() => Promise<{ contentType: string; body: string }>) | undefined;
};

const maxBodyBytes = 64 * 1024;

export class AdminServer {
  #server: Server;
  #options: AdminServerOptions;
  #stopping = new AbortController();

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#server = createServer({ ...secureOptions(options.tls), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res));
    this.#server.on('tlsClientError', (err: Error) => options.log.debug({ err: err.message }, 'admin API TLS handshake failed'));
  }

  async listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#options.port, this.#options.address);
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** New handshakes use the new CRL at once. */
  updateTls(tls: TlsMaterial): void {
    this.#server.setSecureContext(secureOptions(tls));
  }

  /** Stops accepting; drains that wait are answered 503 and everything is closed within `deadlineMs`. */
  async close(deadlineMs = 2000): Promise<void> {
    this.#stopping.abort();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => this.#server.closeAllConnections(), deadlineMs);
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#options.dashboard?.(req, res)) return;
    let answer: AdminAnswer;
    try {
      refuseCrossSite(req.method ?? 'GET', req.headers);
      const peer = this.#peer(req.socket as TLSSocket);
      const who = await this.#options.auth({ peer, authorization: req.headers.authorization });
      const target = checkRequestTarget(req.url);
      if (target.path === '/metrics' && this.#options.metrics) {
        if (req.method !== 'GET') throw new RingmasterError('RM_METHOD_NOT_ALLOWED', `${req.method} is not allowed on /metrics (allowed: GET)`, { details: { allow: 'GET' } });
        const m = await this.#options.metrics();
        if (!res.destroyed) res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.body), 'cache-control': 'no-store' }).end(m.body);
        return;
      }
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      answer = await this.#options.api({
        method: req.method ?? 'GET',
        segments: target.segments,
        query: new URLSearchParams(target.rawQuery),
        json: () => readJson(req),
        signal: AbortSignal.any([gone.signal, this.#stopping.signal]),
        who,
      });
    } catch (err) {
      answer = errorAnswer(err, this.#options.log, req);
    }
    if (res.destroyed || res.headersSent) return;
    const body = Buffer.from(`${JSON.stringify(answer.body, null, 2)}\n`);
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': body.length, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    const code = errorCodeOf(answer.body);
    if (code) headers['x-ringmaster-error'] = code;
    if (answer.status === 401) headers['www-authenticate'] = 'Bearer realm="ringmaster admin"';
    if (answer.status === 405 && isRecord(answer.body) && typeof answer.body.allow === 'string') headers.allow = answer.body.allow;
    // A body we refused to read would otherwise be parsed as the next request.
    if (!req.complete || this.#stopping.signal.aborted) headers.connection = 'close';
    res.writeHead(answer.status, headers).end(body);
  }

  #peer(socket: TLSSocket): Peer {
    const peer = peerOf(socket);
    if (peer.kind === 'verified' && this.#options.isRevoked(peer.cert.serial)) return { kind: 'rejected', reason: 'certificate revoked', certname: peer.certname };
    return peer;
  }
}

function errorAnswer(err: unknown, log: Log, req: IncomingMessage): AdminAnswer {
  const e = err instanceof RingmasterError ? err : new RingmasterError('RM_INTERNAL', 'internal error', { cause: err });
  if (e.code === 'RM_INTERNAL' || e.status >= 500) log.error({ err: err instanceof Error ? err : String(err), code: e.code, method: req.method, url: req.url }, 'admin API request failed');
  else if (e.status === 401 || e.status === 403) log.info({ code: e.code, method: req.method, url: req.url, remote: req.socket.remoteAddress }, 'admin API request refused');
  const allow = e.code === 'RM_METHOD_NOT_ALLOWED' && typeof e.details?.allow === 'string' ? { allow: e.details.allow } : {};
  return { status: e.status, body: { error: { code: e.code, message: e.message }, ...allow } };
}

function errorCodeOf(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.error)) return undefined;
  return typeof body.error.code === 'string' ? body.error.code : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBodyBytes) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${maxBodyBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new RingmasterError('RM_BODY_TOO_LARGE', `request body exceeds the limit of ${maxBodyBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `the request body is not JSON: ${(err as Error).message}`);
  }
}

