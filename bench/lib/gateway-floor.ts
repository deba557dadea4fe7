// Floors of the Node platform for the gateway benchmark, each run as its own process:
//   pipe:   node:tls terminating the agent's TLS and piping the decrypted bytes to the backend's
//           plain HTTP port, no HTTP parsing at all (the least any Node relay can cost);
//   answer: node:https answering each request itself with the backend's canned body (what
//           node:http's server side costs without any upstream).
// Not run by default: `--only floor-pipe,floor-answer,...` adds them.
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

export type FloorStart = { op: 'start'; mode: 'pipe' | 'answer'; backendPort: number; key: string; cert: string; ca: string; crl: string };

const tag = 'ringmaster-bench-backend';
const body = (bytes: number): Buffer => Buffer.from(JSON.stringify({ tag, padding: 'x'.repeat(bytes) }));
const bodies = { catalog: body(50 * 1024), small: body(1000) };

function start(m: FloorStart): Promise<number> {
  const tls = { key: m.key, cert: m.cert, ca: m.ca, crl: m.crl, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' as const };
  let server: Server;
  if (m.mode === 'pipe') {
    server = createTlsServer(tls, (socket) => {
      const up = connect(m.backendPort, '127.0.0.1');
      socket.pipe(up).pipe(socket);
      socket.on('error', () => up.destroy());
      up.on('error', () => socket.destroy());
    });
  } else {
    server = createHttpsServer({ ...tls, keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      req.on('end', () => {
        const b = req.method === 'POST' ? bodies.catalog : bodies.small;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': b.length });
        res.end(b);
      });
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

if (process.send) {
  process.once('message', (m: FloorStart) => {
    void start(m).then((port) => process.send?.({ op: 'listening', port }));
  });
  process.on('disconnect', () => process.exit(0));
}
