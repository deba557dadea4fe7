import type { TLSSocket } from 'node:tls';
import { parseCert, type ParsedCert } from '../ca/x509.ts';

// Identity comes only from the verified TLS peer certificate, never from a header.

export type Peer =
  | { kind: 'none' }
  | { kind: 'verified'; certname: string; cert: ParsedCert }
  | { kind: 'rejected'; reason: string; certname: string | undefined };

const cache = new WeakMap<TLSSocket, Peer>();

export function peerOf(socket: TLSSocket): Peer {
  const hit = cache.get(socket);
  if (hit) return hit;
  const x509 = socket.getPeerX509Certificate();
  let peer: Peer;
  if (!x509) peer = { kind: 'none' };
  else {
    const cert = parseCert(x509.toString());
    if (!socket.authorized) {
      const reason = String(socket.authorizationError ?? 'certificate did not verify');
      peer = { kind: 'rejected', reason, certname: cert.commonName };
    } else if (!cert.commonName) {
      peer = { kind: 'rejected', reason: 'certificate has no common name', certname: undefined };
    } else {
      peer = { kind: 'verified', certname: cert.commonName, cert };
    }
  }
  cache.set(socket, peer);
  return peer;
}
