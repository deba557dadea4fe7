import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ParkedSocket } from './parked.ts';
import type { TlsTap } from './tls-tap.ts';
import { RingmasterError } from '../lib/errors.ts';
import { ChunkedDecoder, parseHead, type FieldMemo, type RequestHead } from './head.ts';
import { AgentResponse, httpDate, type ResponseConnection } from './agent-response.ts';

// HTTP/1.1 on one agent's TLS connection: requests are read with the strict parser of head.ts,
// one at a time (a pipelined request waits, unparsed, until the answer before it is finished),
// and answers are framed here: Content-Length when the writer gives one, chunked otherwise. This
// replaces node:https's server side, whose per-request objects cost more than the relaying
// itself; only what ringmaster uses is here. Timeouts are checked by the listener's sweep
// (`expire`), so a request arms no timer.

export type AgentHttpSettings = {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Told of each request refused before it reached a handler (malformed, too large, too slow). */
  onRefused?: ((err: RingmasterError, remoteAddress: string | undefined) => void) | undefined;
  /** Told once when a connection has closed. */
  onClosed?: ((conn: AgentConnection) => void) | undefined;
};

/** An agent's connection: with OpenSSL (node:tls), or parked out of it (parked.ts). */
export type AgentSocket = TLSSocket | ParkedSocket;

/** Called for each request; the handler answers on `res`. */
export type OnRequest = (req: AgentRequest, res: AgentResponse) => void;

export class AgentRequest {
  readonly method: string;
  /** The request target as received (path and query). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** Size of the request head in bytes (request line and header fields). */
  readonly headBytes: number;
  readonly socket: AgentSocket;
  /** The body, when the request has one (a Content-Length above 0, or chunked). */
  readonly body: Readable | undefined;
  /** True once the whole body (if any) has been read off the connection. */
  complete: boolean;

  constructor(head: RequestHead, headBytes: number, socket: AgentSocket, body: Readable | undefined) {
    this.method = head.method;
    this.url = head.target;
    this.headers = head.headers;
    this.headBytes = headBytes;
    this.socket = socket;
    this.body = body;
    this.complete = body === undefined;
  }
}

const ignore = (): void => undefined;

class BodyStream extends Readable {
  #conn: AgentConnection;
  constructor(conn: AgentConnection) {
    super();
    this.#conn = conn;
    // A body nobody reads (answered without it) may still fail when the agent leaves: not a crash.
    this.on('error', ignore);
  }
  override _read(): void {
    this.#conn.bodyWanted();
  }
}

type Phase = 'idle' | 'head' | 'body' | 'answering' | 'closing' | 'closed';

/** One agent TLS connection: its requests in order, their bodies and their answers. */
export class AgentConnection implements ResponseConnection {
  socket: AgentSocket;
  /** The byte stream under the TLS socket, while the connection may still be parked. */
  tap: TlsTap | undefined;
  #settings: AgentHttpSettings;
  #onRequest: OnRequest;
  #phase: Phase = 'idle';
  /** Input not yet consumed: part of a head, or a pipelined request waiting its turn. */
  #buf: Buffer | undefined;
  #head: RequestHead | undefined;
  #req: AgentRequest | undefined;
  #res: AgentResponse | undefined;
  #body: BodyStream | undefined;
  #bodyLeft = 0;
  #chunked: ChunkedDecoder | undefined;
  #paused = false;
  #cut = false;
  /** The previous request's field lines, for the next request's head (head.ts). */
  #memo: FieldMemo = [];
  /** performance.now() past which the connection is expired by the sweep (idle, or a head too slow). */
  #deadline: number;
  /** performance.now() of the last answer's end, or of the connection, for the drain. */
  idleSince: number;

  #onData = (chunk: Buffer): void => this.#data(chunk);
  #onDrain = (): void => {
    this.#res?.emit('drain');
  };
  #onError = (): void => {
    this.socket.destroy();
  };
  #onClose = (): void => this.#closed();

  constructor(socket: TLSSocket, settings: AgentHttpSettings, onRequest: OnRequest, tap?: TlsTap) {
    this.socket = socket;
    this.tap = tap;
    this.#settings = settings;
    this.#onRequest = onRequest;
    this.idleSince = performance.now();
    this.#deadline = this.idleSince + settings.headerTimeoutMs;
    this.#bind(socket);
  }

  /** Idle past `afterMs` between requests, with nothing buffered: it may be parked. */
  parkable(now: number, afterMs: number): boolean {
    return this.tap !== undefined && this.#phase === 'idle' && this.#buf === undefined && !this.#paused && now - this.idleSince >= afterMs;
  }

  /** Carries on over `next`, the same connection parked out of OpenSSL. */
  rebind(next: ParkedSocket): void {
    const old = this.socket;
    old.off('data', this.#onData);
    old.off('drain', this.#onDrain);
    old.off('error', this.#onError);
    old.off('close', this.#onClose);
    this.tap = undefined;
    // A parked connection keeps as little as it can; its next request builds the memo again.
    this.#memo = [];
    this.socket = next;
    this.#bind(next);
  }

  #bind(socket: AgentSocket): void {
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  get method(): string {
    return this.#head?.method ?? 'GET';
  }

  get minor(): 0 | 1 {
    return this.#head?.minor ?? 1;
  }

  /** The current request lets the connection carry another, and its body has been read whole. */
  get keepAlive(): boolean {
    return this.#head !== undefined && this.#head.keepAlive && this.#phase === 'answering';
  }

  /** A request is being answered. */
  get busy(): boolean {
    return this.#res !== undefined;
  }

  /** Called by the listener's sweep: ends a connection idle too long or slow to send its head. */
  expire(now: number): void {
    if (now < this.#deadline) return;
    if (this.#phase === 'head') this.#refuse(new RingmasterError('RM_HTTP_HEAD_TIMEOUT', `request head not received within ${this.#settings.headerTimeoutMs} ms`));
    else if (this.#phase === 'idle') this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  send(data: Buffer): boolean {
    if (this.#phase === 'closed') return false;
    return this.socket.write(data);
  }

  /** The answer wrote more than its Content-Length: the connection closes after it. */
  cutAfter(): void {
    this.#cut = true;
  }

  bodyWanted(): void {
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  finished(res: AgentResponse, short: boolean): void {
    if (res !== this.#res) return;
    const req = this.#req!;
    const reuse = !short && !this.#cut && !res.close && req.complete && this.#phase === 'answering';
    this.#res = undefined;
    this.#req = undefined;
    this.#head = undefined;
    this.idleSince = performance.now();
    if (short || this.#cut) {
      this.socket.destroy();
    } else if (!reuse) {
      this.#linger();
    } else {
      this.#phase = 'idle';
      this.#deadline = this.idleSince + this.#settings.keepAliveTimeoutMs;
    }
    // After the writer's own continuations (the gateway fills in the request's record when the
    // proxy's promise settles), as node:http's 'close' comes after the write has completed.
    setImmediate(() => {
      res.closed();
      if (reuse && this.#phase === 'idle') {
        if (this.#paused) this.bodyWanted();
        if (this.#buf !== undefined) {
          this.#phase = 'head';
          this.#deadline = performance.now() + this.#settings.headerTimeoutMs;
          this.#parse();
        }
      }
    });
  }

  #data(chunk: Buffer): void {
    switch (this.#phase) {
      case 'idle':
        this.#phase = 'head';
        this.#deadline = performance.now() + this.#settings.headerTimeoutMs;
        this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
        this.#parse();
        return;
      case 'head':
        this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
        this.#parse();
        return;
      case 'body':
        this.#feedBody(chunk);
        return;
      case 'answering':
        // A pipelined request: kept until the answer before it is out, within a bound.
        this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
        if (this.#buf.length > this.#settings.maxHeaderBytes && !this.#paused) {
          this.#paused = true;
          this.socket.pause();
        }
        return;
      default:
        return;
    }
  }

  #parse(): void {
    let buf = this.#buf!;
    // Blank lines before a request line are skipped (RFC 9112, 2.2).
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
    const end = buf.indexOf('\r\n\r\n', start, 'latin1');
    if (end < 0) {
      if (buf.length - start > this.#settings.maxHeaderBytes) this.#refuse(new RingmasterError('RM_HEADERS_TOO_LARGE', `request head exceeds ${this.#settings.maxHeaderBytes} bytes`));
      else if (bareLf(buf, start)) this.#refuse(new RingmasterError('RM_HTTP_MALFORMED', 'request head lines must end with CRLF'));
      else this.#buf = start === 0 ? buf : buf.subarray(start);
      return;
    }
    const headBytes = end + 4 - start;
    if (headBytes > this.#settings.maxHeaderBytes) {
      this.#refuse(new RingmasterError('RM_HEADERS_TOO_LARGE', `request head exceeds ${this.#settings.maxHeaderBytes} bytes`));
      return;
    }
    let head: RequestHead;
    try {
      head = parseHead(buf.toString('latin1', start, end), this.#memo);
    } catch (err) {
      this.#refuse(err as RingmasterError);
      return;
    }
    buf = buf.subarray(end + 4);
    this.#buf = undefined;
    this.#head = head;
    this.#deadline = Infinity;
    const framing = head.framing;
    let body: BodyStream | undefined;
    if (framing.kind !== 'none') {
      body = new BodyStream(this);
      this.#body = body;
      this.#phase = 'body';
      if (framing.kind === 'length') this.#bodyLeft = framing.length;
      else this.#chunked = new ChunkedDecoder(this.#settings.maxHeaderBytes);
      if (head.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    } else {
      this.#phase = 'answering';
      if (buf.length > 0) this.#buf = buf;
    }
    const req = new AgentRequest(head, headBytes, this.socket, body);
    const res = new AgentResponse(this);
    this.#req = req;
    this.#res = res;
    this.#onRequest(req, res);
    if (body && buf.length > 0 && this.#phase === 'body') this.#feedBody(buf);
  }

  #feedBody(chunk: Buffer): void {
    const body = this.#body!;
    let used: number;
    if (this.#chunked) {
      try {
        used = this.#chunked.feed(chunk, (data) => this.#push(body, data));
      } catch (err) {
        this.#bodyFailed(err as RingmasterError);
        return;
      }
      if (!this.#chunked.done) return;
    } else {
      used = Math.min(this.#bodyLeft, chunk.length);
      this.#push(body, used === chunk.length ? chunk : chunk.subarray(0, used));
      this.#bodyLeft -= used;
      if (this.#bodyLeft > 0) return;
    }
    // The body is complete; what follows is the next request.
    this.#body = undefined;
    this.#chunked = undefined;
    this.#req!.complete = true;
    body.push(null);
    if (used < chunk.length) this.#buf = chunk.subarray(used);
    if (this.#res === undefined) return;
    this.#phase = 'answering';
  }

  #push(body: BodyStream, data: Buffer): void {
    if (!body.push(data) && !this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  /**
   * A body that cannot be read to its end (bad chunk framing): the request is answered here with
   * the error, whatever its handler was doing with the body, and the connection closed; its
   * response object is cut off, so the handler's later writes go nowhere.
   */
  #bodyFailed(err: RingmasterError): void {
    const body = this.#body!;
    const res = this.#res;
    this.#body = undefined;
    this.#chunked = undefined;
    this.#res = undefined;
    this.#req = undefined;
    body.destroy(err);
    if (res && !res.headersSent) {
      res.aborted(err.status);
      this.#refuse(err);
      setImmediate(() => res.closed());
    } else {
      this.socket.destroy();
    }
  }

  /** Answers a request that could not be read, and closes the connection. */
  #refuse(err: RingmasterError): void {
    this.#settings.onRefused?.(err, this.socket.remoteAddress);
    this.#phase = 'closing';
    this.#buf = undefined;
    const body = `${err.message}\n`;
    this.socket.write(
      `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\ncontent-type: text/plain\r\nx-ringmaster-error: ${err.code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\ndate: ${httpDate()}\r\n\r\n${body}`,
    );
    this.#linger();
  }

  /**
   * Ends the connection after what was written, reading and dropping what the client still sends
   * for a moment, so that its unread bytes do not turn the close into a reset that loses the answer.
   */
  #linger(): void {
    this.#phase = 'closing';
    this.#buf = undefined;
    this.socket.end();
    if (this.#paused) this.bodyWanted();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  #closed(): void {
    this.#phase = 'closed';
    this.#settings.onClosed?.(this);
    this.#buf = undefined;
    const res = this.#res;
    this.#res = undefined;
    this.#req = undefined;
    this.#body?.destroy(Object.assign(new Error('the agent closed the connection'), { code: 'ECONNRESET' }));
    this.#body = undefined;
    if (res && !res.writableFinished) {
      res.aborted();
      process.nextTick(() => res.closed());
    }
  }
}

/** Whether a head's lines end with a bare LF somewhere in `buf` (from `start`). */
function bareLf(buf: Buffer, start: number): boolean {
  for (let i = buf.indexOf(10, start); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === start || buf[i - 1] !== 13) return true;
  }
  return false;
}
