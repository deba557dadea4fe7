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

export type UpstreamRequest = {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | NodeJS.ReadableStream | undefined;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
};

/**
 * Receives a member's response as it arrives, without intermediate streams: the proxy writes
 * each chunk to the agent and pauses the member while the agent is slow (backpressure).
 */
export type ResponseSink = {
  /** The response head; `control` pauses, resumes or aborts the rest. */
  head(status: number, headers: Record<string, string | string[] | undefined>, control: ExchangeControl): void;
  data(chunk: Buffer): void;
  end(): void;
  /** Before `head`: the request failed and may be retried. After it: the response broke off. */
  error(err: Error): void;
};
export type ExchangeControl = { pause(): void; resume(): void; abort(err: Error): void };

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

  /** Sends a request and streams the answer into `sink`; returns a handle to abort it. */
  exchange(r: UpstreamRequest, sink: ResponseSink): ExchangeControl {
    const headers = this.#hostHeader ? { ...r.headers, host: this.#hostHeader } : r.headers;
    let controller: Dispatcher.DispatchController | undefined;
    let pendingAbort: Error | undefined;
    const control: ExchangeControl = {
      pause: () => controller?.pause(),
      resume: () => controller?.resume(),
      abort: (err) => {
        if (controller) controller.abort(err);
        else pendingAbort = err;
      },
    };
    this.#pool.dispatch(
      {
        method: r.method,
        path: r.path,
        headers,
        body: (r.body ?? null) as Dispatcher.DispatchOptions['body'],
        headersTimeout: r.headersTimeoutMs,
        bodyTimeout: r.bodyTimeoutMs,
        idempotent: false,
        blocking: true,
      },
      {
        onRequestStart(c) {
          controller = c;
          if (pendingAbort) c.abort(pendingAbort);
        },
        onResponseStart(c, status, responseHeaders) {
          sink.head(status, responseHeaders, control);
        },
        onResponseData(_c, chunk) {
          sink.data(chunk);
        },
        onResponseEnd() {
          sink.end();
        },
        onResponseError(_c, err) {
          sink.error(err);
        },
      },
    );
    return control;
  }

  /** Waits for requests in flight, then closes the connections. */
  async close(): Promise<void> {
    await this.#pool.close();
  }

  async destroy(): Promise<void> {
    await this.#pool.destroy();
  }
}
