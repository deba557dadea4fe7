import { Pool as UndiciPool, type Dispatcher } from 'undici';

// One keep-alive connection pool per member (the only importer of undici). Plain HTTP, or TLS
// re-encryption presenting ringmaster's own certificate and verifying the member's against the
// CA. A member removed by a reload is closed gently: requests already on it finish first.

export type UpstreamTls = {
  verify: boolean;
  /** PEM blocks of the CA(s) that sign members' certificates. */
  ca: string[];
  serverName: string | undefined;
  /** ringmaster's certificate and key, presented when set. */
  client: { cert: string; key: string } | undefined;
};

export type ConnectionSettings = { connectTimeoutMs: number; keepAliveMs: number; tls: UpstreamTls };

export type UpstreamResponse = Dispatcher.ResponseData;
export type UpstreamRequest = {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | NodeJS.ReadableStream | undefined;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  signal: AbortSignal;
};

export class MemberConnections {
  readonly url: string;
  #pool: UndiciPool;
  #hostHeader: string | undefined;

  constructor(url: string, settings: ConnectionSettings) {
    this.url = url;
    const tls = new URL(url).protocol === 'https:';
    const t = settings.tls;
    this.#hostHeader = tls && t.serverName ? t.serverName : undefined;
    this.#pool = new UndiciPool(url, {
      allowH2: false,
      keepAliveTimeout: settings.keepAliveMs,
      keepAliveMaxTimeout: settings.keepAliveMs,
      connect: {
        timeout: settings.connectTimeoutMs,
        ...(tls
          ? {
              ca: t.ca,
              rejectUnauthorized: t.verify,
              ...(t.serverName ? { servername: t.serverName } : {}),
              ...(t.client ? { cert: t.client.cert, key: t.client.key } : {}),
            }
          : {}),
      },
    });
  }

  request(r: UpstreamRequest): Promise<UpstreamResponse> {
    const headers = this.#hostHeader ? { ...r.headers, host: this.#hostHeader } : r.headers;
    return this.#pool.request({
      method: r.method,
      path: r.path,
      headers,
      body: (r.body ?? null) as Dispatcher.DispatchOptions['body'],
      headersTimeout: r.headersTimeoutMs,
      bodyTimeout: r.bodyTimeoutMs,
      signal: r.signal,
      // A compile is not idempotent for our purposes: undici must not pipeline or replay it.
      idempotent: false,
      blocking: true,
    });
  }

  /** Waits for requests in flight, then closes the connections. */
  async close(): Promise<void> {
    await this.#pool.close();
  }

  async destroy(): Promise<void> {
    await this.#pool.destroy();
  }
}
