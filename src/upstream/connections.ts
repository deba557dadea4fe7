import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Http1Exchange, upstreamError, type Http1Request } from './http1.ts';
import type { ResponseHead } from './response-head.ts';

// One keep-alive connection pool per member, on plain sockets (src/upstream/http1.ts speaks the
// HTTP/1.1 on them). Plain HTTP, or TLS re-encryption presenting ringmaster's own certificate and
// verifying the member's against the CA, resuming TLS sessions. A member removed by a reload is
// closed gently: requests already on it finish first.

export type UpstreamTls = {
  verify: boolean;
  /** PEM blocks of the CA(s) that sign members' certificates. */
  ca: string[];
  serverName: string | undefined;
  /** ringmaster's certificate and key, presented when set. */
  client: { cert: string; key: string } | undefined;
};

export type ConnectionSettings = { connectTimeoutMs: number; keepAliveMs: number; tls: UpstreamTls };

/** A request for a member; the Host header is the member's (written by the exchange). */
export type UpstreamRequest = Http1Request;

/**
 * Receives a member's response as it arrives, without intermediate streams: the proxy writes
 * each chunk to the agent and pauses the member while the agent is slow (backpressure).
 */
export type ResponseSink = {
  /** The response head; `control` pauses, resumes or aborts the rest. */
  head(head: ResponseHead, control: ExchangeControl): void;
  data(chunk: Buffer): void;
  end(): void;
  /** Before `head`: the request failed and may be retried. After it: the response broke off. */
  error(err: Error): void;
};
export type ExchangeControl = { pause(): void; resume(): void; abort(err: Error): void };

/** A connection and the exchange it carries, if any; `idleSince` (performance.now()) while it carries none. */
type Conn = { socket: Socket; current: Http1Exchange | undefined; used: boolean; idleSince: number };

/** The sweep runs at a quarter of the shortest timeout it enforces, between these bounds (ms). */
const sweepBounds = { min: 10, max: 1000 };

export class MemberConnections {
  readonly url: string;
  #host: string;
  #port: number;
  #hostHeader: string;
  #tls: ConnectionOptions | undefined;
  #session: Buffer | undefined;
  #settings: ConnectionSettings;
  #idle: Conn[] = [];
  #all = new Set<Conn>();
  #busy = 0;
  #closing = false;
  #closed: (() => void) | undefined;
  /** One sweep per member for response timeouts and idle connections, armed while it has connections. */
  #sweep: NodeJS.Timeout | undefined;
  #sweepEveryMs = sweepBounds.max;

  constructor(url: string, settings: ConnectionSettings) {
    this.url = url;
    this.#settings = settings;
    const u = new URL(url);
    const https = u.protocol === 'https:';
    this.#host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#port = Number(u.port || (https ? 443 : 80));
    const t = settings.tls;
    this.#hostHeader = https && t.serverName ? t.serverName : u.host;
    this.#tls = https
      ? {
          ca: t.ca,
          rejectUnauthorized: t.verify,
          ...(t.serverName ? { servername: t.serverName } : isIP(this.#host) ? {} : { servername: this.#host }),
          ...(t.client ? { cert: t.client.cert, key: t.client.key } : {}),
        }
      : undefined;
  }

  /** Sends a request and streams the answer into `sink`; returns a handle to abort it. */
  exchange(req: UpstreamRequest, sink: ResponseSink): ExchangeControl {
    let current: Http1Exchange | undefined;
    let aborted: Error | undefined;
    let headed = false;
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const control: ExchangeControl = {
      pause: () => current?.pause(),
      resume: () => current?.resume(),
      abort: (err) => {
        if (aborted) return;
        aborted = err;
        if (current) current.fail(err);
      },
    };
    const start = (retried: boolean): void => {
      if (aborted) {
        sink.error(aborted);
        return;
      }
      if (this.#closing && this.#busy === 0 && this.#idle.length === 0) {
        sink.error(upstreamError('UPSTREAM_CLOSED', 'the member was removed'));
        return;
      }
      const reused = this.#idle.pop();
      const conn = reused ?? this.#open();
      this.#busy++;
      conn.used = true;
      this.#armSweep(Math.min(req.headersTimeoutMs, req.bodyTimeoutMs, this.#settings.keepAliveMs));
      const ex = new Http1Exchange(conn.socket, req, this.#hostHeader, {
        head: (head) => {
          headed = true;
          sink.head(head, control);
        },
        data: (chunk) => sink.data(chunk),
        end: () => sink.end(),
        error: (err) => {
          // A kept-alive connection the member closed just as it was reused fails before any
          // response byte; the request goes again on a fresh connection, once, when its body can
          // be sent again. It is not the member's failure.
          if (reused && !retried && !headed && !ex.responded && !aborted && replayable && stale(err)) {
            queueMicrotask(() => start(true));
            return;
          }
          sink.error(err);
        },
      }, (reusable) => this.#release(conn, reusable));
      conn.current = ex;
      current = ex;
    };
    start(false);
    return control;
  }

  /** Waits for requests in flight, then closes the connections. */
  close(): Promise<void> {
    this.#closing = true;
    for (const c of this.#idle.splice(0)) c.socket.destroy();
    if (this.#busy === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#closed = resolve));
  }

  destroy(): Promise<void> {
    this.#closing = true;
    for (const c of [...this.#all]) c.socket.destroy();
    this.#idle = [];
    return Promise.resolve();
  }

  #open(): Conn {
    const s = this.#settings;
    const socket: Socket = this.#tls
      ? tlsConnect({ host: this.#host, port: this.#port, ...this.#tls, ...(this.#session ? { session: this.#session } : {}) })
      : netConnect({ host: this.#host, port: this.#port });
    const conn: Conn = { socket, current: undefined, used: false, idleSince: 0 };
    this.#all.add(conn);
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(upstreamError('UPSTREAM_CONNECT_TIMEOUT', `no connection within ${s.connectTimeoutMs} ms`)), s.connectTimeoutMs);
    socket.once(this.#tls ? 'secureConnect' : 'connect', () => clearTimeout(timer));
    if (this.#tls) (socket as TLSSocket).on('session', (session: Buffer) => (this.#session = session));
    let failure: Error | undefined;
    socket.on('data', (d: Buffer) => {
      if (conn.current) conn.current.onData(d);
      else socket.destroy(); // bytes nobody asked for: the connection's framing is off
    });
    socket.on('error', (err) => (failure = err));
    socket.on('close', () => {
      clearTimeout(timer);
      this.#all.delete(conn);
      if (this.#all.size === 0) this.#stopSweep();
      const i = this.#idle.indexOf(conn);
      if (i >= 0) this.#idle.splice(i, 1);
      conn.current?.onClose(failure);
    });
    socket.on('end', () => {
      // The member closes its side; an idle connection is gone, a response read to the close ends.
      if (!conn.current) socket.destroy();
      else socket.end();
    });
    return conn;
  }

  #release(conn: Conn, reusable: boolean): void {
    conn.current = undefined;
    this.#busy--;
    if (reusable && !this.#closing && !conn.socket.destroyed) {
      conn.idleSince = performance.now();
      this.#idle.push(conn);
    } else {
      conn.socket.destroy();
    }
    if (this.#closing && this.#busy === 0) this.#closed?.();
  }

  /** Runs the sweep at least every quarter of `timeoutMs`. */
  #armSweep(timeoutMs: number): void {
    const every = Math.max(sweepBounds.min, Math.min(sweepBounds.max, Math.floor(timeoutMs / 4)));
    if (this.#sweep !== undefined && every >= this.#sweepEveryMs) return;
    clearInterval(this.#sweep);
    this.#sweepEveryMs = every;
    this.#sweep = setInterval(() => this.#expire(performance.now()), every).unref();
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#sweepEveryMs = sweepBounds.max;
  }

  /** Fails exchanges past their deadline and closes connections idle longer than the keep-alive. */
  #expire(now: number): void {
    for (const conn of this.#all) {
      if (conn.current) conn.current.expire(now);
      else if (conn.used && now - conn.idleSince >= this.#settings.keepAliveMs) conn.socket.destroy();
    }
  }
}

/** Failures that mean a kept-alive connection was already closed by the member. */
function stale(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'UPSTREAM_CLOSED' || code === 'ECONNRESET' || code === 'EPIPE';
}
