import type { IncomingHttpHeaders } from 'node:http';
import type { Peer } from '../listener/peer.ts';

// Headers on the way to a member and back. The identity headers are the security boundary of
// puppetserver's external TLS termination: whatever the client sent under those names is dropped,
// and the gateway writes them from the verified TLS peer alone.

const identity = new Set(['x-client-verify', 'x-client-dn', 'x-client-cert']);
// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings', 'expect']);
const forwarded = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
// What never passes from the agent to a member, in one set: one lookup per header.
const notUpstream = new Set([...identity, ...hopByHop, ...forwarded]);

const encodedCerts = new WeakMap<object, string>();

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

export function upstreamRequestHeaders(input: UpstreamHeaderInput): Record<string, string | string[]> {
  const named = connectionTokens(input.headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(input.headers)) {
    if (value === undefined || notUpstream.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  const peer = input.peer;
  if (peer.kind === 'verified') {
    out['x-client-verify'] = 'SUCCESS';
    out['x-client-dn'] = `CN=${peer.certname}`;
    let cert = encodedCerts.get(peer.cert);
    if (cert === undefined) {
      cert = encodeClientCert(peer.cert.pem.trim() + '\n');
      encodedCerts.set(peer.cert, cert);
    }
    out['x-client-cert'] = cert;
  } else {
    out['x-client-verify'] = 'NONE';
  }
  if (input.remoteAddress) out['x-forwarded-for'] = input.remoteAddress;
  out['x-forwarded-proto'] = 'https';
  if (input.host) out['x-forwarded-host'] = input.host;
  return out;
}

/** Response headers for the agent: the member's, less what described the member's connection. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hopByHop.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}
