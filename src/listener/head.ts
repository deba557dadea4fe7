import type { IncomingHttpHeaders } from 'node:http';
import { RingmasterError } from '../lib/errors.ts';

// Reading agents' HTTP/1.1 requests: the request head and chunked bodies (the chunked decoder
// also reads members' responses in src/upstream/http1.ts). ringmaster sits in
// front of compilers that parse HTTP themselves, so any message two parsers could frame
// differently (both Content-Length and Transfer-Encoding, two lengths, folded or space-padded
// header names, bare LF, odd chunk sizes) is refused with 400 and its connection closed, never
// guessed at. Bodies are always framed anew towards the member, so a refused form cannot reach it.

/** How the request's body is delimited. */
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

export type RequestHead = {
  method: string;
  /** The request target exactly as received. */
  target: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  minor: 0 | 1;
  /** Lower-case names; repeated fields joined with ", " (cookie with "; ", set-cookie kept apart). */
  headers: IncomingHttpHeaders;
  framing: Framing;
  /** The client allows the connection to carry another request after this one. */
  keepAlive: boolean;
  /** `Expect: 100-continue` on a request with a body. */
  expectContinue: boolean;
};

export function malformed(message: string): RingmasterError {
  return new RingmasterError('RM_HTTP_MALFORMED', message);
}

const requestLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Anything but HTAB, SP, visible ASCII and obs-text. */
const badValueChar = /[^\t\x20-\x7e\x80-\xff]/;
const contentLength = /^\d{1,15}$/;
/** Fields whose repetition makes the message ambiguous. */
const single = new Set(['host', 'content-length', 'transfer-encoding']);

/**
 * The field lines of a connection's previous request, checked and split, by position: an agent
 * sends most of the same lines in the same order on every request, and a line equal to the one
 * in its place last time is taken as it was then, without being checked and split again.
 */
export type FieldMemo = { line: string; name: string; value: string }[];

/**
 * Parses a request head: `text` is the latin1 text up to (not including) the blank line that ends
 * it. Throws RingmasterError (RM_HTTP_MALFORMED, RM_HTTP_VERSION, RM_HTTP_TRANSFER_CODING,
 * RM_HTTP_EXPECTATION) for anything that is not a well-formed HTTP/1.x request. `memo`, when given,
 * is the connection's FieldMemo: read, and brought up to date with this request's lines.
 */
export function parseHead(text: string, memo?: FieldMemo): RequestHead {
  const firstEnd = text.indexOf('\r\n');
  const first = requestLine.exec(firstEnd < 0 ? text : text.slice(0, firstEnd));
  if (!first) throw malformed('malformed request line');
  if (first[3] !== '1' || (first[4] !== '0' && first[4] !== '1')) {
    throw new RingmasterError('RM_HTTP_VERSION', `HTTP/${first[3]}.${first[4]} is not supported; use HTTP/1.1`);
  }
  const minor = first[4] === '1' ? 1 : 0;
  const headers: IncomingHttpHeaders = {};
  for (let at = firstEnd, i = 0; at >= 0; i++) {
    const from = at + 2;
    at = text.indexOf('\r\n', from);
    const line = at < 0 ? text.slice(from) : text.slice(from, at);
    const known = memo?.[i];
    if (known !== undefined && known.line === line) {
      addValue(headers, known.name, known.value);
      continue;
    }
    const field = splitField(line);
    addValue(headers, field.name, field.value);
    if (memo !== undefined && i <= memo.length && i < maxMemoLines) memo[i] = { line, name: field.name, value: field.value };
  }

  if (minor === 1 && headers.host === undefined) throw malformed('HTTP/1.1 request without a Host header');
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  let framing: Framing;
  if (te !== undefined) {
    if (cl !== undefined) throw malformed('both Content-Length and Transfer-Encoding');
    if (minor === 0) throw malformed('Transfer-Encoding in an HTTP/1.0 request');
    const codings = te.toLowerCase().split(',');
    if (codings[codings.length - 1]!.trim() !== 'chunked') throw malformed(`Transfer-Encoding "${te}" does not end with chunked`);
    if (codings.length > 1) throw new RingmasterError('RM_HTTP_TRANSFER_CODING', `Transfer-Encoding "${te}": only chunked is supported`);
    framing = { kind: 'chunked' };
  } else if (cl !== undefined) {
    if (!contentLength.test(cl)) throw malformed(`invalid Content-Length "${cl}"`);
    const length = Number(cl);
    framing = length === 0 ? { kind: 'none' } : { kind: 'length', length };
  } else {
    framing = { kind: 'none' };
  }

  let expectContinue = false;
  const expect = headers.expect;
  if (expect !== undefined) {
    if (expect.toLowerCase() !== '100-continue') throw new RingmasterError('RM_HTTP_EXPECTATION', `Expect "${expect}" cannot be met`);
    expectContinue = minor === 1 && framing.kind !== 'none';
  }
  const connection = headers.connection;
  const keepAlive = minor === 1 && (connection === undefined || !hasToken(connection, 'close'));
  return { method: first[1]!, target: first[2]!, minor, headers, framing, keepAlive, expectContinue };
}

/**
 * Header names as sent, checked and lower-cased once: agents send the same dozen names on every
 * request. Bounded, so names nobody sends twice do not fill it.
 */
const lowerNames = new Map<string, string>();
const maxLowerNames = 256;

function lowerName(rawName: string): string {
  const known = lowerNames.get(rawName);
  if (known !== undefined) return known;
  if (!token.test(rawName)) throw malformed(`invalid header name "${printable(rawName)}"`);
  const name = rawName.toLowerCase();
  if (lowerNames.size < maxLowerNames) lowerNames.set(rawName, name);
  return name;
}

/** Lines remembered per connection (FieldMemo). */
const maxMemoLines = 32;

function addField(headers: IncomingHttpHeaders, line: string): void {
  const field = splitField(line);
  addValue(headers, field.name, field.value);
}

/** A field line checked and split into its lower-case name and its value without surrounding blanks. */
function splitField(line: string): { name: string; value: string } {
  const colon = line.indexOf(':');
  // A leading space or tab is obsolete line folding; a space before the colon is refused too.
  if (colon <= 0) throw malformed(line.length > 0 && (line[0] === ' ' || line[0] === '\t') ? 'folded header line' : 'malformed header line');
  const name = lowerName(line.slice(0, colon));
  let start = colon + 1;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 32 || line.charCodeAt(start) === 9)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  const value = line.slice(start, end);
  if (badValueChar.test(value)) throw malformed(`control character in the value of ${name}`);
  if (name === '__proto__') throw malformed('invalid header name "__proto__"');
  return { name, value };
}

function addValue(headers: IncomingHttpHeaders, name: string, value: string): void {
  const prev = headers[name];
  if (prev === undefined) {
    headers[name] = name === 'set-cookie' ? [value] : value;
  } else if (single.has(name)) {
    throw malformed(`repeated ${name} header`);
  } else if (Array.isArray(prev)) {
    prev.push(value);
  } else {
    headers[name] = `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
}

/** Whether a comma-separated header value holds `want` (lower case) as one of its tokens. */
export function hasToken(value: string, want: string): boolean {
  if (value.length === want.length) return value.toLowerCase() === want;
  for (const part of value.split(',')) if (part.trim().toLowerCase() === want) return true;
  return false;
}

function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
}

const CR = 13;
const LF = 10;
/** Longest chunk-size line (with extensions) and longest trailer section read. */
const maxSizeLine = 4096;
const sizeLine = /^([0-9A-Fa-f]{1,16})(?:[\t ]*;[\t\x20-\x7e\x80-\xff]*)?$/;

/**
 * Decodes a chunked request body fed in pieces. `feed` returns how much of `buf` belonged to the
 * body (the rest is the next request) and hands the data to `out`; it throws RM_HTTP_MALFORMED on
 * a malformed size line, a missing CRLF after chunk data, or a malformed trailer.
 */
export class ChunkedDecoder {
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  #line = '';
  #left = 0;
  #trailerBytes = 0;
  #maxTrailerBytes: number;

  constructor(maxTrailerBytes = 64 * 1024) {
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  feed(buf: Buffer, out: (data: Buffer) => void): number {
    let at = 0;
    while (at < buf.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const take = Math.min(this.#left, buf.length - at);
        out(buf.subarray(at, at + take));
        at += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = 'data-end';
        continue;
      }
      // The other states read CRLF-terminated lines.
      const lf = buf.indexOf(LF, at);
      const end = lf < 0 ? buf.length : lf + 1;
      this.#line += buf.toString('latin1', at, end);
      at = end;
      const limit = this.#state === 'trailer' ? this.#maxTrailerBytes - this.#trailerBytes : maxSizeLine;
      if (this.#line.length > limit) throw malformed(this.#state === 'trailer' ? 'chunked trailer too large' : 'chunk size line too long');
      if (lf < 0) break;
      const line = this.#line;
      this.#line = '';
      if (line.length < 2 || line.charCodeAt(line.length - 2) !== CR) throw malformed('chunked body line not ended by CRLF');
      this.#takeLine(line.slice(0, -2));
    }
    return at;
  }

  /**
   * `feed` for a reader that needs only the outcome (the upstream client's responses): 'more'
   * while incomplete, 'end' when the body ended with `buf`, 'extra' when bytes follow it, 'error'
   * on bad framing.
   */
  push(buf: Buffer, out: (data: Buffer) => void): 'more' | 'end' | 'extra' | 'error' {
    let used: number;
    try {
      used = this.feed(buf, out);
    } catch {
      return 'error';
    }
    if (!this.done) return 'more';
    return used === buf.length ? 'end' : 'extra';
  }

  #takeLine(line: string): void {
    switch (this.#state) {
      case 'data-end':
        if (line !== '') throw malformed('chunk data longer than its size');
        this.#state = 'size';
        return;
      case 'size': {
        const m = sizeLine.exec(line);
        if (!m) throw malformed(`invalid chunk size line "${printable(line)}"`);
        this.#left = parseInt(m[1]!, 16);
        if (this.#left > Number.MAX_SAFE_INTEGER) throw malformed(`chunk size ${m[1]!} too large`);
        this.#state = this.#left === 0 ? 'trailer' : 'data';
        return;
      }
      case 'trailer':
        if (line === '') {
          this.#state = 'done';
          return;
        }
        this.#trailerBytes += line.length + 2;
        // Trailer fields are checked as header fields and then dropped: nothing forwards them.
        addField({}, line);
        return;
      default:
        return;
    }
  }
}
