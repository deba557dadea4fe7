import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { parseCert, type ParsedCert } from '../ca/x509.ts';

// Identity comes only from the verified TLS peer certificate, never from a header.

export type Peer =
  | { kind: 'none' }
  | { kind: 'verified'; certname: string; cert: ParsedCert }
  | { kind: 'rejected'; reason: string; certname: string | undefined };

/** Per connection: its TLS socket, or the parked socket that replaced it (carryPeer). */
const cache = new WeakMap<object, Peer>();

// Agents open a new connection for every run, always with the same certificate: its parse (and
// the encoded X-Client-Cert made from it) is kept by fingerprint, so a handshake costs no parse.
const parsed = new Map<string, ParsedCert>();
const parsedLimit = 20_000;

function parseOnce(x509: X509Certificate): ParsedCert {
  const key = x509.fingerprint256;
  const hit = parsed.get(key);
  if (hit) return hit;
  const cert = parseCert(x509.toString());
  // Oldest first out: a fleet larger than the limit only loses the cache's benefit, not memory.
  if (parsed.size >= parsedLimit) parsed.delete(parsed.keys().next().value!);
  parsed.set(key, cert);
  return cert;
}

export function peerOf(socket: TLSSocket | object): Peer {
  const hit = cache.get(socket);
  if (hit) return hit;
  // A socket without TLS state of its own has only the identity carried over to it.
  if (!('getPeerX509Certificate' in socket)) return { kind: 'rejected', reason: 'no verified TLS state', certname: undefined };
  const x509 = socket.getPeerX509Certificate();
  let peer: Peer;
  if (!x509) peer = { kind: 'none' };
  else {
    const cert = parseOnce(x509);
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

/** The connection's identity goes with it when its TLS socket is replaced (a parked connection). */
export function carryPeer(from: TLSSocket, to: object): void {
  cache.set(to, peerOf(from));
}
