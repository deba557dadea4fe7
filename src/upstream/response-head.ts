import { hopByHop } from './headers.ts';

// A member's response head, read once: the status, what frames the body, and the field lines the
// agent gets, cut straight out of the member's text. The proxy relays those lines as they came
// (their case and spacing included) instead of building a header object and writing it out again;
// the object is made only for a caller that asks for it.

export type ResponseHeadError = { error: string };

const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/;
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** NUL, or CR and LF anywhere but together: a line the agent could split differently. */
const looseBreak = /\0|\r(?!\n)|(?<!\r)\n/;

export class ResponseHead {
  readonly status: number;
  readonly http11: boolean;
  /** The field lines for the agent, each ending in CRLF. */
  forward = '';
  /** The member sent a Date (the agent gets the member's, not a second one). */
  hasDate = false;
  /** Connection, Transfer-Encoding and Content-Length as received (repeats joined, lengths kept apart). */
  connection: string | undefined;
  transferEncoding: string | undefined;
  contentLength: string[] | undefined;
  /** The body's length for the agent once the framing is known: -1 when it has none to give. */
  length = -1;
  #text: string;
  #fieldsAt: number;
  #headers: Record<string, string | string[]> | undefined;

  constructor(status: number, http11: boolean, text: string, fieldsAt: number) {
    this.status = status;
    this.http11 = http11;
    this.#text = text;
    this.#fieldsAt = fieldsAt;
  }

  /** Every field, lower-case names, repeats as arrays: for callers that read headers by name. */
  headers(): Record<string, string | string[]> {
    if (this.#headers) return this.#headers;
    const out: Record<string, string | string[]> = {};
    eachField(this.#text, this.#fieldsAt, (key, value) => {
      const seen = out[key];
      if (seen === undefined) out[key] = value;
      else if (typeof seen === 'string') out[key] = [seen, value];
      else seen.push(value);
    });
    return (this.#headers = out);
  }
}

/**
 * Reads `text`, a response head up to (not including) its blank line. Fails on a malformed status
 * line, a field line without a token name and a colon, or a stray CR, LF or NUL.
 */
export function parseResponseHead(text: string): ResponseHead | ResponseHeadError {
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const m = statusLine.exec(eol === text.length ? text : text.slice(0, eol));
  if (!m) return { error: `malformed status line ${JSON.stringify(text.slice(0, Math.min(eol, 80)))}` };
  if (looseBreak.test(text)) return { error: 'CR, LF or NUL inside a response header line' };
  const head = new ResponseHead(Number(m[2]), m[1] === '1', text, eol + 2);
  let run = eol + 2;
  let forward = '';
  // One pass: note the framing fields, and cut the lines to relay in runs between dropped ones.
  const bad = eachField(text, eol + 2, (key, value, lineAt, nextAt) => {
    if (key === 'content-length') (head.contentLength ??= []).push(value);
    else if (key === 'date') head.hasDate = true;
    else if (hopByHop.has(key)) {
      if (key === 'connection') head.connection = head.connection === undefined ? value : `${head.connection}, ${value}`;
      else if (key === 'transfer-encoding') head.transferEncoding = head.transferEncoding === undefined ? value : `${head.transferEncoding}, ${value}`;
      forward += text.slice(run, lineAt);
      run = nextAt;
    }
  });
  if (bad !== undefined) return { error: bad };
  if (run < text.length) forward += `${text.slice(run)}\r\n`;
  head.forward = forward;
  // Rare: fields the member named in Connection, or a Content-Length beside Transfer-Encoding
  // (the agent's framing is made anew, so the length would be a lie): a second pass drops them.
  let drop = namedTokens(head.connection);
  if (head.transferEncoding !== undefined && head.contentLength !== undefined) (drop ??= new Set()).add('content-length');
  if (drop !== undefined) {
    const also = drop;
    let out = '';
    eachField(text, eol + 2, (key, _value, lineAt, nextAt) => {
      if (!hopByHop.has(key) && !also.has(key)) out += `${text.slice(lineAt, Math.min(nextAt - 2, text.length))}\r\n`;
    });
    head.forward = out;
  }
  return head;
}

/** Field names listed in a Connection value besides close and keep-alive; undefined when none. */
function namedTokens(connection: string | undefined): Set<string> | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  let out: Set<string> | undefined;
  for (const t of connection.split(',')) {
    const k = t.trim().toLowerCase();
    if (k !== '' && k !== 'close' && k !== 'keep-alive') (out ??= new Set()).add(k);
  }
  return out;
}

/**
 * Calls `each` with every field line from `at`: its lower-case name, trimmed value, and where the
 * line and the next one start. Returns a description of the first malformed line, if any.
 */
function eachField(text: string, at: number, each: (key: string, value: string, lineAt: number, nextAt: number) => void): string | undefined {
  while (at < text.length) {
    let next = text.indexOf('\r\n', at);
    if (next < 0) next = text.length;
    const colon = text.indexOf(':', at);
    const name = colon > at && colon < next ? text.slice(at, colon) : '';
    if (!token.test(name)) return `malformed response header line ${JSON.stringify(text.slice(at, Math.min(next, at + 80)))}`;
    each(name.toLowerCase(), text.slice(colon + 1, next).trim(), at, next + 2);
    at = next + 2;
  }
  return undefined;
}
