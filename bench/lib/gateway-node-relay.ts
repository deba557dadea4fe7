// The platform floor of the gateway benchmark: node:https terminating the agents' TLS and relaying
// each request through ringmaster's own upstream module (src/upstream/connections.ts, undici)
// with the X-Client-* headers set from the verified peer, and nothing else: no routing, path
// checks, pools, limits or retries. What ringmaster costs beyond this is its own logic; what
// this costs is the Node runtime's HTTP and TLS work. Run as its own process (forked by
// gateway-procs.ts) so its CPU is counted like the other front doors'.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { MemberConnections } from '../../src/upstream/connections.ts';

export type RelayStart = { op: 'start'; backendUrl: string; key: string; cert: string; ca: string; crl: string; keepAliveTimeoutMs?: number };
export type RelayReply = { op: 'listening'; port: number };

const encoded = new WeakMap<TLSSocket, Record<string, string>>();

/** The identity headers of a connection, computed once per connection as ringmaster does. */
function identity(socket: TLSSocket): Record<string, string> {
  let h = encoded.get(socket);
  if (h) return h;
  const peer = socket.authorized ? socket.getPeerX509Certificate() : undefined;
  const cn = peer?.subject.match(/CN=([^\n]+)/)?.[1];
  h = peer && cn ? { 'x-client-verify': 'SUCCESS', 'x-client-dn': `CN=${cn}`, 'x-client-cert': encodeURIComponent(peer.toString()) } : { 'x-client-verify': 'NONE' };
  encoded.set(socket, h);
  return h;
}

function start(m: RelayStart): Promise<number> {
  const upstream = new MemberConnections(m.backendUrl, { connectTimeoutMs: 5_000, keepAliveMs: 60_000, tls: { verify: false, ca: [], serverName: undefined, client: undefined } });
  const server: Server = createServer({ key: m.key, cert: m.cert, ca: m.ca, crl: m.crl, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', keepAliveTimeout: m.keepAliveTimeoutMs ?? 60_000 }, (req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && name !== 'connection' && name !== 'host') headers[name] = value;
    Object.assign(headers, identity(req.socket as TLSSocket));
    const control = upstream.exchange(
      { method: req.method ?? 'GET', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 },
      {
        head(h) {
          const out: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(h.headers())) if (value !== undefined && name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') out[name] = value;
          res.writeHead(h.status, out);
        },
        data(chunk) {
          if (!res.write(chunk)) control.pause();
        },
        end() {
          res.end();
        },
        error() {
          res.destroy();
        },
      },
    );
    res.on('drain', () => control.resume());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

if (process.send) {
  process.once('message', (m: RelayStart) => {
    void start(m).then((port) => process.send?.({ op: 'listening', port } satisfies RelayReply));
  });
  process.on('disconnect', () => process.exit(0));
  // An orderly exit, so that --cpu-prof can write its profile.
  process.on('SIGTERM', () => process.exit(0));
}
