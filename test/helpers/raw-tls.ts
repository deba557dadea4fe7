import { connect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

// Raw HTTP/1.1 over TLS, for tests of how the listener frames requests: exact bytes go out, and a
// small strict reader takes responses apart (status line, headers, Content-Length or chunked
// framing, or the body up to the close). Every wait has a deadline, so a server that never
// answers fails the test instead of hanging it.

export type RawTlsOptions = { port: number; ca: string; cert?: string; key?: string; servername?: string; timeoutMs?: number; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; socket?: Duplex };

export type RawResponse = {
  version: string;
  status: number;
  reason: string;
  /** Names lower-cased, in the order received. */
  headers: Array<[string, string]>;
  body: Buffer;
};

/** A header's values joined with ", ", or undefined when absent. */
export function header(r: RawResponse, name: string): string | undefined {
  const values = r.headers.filter(([n]) => n === name.toLowerCase()).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(', ');
}

const defaultTimeoutMs = 3000;
const maxHeadBytes = 64 * 1024;
const statusLine = /^(HTTP\/1\.[01]) ([1-5]\d\d)(?: ([^\r\n]*))?$/;
const fieldLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*$/;
const chunkLine = /^([0-9A-Fa-f]{1,16})(;[^\r\n]*)?$/;

type Parsed = { response: RawResponse; used: number } | 'incomplete';

/**
 * One response from the start of `buf`. `ended`: the server has closed, so a body without a
 * length ends here. Throws on anything malformed: a test must not guess at what it received.
 */
export function parseResponse(buf: Buffer, method: string, ended: boolean): Parsed {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (buf.length > maxHeadBytes) throw new Error('response head too large');
    return 'incomplete';
  }
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = statusLine.exec(lines[0] ?? '');
  if (!m) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const f = fieldLine.exec(line);
    if (!f) throw new Error(`malformed response header line: ${JSON.stringify(line)}`);
    headers.push([f[1]!.toLowerCase(), f[2]!]);
  }
  const response: RawResponse = { version: m[1]!, status: Number(m[2]), reason: m[3] ?? '', headers, body: Buffer.alloc(0) };
  const start = headEnd + 4;
  if (response.status < 200 || response.status === 204 || response.status === 304 || method === 'HEAD') return { response, used: start };
  const te = header(response, 'transfer-encoding');
  if (te !== undefined) {
    if (te.toLowerCase() !== 'chunked') throw new Error(`unexpected response transfer-encoding ${te}`);
    return parseChunked(buf, start, response);
  }
  const cl = header(response, 'content-length');
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new Error(`malformed response content-length ${cl}`);
    const end = start + Number(cl);
    if (buf.length < end) {
      if (ended) throw new Error(`connection closed after ${buf.length - start} of ${cl} body bytes`);
      return 'incomplete';
    }
    return { response: { ...response, body: buf.subarray(start, end) }, used: end };
  }
  if (!ended) return 'incomplete';
  return { response: { ...response, body: buf.subarray(start) }, used: buf.length };
}

function parseChunked(buf: Buffer, start: number, response: RawResponse): Parsed {
  const parts: Buffer[] = [];
  let at = start;
  // Each pass consumes one chunk, so the buffer's length bounds the loop.
  while (at <= buf.length) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return 'incomplete';
    const size = chunkLine.exec(buf.subarray(at, eol).toString('latin1'));
    if (!size) throw new Error(`malformed chunk size line at byte ${at}`);
    const n = Number.parseInt(size[1]!, 16);
    if (n === 0) {
      // Trailer fields, then the empty line.
      let t = eol + 2;
      while (t <= buf.length) {
        const next = buf.indexOf('\r\n', t);
        if (next < 0) return 'incomplete';
        if (next === t) return { response: { ...response, body: Buffer.concat(parts) }, used: next + 2 };
        t = next + 2;
      }
      return 'incomplete';
    }
    const dataEnd = eol + 2 + n;
    if (buf.length < dataEnd + 2) return 'incomplete';
    if (buf.toString('latin1', dataEnd, dataEnd + 2) !== '\r\n') throw new Error('chunk data not followed by CRLF');
    parts.push(buf.subarray(eol + 2, dataEnd));
    at = dataEnd + 2;
  }
  return 'incomplete';
}

export class RawConnection {
  #socket: TLSSocket;
  #buf = Buffer.alloc(0);
  #ended = false;
  #wake = new Set<() => void>();

  private constructor(socket: TLSSocket) {
    this.#socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#notify();
    });
    // A reset counts as a close: what arrived before it is kept.
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static async open(o: RawTlsOptions): Promise<RawConnection> {
    const socket = connect({
      host: '127.0.0.1', port: o.port, ca: o.ca, servername: o.servername ?? 'localhost',
      ...(o.cert !== undefined && o.key !== undefined ? { cert: o.cert, key: o.key } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.socket ? { socket: o.socket } : {}),
    });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('TLS handshake timed out')), o.timeoutMs ?? defaultTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', fail);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve();
      });
    });
    return new RawConnection(socket);
  }

  /** True once the server closed (or reset) the connection. */
  get closed(): boolean {
    return this.#ended;
  }

  /** Bytes received and not yet taken by `response`. */
  get unread(): Buffer {
    return this.#buf;
  }

  /** Resolves once the bytes are handed to the kernel; a write to a closed connection is dropped (readers see the close). */
  async write(data: string | Buffer): Promise<void> {
    if (this.#ended || this.#socket.destroyed) return;
    await new Promise<void>((resolve) => this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, () => resolve()));
  }

  /**
   * The next complete response, or undefined when the server closed without sending a byte more.
   * Throws on a timeout, a malformed response or a close in the middle of one.
   */
  async response(o: { method?: string; timeoutMs?: number } = {}): Promise<RawResponse | undefined> {
    const method = o.method ?? 'GET';
    const got = await this.#until(o.timeoutMs ?? defaultTimeoutMs, () => {
      if (this.#buf.length === 0) return this.#ended ? { response: undefined } : undefined;
      const p = parseResponse(this.#buf, method, this.#ended);
      if (p !== 'incomplete') {
        this.#buf = this.#buf.subarray(p.used);
        return { response: p.response };
      }
      if (this.#ended) throw new Error(`connection closed mid-response: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`);
      return undefined;
    });
    if (got === undefined) throw new Error(`no complete response within ${o.timeoutMs ?? defaultTimeoutMs} ms; have ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`);
    return got.response;
  }

  /** Whether the server closes the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return (await this.#until(timeoutMs, () => (this.#ended ? true : undefined))) ?? false;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Ends the client's side (close_notify, then FIN). */
  end(): void {
    this.#socket.end();
  }

  #notify(): void {
    for (const w of this.#wake) w();
  }

  /** Re-checks after each event until `check` gives a value or the deadline passes (undefined). */
  async #until<T>(timeoutMs: number, check: () => T | undefined): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    let value = check();
    while (value === undefined && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#wake.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, deadline - Date.now());
        this.#wake.add(wake);
      });
      value = check();
    }
    return value;
  }
}
