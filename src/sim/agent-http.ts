import { Agent, request } from 'node:https';
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';

// One HTTPS exchange of a simulated agent, the connections of one run as Puppet's pool keeps
// them, and the Retry-After rule Puppet agents apply to 429 and 503 answers.

export type AgentTarget = {
  /** Loopback port of the front door. */
  port: number;
  /** The name agents dial (`server`): sent as SNI and Host, and checked in the front door's certificate. */
  servername: string;
  /** The Puppet CA bundle agents trust. */
  ca: string;
};

export type Exchange = { status: number; headers: Record<string, string | string[] | undefined>; bytes: number };

export type SendOptions = {
  agent: Agent;
  target: AgentTarget;
  identity: { cert: string; key: string };
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Receives the request while it is open, so that a stop can destroy it; returns how to forget it. */
  track: (req: ClientRequest) => () => void;
};

/**
 * Puppet's connection pool for one run: one kept-alive connection, which a request checking it
 * out closes (and replaces) if it sat idle longer than http_keepalive_timeout; Node's agent alone
 * would keep it until the server closed it. It counts the connections the run opened.
 */
export class RunConnections {
  /** Connections opened so far. */
  opened = 0;
  #keepAliveMs: number;
  #now: () => number;
  #agent = RunConnections.#pool();
  /** When the connection was last handed back; undefined while none is idle. */
  #idleSince: number | undefined;
  #seen = new WeakSet<Socket>();

  constructor(keepAliveMs: number, now: () => number) {
    this.#keepAliveMs = keepAliveMs;
    this.#now = now;
  }

  static #pool(): Agent {
    return new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  }

  /** The agent to send the next request with. */
  checkOut(): Agent {
    if (this.#idleSince !== undefined && this.#now() - this.#idleSince > this.#keepAliveMs) this.close();
    return this.#agent;
  }

  /** The request is over (answered or failed): the connection, if still open, is idle from now. */
  checkIn(): void {
    this.#idleSince = this.#now();
  }

  /** Counts the request's connection if it is a new one. */
  track(req: ClientRequest): void {
    req.once('socket', (socket: Socket) => {
      if (this.#seen.has(socket)) return;
      this.#seen.add(socket);
      this.opened += 1;
    });
  }

  /** Closes the connection; the next request opens another. */
  close(): void {
    this.#agent.destroy();
    this.#agent = RunConnections.#pool();
    this.#idleSince = undefined;
  }
}

/** Why an exchange failed, in words that aggregate well: an errno code, "timeout", or the message. */
export function failureOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && e.code !== '') return e.code;
  return typeof e.message === 'string' ? e.message : String(err);
}

export function send(o: SendOptions): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    const headers: Record<string, string> = { Host: `${o.target.servername}:${o.target.port}`, ...o.headers };
    if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
    const req = request(
      {
        host: '127.0.0.1', port: o.target.port, method: o.method, path: o.path, headers, agent: o.agent,
        ca: o.target.ca, cert: o.identity.cert, key: o.identity.key, servername: o.target.servername, timeout: o.timeoutMs,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => {
          untrack();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes });
        });
        res.on('error', (err) => {
          untrack();
          reject(err);
        });
        res.on('close', () => {
          untrack();
          if (!res.complete) reject(Object.assign(new Error('response cut short'), { code: 'ECONNRESET' }));
        });
      },
    );
    const untrack = o.track(req);
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err) => {
      untrack();
      reject(err);
    });
    req.end(o.body);
  });
}

/**
 * Milliseconds to wait for a Retry-After value (whole seconds or an HTTP date; a past date is 0),
 * or undefined when there is none or it cannot be read (Puppet fails the request then).
 */
export function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
