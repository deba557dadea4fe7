import type { IncomingHttpHeaders } from 'node:http';
import type { Peer } from '../listener/peer.ts';
import type { FieldLines } from './http1.ts';

// Headers on the way to a member and back. The identity headers are the security boundary of
// puppetserver's external TLS termination: whatever the client sent under those names is dropped,
// and the gateway writes them from the verified TLS peer alone.

const identity = new Set(['x-client-verify', 'x-client-dn', 'x-client-cert']);
// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded (a member's
// response is read by response-head.ts, which drops the same ones).
export const hopByHop: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'expect']);
const forwarded = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
// What never passes from the agent to a member, in one set: one lookup per header.
const notUpstream = new Set([...identity, ...hopByHop, ...forwarded]);

const identityOf = new WeakMap<object, string>();

/** The leaf PEM as one URI-encoded value, spaces as %20 and newlines as %0A, as puppetserver decodes it. */
export function encodeClientCert(pem: string): string {
  return encodeURIComponent(pem);
}

const noTokens: ReadonlySet<string> = new Set();

function connectionTokens(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value: string | string[] | undefined = headers.connection;
  // The common values name only hop-by-hop headers, which are dropped anyway.
  if (value === undefined || value === 'keep-alive' || value === 'close') return noTokens;
  const tokens = new Set<string>();
  const values: string[] = Array.isArray(value) ? value : value ? [value] : [];
  for (const v of values) {
    for (const t of v.split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

export type UpstreamHeaderInput = { headers: IncomingHttpHeaders; peer: Peer; remoteAddress: string | undefined; host: string | undefined };

/**
 * The field lines a member gets for an agent's request: the agent's own, less the hop-by-hop,
 * identity and forwarding ones, then the identity of the verified peer and X-Forwarded-*. Written
 * out here, once per request, rather than built as an object and serialised after.
 */
export function upstreamRequestFields(input: UpstreamHeaderInput): FieldLines {
  const headers = input.headers;
  const named = connectionTokens(headers);
  let text = '';
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || notUpstream.has(name) || named.has(name)) continue;
    if (typeof value === 'string') text += `${name}: ${value}\r\n`;
    else for (const v of value) text += `${name}: ${v}\r\n`;
  }
  text += identityLines(input.peer);
  if (input.remoteAddress) text += `x-forwarded-for: ${input.remoteAddress}\r\n`;
  text += 'x-forwarded-proto: https\r\n';
  if (input.host) text += `x-forwarded-host: ${input.host}\r\n`;
  return { text, hasLength: headers['content-length'] !== undefined };
}

/** The identity lines for a peer; a verified certificate's are made once and kept with it. */
function identityLines(peer: Peer): string {
  if (peer.kind !== 'verified') return 'x-client-verify: NONE\r\n';
  let lines = identityOf.get(peer.cert);
  if (lines === undefined) {
    lines = `x-client-verify: SUCCESS\r\nx-client-dn: CN=${peer.certname}\r\nx-client-cert: ${encodeClientCert(peer.cert.pem.trim() + '\n')}\r\n`;
    identityOf.set(peer.cert, lines);
  }
  return lines;
}
