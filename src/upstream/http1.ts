import type { Socket } from 'node:net';
import { ChunkedDecoder } from '../listener/head.ts';
import { parseResponseHead, type ResponseHead } from './response-head.ts';

// One HTTP/1.1 request and its response on one member connection, written and parsed here rather
// than through a general-purpose client: the gateway relays a handful of small requests per agent
// run at high rates, and a client library's per-request machinery cost more than the relaying
// itself. The parser is strict about framing, since a connection whose framing is in doubt must
// never carry another request: anything unexpected ends the exchange with an error, and the
// connection is closed rather than reused.

export type Http1Request = {
  method: string;
  path: string;
  /** Lower-case names (without Host, which is the member's), or the field lines already written. */
  headers: Record<string, string | string[]> | FieldLines;
  body: Buffer | NodeJS.ReadableStream | undefined;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
};

/** Field lines, each ending in CRLF; `hasLength` when they hold the body's Content-Length. */
export type FieldLines = { text: string; hasLength: boolean };

export type Http1Sink = {
  head(head: ResponseHead): void;
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
};

function isFieldLines(h: Http1Request['headers']): h is FieldLines {
  return typeof h.text === 'string' && typeof h.hasLength === 'boolean';
}

/** Errors of the exchange carry a code that src/upstream/failure.ts classifies. */
export function upstreamError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const maxHeadBytes = 64 * 1024;

/** The one value a repeated or comma-listed Content-Length agrees on, or '' when they differ. */
function agreed(cl: readonly string[]): string {
  const values = new Set(cl.flatMap((v) => v.split(',').map((s) => s.trim())));
  return values.size === 1 ? [...values][0]! : '';
}

type BodyMode = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/**
 * Drives one exchange. `finish(reusable)` is called exactly once, after the sink's `end` or
 * `error`: true only when the response was complete, well framed and the member keeps the
 * connection open, and the whole request was sent.
 */
export class Http1Exchange {
  /** Any byte of a response arrived (a failure after that cannot be a stale kept-alive connection). */
  responded = false;
  #socket: Socket;
  #req: Http1Request;
  #host: string;
  #sink: Http1Sink;
  #finish: (reusable: boolean) => void;
  #done = false;
  #headed = false;
  #keepAlive = true;
  #requestSent = false;
  #paused = false;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #mode: BodyMode = { kind: 'none' };
  #chunk: ChunkedDecoder | undefined;
  /**
   * When the exchange times out (performance.now() milliseconds): the response head's deadline,
   * then the body's idle deadline, pushed on by each chunk; never while the agent holds it paused.
   * The connection pool's sweep calls `expire`, so an exchange arms no timer of its own.
   */
  #deadline: number;

  /** `host`: the Host header the member gets. */
  constructor(socket: Socket, req: Http1Request, host: string, sink: Http1Sink, finish: (reusable: boolean) => void) {
    this.#socket = socket;
    this.#req = req;
    this.#host = host;
    this.#sink = sink;
    this.#finish = finish;
    this.#deadline = performance.now() + req.headersTimeoutMs;
    this.#write();
  }

  pause(): void {
    if (this.#done || this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
    // Time spent waiting for a slow agent is not the member's idleness.
    if (this.#headed) this.#deadline = Infinity;
  }

  resume(): void {
    if (this.#done || !this.#paused) return;
    this.#paused = false;
    if (this.#headed) this.#deadline = performance.now() + this.#req.bodyTimeoutMs;
    this.#socket.resume();
  }

  /** Bytes from the member. */
  onData(data: Buffer): void {
    if (this.#done) return;
    this.responded = true;
    if (!this.#headed) {
      this.#pending.push(data);
      this.#pendingBytes += data.length;
      const all = this.#pending.length === 1 ? data : Buffer.concat(this.#pending, this.#pendingBytes);
      const rest = this.#parseHeads(all);
      if (rest === undefined) {
        if (!this.#done && this.#pendingBytes > maxHeadBytes) this.fail(upstreamError('UPSTREAM_PROTOCOL', `response head larger than ${maxHeadBytes} bytes`));
        this.#pending = this.#done ? [] : [all];
        return;
      }
      this.#pending = [];
      this.#pendingBytes = 0;
      if (rest.length === 0 || this.#done) return;
      data = rest;
    } else if (!this.#paused) {
      this.#deadline = performance.now() + this.#req.bodyTimeoutMs;
    }
    this.#body(data);
  }

  /** The member closed the connection (or it broke). */
  onClose(err: Error | undefined): void {
    if (this.#done) return;
    if (this.#headed && this.#mode.kind === 'close' && err === undefined) {
      this.#complete(false);
      return;
    }
    const what = this.#headed ? 'the member closed the connection in the middle of its response' : 'the member closed the connection before answering';
    this.fail(err ?? upstreamError('UPSTREAM_CLOSED', what));
  }

  /** Fails the exchange when its deadline has passed at `now` (performance.now()). */
  expire(now: number): void {
    if (this.#done || now < this.#deadline) return;
    if (this.#headed) this.fail(upstreamError('UPSTREAM_BODY_TIMEOUT', `the member sent nothing for ${this.#req.bodyTimeoutMs} ms`));
    else this.fail(upstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response head within ${this.#req.headersTimeoutMs} ms`));
  }

  fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.error(err);
    this.#finish(false);
  }

  #write(): void {
    const { method, path, headers, body } = this.#req;
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.#host}\r\n`;
    const streamed = body !== undefined && !Buffer.isBuffer(body);
    let hasLength: boolean;
    if (isFieldLines(headers)) {
      head += headers.text;
      hasLength = headers.hasLength;
    } else {
      for (const name in headers) {
        const value = headers[name]!;
        if (typeof value === 'string') head += `${name}: ${value}\r\n`;
        else for (const v of value) head += `${name}: ${v}\r\n`;
      }
      hasLength = headers['content-length'] !== undefined;
    }
    const chunked = streamed && !hasLength;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    else if (Buffer.isBuffer(body) && !hasLength) head += `content-length: ${body.length}\r\n`;
    head += '\r\n';
    const socket = this.#socket;
    if (!streamed) {
      if (body === undefined || body.length === 0) socket.write(head, 'latin1');
      else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      this.#requestSent = true;
      return;
    }
    socket.write(head, 'latin1');
    const stream = body;
    const onDrain = (): void => {
      stream.resume();
    };
    socket.on('drain', onDrain);
    stream.on('data', (c: Buffer) => {
      if (this.#done || c.length === 0) return;
      if (chunked) {
        socket.cork();
        socket.write(`${c.length.toString(16)}\r\n`, 'latin1');
        socket.write(c);
        socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        socket.write(c);
      }
      if (socket.writableNeedDrain) stream.pause();
    });
    stream.once('end', () => {
      socket.off('drain', onDrain);
      if (this.#done) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.#requestSent = true;
    });
    stream.once('error', (err: Error) => {
      socket.off('drain', onDrain);
      this.fail(err);
    });
  }

  /** Parses response heads (skipping 1xx); returns the bytes after the final head, undefined while incomplete. */
  #parseHeads(buf: Buffer): Buffer | undefined {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (end < 0) return undefined;
      const head = parseResponseHead(buf.toString('latin1', 0, end));
      if ('error' in head) {
        this.fail(upstreamError('UPSTREAM_PROTOCOL', head.error));
        return undefined;
      }
      buf = buf.subarray(end + 4);
      const status = head.status;
      if (status >= 100 && status < 200) {
        if (status === 101) {
          this.fail(upstreamError('UPSTREAM_PROTOCOL', 'the member switched protocols'));
          return undefined;
        }
        continue;
      }
      const mode = this.#framing(head);
      if (mode === undefined) return undefined;
      this.#mode = mode;
      this.#headed = true;
      this.#deadline = performance.now() + this.#req.bodyTimeoutMs;
      this.#sink.head(head);
      if (!this.#done && mode.kind === 'none') this.#complete(buf.length === 0);
      return buf;
    }
  }

  /** How the body is framed; sets `head.length` to what the agent can be told. */
  #framing(head: ResponseHead): BodyMode | undefined {
    const { status, http11, connection } = head;
    // The usual value is read without a regular expression.
    if (connection === undefined || connection === 'keep-alive') this.#keepAlive = http11 || connection !== undefined;
    else {
      const tokens = String(connection).toLowerCase();
      this.#keepAlive = http11 ? !/(^|,)\s*close\s*(,|$)/.test(tokens) : /(^|,)\s*keep-alive\s*(,|$)/.test(tokens);
    }
    if (this.#req.method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' };
    const te = head.transferEncoding;
    const cl = head.contentLength;
    if (te !== undefined) {
      // Both framings at once is how responses are smuggled: believe neither for reuse.
      if (cl !== undefined) this.#keepAlive = false;
      const codings = te.toLowerCase().split(',').map((s) => s.trim());
      return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : (this.#keepAlive = false, { kind: 'close' });
    }
    if (cl !== undefined) {
      // Repeated or comma-listed values must all agree (RFC 9110, 8.6); one value is the usual case.
      const only = cl.length === 1 && !cl[0]!.includes(',') ? cl[0]! : agreed(cl);
      if (!/^\d{1,15}$/.test(only)) {
        this.fail(upstreamError('UPSTREAM_PROTOCOL', `invalid content-length ${JSON.stringify(cl.length === 1 ? cl[0] : cl)}`));
        return undefined;
      }
      head.length = Number(only);
      return head.length === 0 ? { kind: 'none' } : { kind: 'length', left: head.length };
    }
    this.#keepAlive = false;
    return { kind: 'close' };
  }

  #body(data: Buffer): void {
    const mode = this.#mode;
    if (mode.kind === 'length') {
      if (data.length < mode.left) {
        mode.left -= data.length;
        this.#sink.data(data);
        return;
      }
      const last = data.subarray(0, mode.left);
      const extra = data.length > mode.left;
      mode.left = 0;
      this.#sink.data(last);
      if (!this.#done) this.#complete(!extra);
    } else if (mode.kind === 'chunked') {
      const r = (this.#chunk ??= new ChunkedDecoder()).push(data, (c) => this.#sink.data(c));
      if (this.#done) return;
      if (r === 'error') this.fail(upstreamError('UPSTREAM_PROTOCOL', 'malformed chunked response body'));
      else if (r !== 'more') this.#complete(r === 'end');
    } else if (mode.kind === 'close') {
      this.#sink.data(data);
    } else {
      // Bytes after a response that has no body: the connection's framing is off.
      this.#keepAlive = false;
    }
  }

  #complete(clean: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#paused) this.#socket.resume();
    this.#sink.end();
    this.#finish(clean && this.#keepAlive && this.#requestSent);
  }
}
