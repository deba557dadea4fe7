// A floor of the gateway benchmark: the bare relay (gateway-node-relay.ts) with node:https's
// server side replaced by a minimal HTTP/1.1 parse on the node:tls socket, relaying through
// ringmaster's upstream module all the same. It shows what an agent-side HTTP/1.1 server of
// ringmaster's own could save over node:https. It parses only what the benchmark's client sends
// (Content-Length bodies, one request at a time per connection) and checks nothing: it is a
// measurement, never a server. Not run by default: `--only floor-parse,...` adds it.
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { MemberConnections } from '../../src/upstream/connections.ts';
import type { RelayStart } from './gateway-node-relay.ts';

function identity(socket: TLSSocket): Record<string, string> {
  const peer = socket.authorized ? socket.getPeerX509Certificate() : undefined;
  const cn = peer?.subject.match(/CN=([^\n]+)/)?.[1];
  return peer && cn ? { 'x-client-verify': 'SUCCESS', 'x-client-dn': `CN=${cn}`, 'x-client-cert': encodeURIComponent(peer.toString()) } : { 'x-client-verify': 'NONE' };
}

function start(m: RelayStart): Promise<number> {
  const upstream = new MemberConnections(m.backendUrl, { connectTimeoutMs: 5_000, keepAliveMs: 60_000, tls: { verify: false, ca: [], serverName: undefined, client: undefined } });
  // noDelay as ringmaster's listener and node:https set it: a relayed answer may go out in several writes.
  const server = createServer({ key: m.key, cert: m.cert, ca: m.ca, crl: m.crl, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', noDelay: true }, (socket) => {
    let id: Record<string, string> | undefined;
    let buf: Buffer | undefined;
    let busy = false;
    const pump = (): void => {
      if (busy || !buf) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const lines = head.split('\r\n');
      const [method, target] = lines[0]!.split(' ');
      const headers: Record<string, string> = {};
      let len = 0;
      for (let i = 1; i < lines.length; i++) {
        const l = lines[i]!;
        const c = l.indexOf(':');
        const name = l.slice(0, c).toLowerCase();
        const value = l.slice(c + 1).trim();
        if (name === 'content-length') len = Number(value);
        if (name === 'connection' || name === 'host') continue;
        headers[name] = value;
      }
      if (buf.length < end + 4 + len) return;
      const body = len > 0 ? buf.subarray(end + 4, end + 4 + len) : undefined;
      const rest = buf.subarray(end + 4 + len);
      buf = rest.length ? rest : undefined;
      id ??= identity(socket);
      Object.assign(headers, id);
      busy = true;
      upstream.exchange({ method: method!, path: target!, headers, body: body ? Buffer.from(body) : undefined, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 }, {
        head(h) {
          // The member's field lines less the hop-by-hop ones, as ringmaster's upstream cut them.
          socket.cork();
          socket.write(`HTTP/1.1 ${h.status} OK\r\n${h.forward}\r\n`, 'latin1');
          process.nextTick(() => socket.uncork());
        },
        data(chunk) { socket.write(chunk); },
        end() { busy = false; pump(); },
        error() { socket.destroy(); },
      });
    };
    socket.on('data', (d: Buffer) => { buf = buf ? Buffer.concat([buf, d]) : d; pump(); });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

if (process.send) {
  process.once('message', (m: RelayStart) => { void start(m).then((port) => process.send?.({ op: 'listening', port })); });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}
