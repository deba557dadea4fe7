import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { RingmasterError } from '../lib/errors.ts';
import { hasToken } from './head.ts';

// The answer to one agent request, framed for HTTP/1.1 on its connection (agent-http.ts): the
// head once, then the body with the writer's Content-Length or chunked, written to the TLS socket
// in one piece per write.

/** What an answer needs of its connection (AgentConnection). */
export type ResponseConnection = {
  /** The request's method and HTTP minor version. */
  readonly method: string;
  readonly minor: 0 | 1;
  /** The connection may carry another request after this answer. */
  readonly keepAlive: boolean;
  send(data: Buffer): boolean;
  /** The answer broke its Content-Length: close after it. */
  cutAfter(): void;
  /** The answer is written whole (`short`: less than its Content-Length). */
  finished(res: AgentResponse, short: boolean): void;
  destroy(): void;
};

const noBodyStatus = (status: number): boolean => status === 204 || status === 304 || status < 200;
/** Header values are written as given, so one holding CR, LF or NUL would split the response. */
const unsafeValue = /[\r\n\0]/;

let dateSecond = -1;
let dateText = '';
/** The Date header's value, made once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * The answer to one request. Events: 'close' once, when the answer is finished or the connection
 * broke ('close' after `end` means the answer went out whole: `writableFinished`), and 'drain'
 * when `write` returned false and the connection can take more.
 */
export class AgentResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  #conn: ResponseConnection;
  #headers: Record<string, unknown> | undefined;
  #pending: string | undefined;
  #chunked = false;
  #noBody = false;
  /** Bytes still owed under a Content-Length; -1 without one. */
  #left = -1;
  /** The connection closes after this answer. */
  close = false;
  /** Called once, just before 'close': the request's record (a field, not a listener, as every request has one). */
  #closing: (() => void) | undefined;

  constructor(conn: ResponseConnection) {
    super();
    this.#conn = conn;
  }

  /** `fn` runs once when the answer closes, before the 'close' listeners. */
  whenClosed(fn: () => void): void {
    this.#closing = fn;
  }

  /** For the connection: the answer is finished or cut off. */
  closed(): void {
    const fn = this.#closing;
    this.#closing = undefined;
    fn?.();
    this.emit('close');
  }

  getHeader(name: string): unknown {
    return this.#headers?.[name];
  }

  writeHead(status: number, headers: Record<string, string | number | readonly string[] | undefined> = {}): this {
    if (this.headersSent) throw new Error('response head already sent');
    const conn = this.#conn;
    let close = !conn.keepAlive;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let length = -1;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        if (hasToken(String(value), 'close')) close = true;
        continue;
      }
      if (lower === 'transfer-encoding' || lower === 'keep-alive') continue;
      if (lower === 'content-length') length = Number(value);
      if (typeof value === 'object') {
        for (const v of value) head += `${name}: ${checked(name, v)}\r\n`;
      } else {
        head += `${name}: ${checked(name, String(value))}\r\n`;
      }
    }
    this.#headers = headers;
    return this.#framed(status, head, length, close, headers.date === undefined);
  }

  /**
   * Writes a head whose field lines come ready-made (a member's, relayed): `fields` end each in
   * CRLF and hold no Connection or Transfer-Encoding; `length` is the body's length as their
   * Content-Length gives it, -1 when they give none (the body is then chunked, or closes an
   * HTTP/1.0 connection). `date`: add a Date, the fields having none.
   */
  writeForwarded(status: number, fields: string, length: number, opts: { close: boolean; date: boolean }): this {
    if (this.headersSent) throw new Error('response head already sent');
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${fields}`;
    return this.#framed(status, head, length, opts.close || !this.#conn.keepAlive, opts.date);
  }

  /** Ends the head with the framing the connection needs, and keeps it to go out with the body. */
  #framed(status: number, head: string, length: number, close: boolean, date: boolean): this {
    const conn = this.#conn;
    this.#noBody = conn.method === 'HEAD' || noBodyStatus(status);
    if (!this.#noBody && length < 0) {
      if (conn.minor === 1) {
        this.#chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else {
        close = true;
      }
    }
    if (close) head += 'connection: close\r\n';
    if (date) head += `date: ${httpDate()}\r\n`;
    head += '\r\n';
    this.#left = this.#noBody ? 0 : length;
    this.#pending = head;
    this.close = close;
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }

  /** Writes part of the body; false when the connection's buffer is full (wait for 'drain'). */
  write(chunk: Buffer): boolean {
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (this.writableFinished || this.destroyed) return false;
    return this.#conn.send(this.#frame(chunk, false));
  }

  end(chunk?: Buffer | string): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (this.writableFinished || this.destroyed) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const out = this.#frame(data, true);
    this.writableFinished = true;
    // A body shorter than its Content-Length cannot be framed: the connection is cut instead.
    const short = this.#left > 0;
    if (out.length > 0) this.#conn.send(out);
    this.#conn.finished(this, short);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#conn.destroy();
  }

  /** The head (once), the chunk in its framing, and the last-chunk marker at the end. */
  #frame(chunk: Buffer | undefined, last: boolean): Buffer {
    let prefix = this.#pending ?? '';
    this.#pending = undefined;
    let body = chunk !== undefined && chunk.length > 0 && !this.#noBody ? chunk : undefined;
    if (body && this.#left >= 0) {
      if (body.length > this.#left) {
        // More than the Content-Length promised: the excess would be read as another response.
        body = body.subarray(0, this.#left);
        this.#conn.cutAfter();
      }
      this.#left -= body.length;
    }
    let suffix = '';
    if (this.#chunked) {
      if (body) {
        prefix += `${body.length.toString(16)}\r\n`;
        suffix = '\r\n';
      }
      if (last) suffix += '0\r\n\r\n';
    }
    if (!body) return Buffer.from(prefix + suffix, 'latin1');
    if (prefix === '' && suffix === '') return body;
    const out = Buffer.allocUnsafe(prefix.length + body.length + suffix.length);
    out.write(prefix, 0, 'latin1');
    body.copy(out, prefix.length);
    if (suffix !== '') out.write(suffix, prefix.length + body.length, 'latin1');
    return out;
  }

  /** The answer will not go out through this object: the connection ended, or answered `status` itself. */
  aborted(status?: number): void {
    this.destroyed = true;
    if (status !== undefined) {
      this.statusCode = status;
      this.headersSent = true;
    }
  }
}

function checked(name: string, value: string): string {
  if (unsafeValue.test(value)) throw new RingmasterError('RM_INTERNAL', `response header ${name} holds CR, LF or NUL`);
  return value;
}
