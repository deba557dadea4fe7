import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ParsedCert } from '../ca/x509.ts';
import type { Peer } from '../listener/peer.ts';
import { encodeClientCert, upstreamRequestFields, type UpstreamHeaderInput } from './headers.ts';
import { parseResponseHead } from './response-head.ts';

/** The field lines a member gets, read back into an object (repeats as arrays). */
function upstreamRequestHeaders(input: UpstreamHeaderInput): Record<string, string | string[]> {
  const { text } = upstreamRequestFields(input);
  assert.ok(text.endsWith('\r\n'));
  const out: Record<string, string | string[]> = {};
  for (const line of text.slice(0, -2).split('\r\n')) {
    const i = line.indexOf(': ');
    const [k, v] = [line.slice(0, i), line.slice(i + 2)];
    const seen = out[k];
    out[k] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v];
  }
  return out;
}

function forwarded(head: string): string {
  const h = parseResponseHead(head);
  assert.ok(!('error' in h), 'error' in h ? h.error : '');
  return h.forward;
}

const pem = '-----BEGIN CERTIFICATE-----\nMIIB+zCC/A==\n-----END CERTIFICATE-----\n';
const agent: Peer = { kind: 'verified', certname: 'agent1.test', cert: { pem } as ParsedCert };

test('identity headers come from the verified peer; the client\'s own copies are dropped', () => {
  const out = upstreamRequestHeaders({
    headers: {
      'x-client-verify': 'SUCCESS', 'x-client-dn': 'CN=victim.test', 'x-client-cert': 'forged', 'x-puppet-version': '7.23.0',
      accept: 'application/json', 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', host: 'puppet:8140',
    },
    peer: agent, remoteAddress: '127.0.0.9', host: 'puppet:8140',
  });
  assert.equal(out['x-client-verify'], 'SUCCESS');
  assert.equal(out['x-client-dn'], 'CN=agent1.test');
  assert.equal(out['x-client-cert'], encodeClientCert(pem));
  assert.equal(out['x-puppet-version'], '7.23.0', 'agents\' version header is kept: puppetserver uses it');
  assert.equal(out['x-forwarded-for'], '127.0.0.9');
  assert.equal(out['x-forwarded-proto'], 'https');
  assert.equal(out.forwarded, undefined);
  assert.equal(out.host, undefined, 'the member gets its own Host');
});

test('without a certificate the member is told NONE and gets no DN or certificate, whatever the client sent', () => {
  const out = upstreamRequestHeaders({ headers: { 'x-client-dn': 'CN=victim.test', 'x-client-cert': 'x', 'x-client-verify': 'SUCCESS' }, peer: { kind: 'none' }, remoteAddress: undefined, host: undefined });
  assert.equal(out['x-client-verify'], 'NONE');
  assert.equal(out['x-client-dn'], undefined);
  assert.equal(out['x-client-cert'], undefined);
});

test('the certificate is URI-encoded with %20 for spaces and %0A for newlines, and decodes back', () => {
  const withSpace = '-----BEGIN CERTIFICATE-----\nAB+/=\n-----END CERTIFICATE-----\n';
  const enc = encodeClientCert(withSpace);
  assert.ok(enc.includes('%20') && enc.includes('%0A') && !enc.includes('+') && !enc.includes(' '));
  assert.equal(decodeURIComponent(enc), withSpace);
});

test('hop-by-hop headers, and headers named in Connection, go no further in either direction', () => {
  const up = upstreamRequestHeaders({ headers: { connection: 'keep-alive, x-secret', 'x-secret': '1', 'keep-alive': '5', te: 'trailers', 'transfer-encoding': 'chunked', expect: '100-continue', accept: '*/*' }, peer: { kind: 'none' }, remoteAddress: undefined, host: undefined });
  for (const h of ['connection', 'x-secret', 'keep-alive', 'te', 'transfer-encoding', 'expect']) assert.equal(up[h], undefined, h);
  assert.equal(up.accept, '*/*');
  const down = forwarded('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nRetry-After: 30\r\nContent-Type: application/json\r\nKeep-Alive: timeout=5\r\nX-Puppet-Version: 7.9.5');
  assert.equal(down, 'Retry-After: 30\r\nContent-Type: application/json\r\nX-Puppet-Version: 7.9.5\r\n');
  assert.equal(forwarded('HTTP/1.1 200 OK\r\nConnection: x-member-secret\r\nX-Member-Secret: 1\r\nContent-Length: 2'), 'Content-Length: 2\r\n', 'a field named in Connection stays with the member');
});

test('a repeated header reaches the member as it came, and the Content-Length is said', () => {
  const { text, hasLength } = upstreamRequestFields({ headers: { 'x-test': ['a', 'b'], 'content-length': '3' }, peer: { kind: 'none' }, remoteAddress: undefined, host: undefined });
  assert.ok(text.startsWith('x-test: a\r\nx-test: b\r\ncontent-length: 3\r\n'), text);
  assert.equal(hasLength, true);
  assert.equal(upstreamRequestFields({ headers: {}, peer: { kind: 'none' }, remoteAddress: undefined, host: undefined }).hasLength, false);
});
