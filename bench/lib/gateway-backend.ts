// The scripted compiler of the gateway benchmark, run as its own process (forked by
// gateway-procs.ts) so its CPU is counted apart from the front door's and the load client's.
// It answers the requests of an agent run with canned bodies at once. One app, two listeners:
// plain HTTP behind the front doors that terminate TLS (nginx, ringmaster), where it checks the
// X-Client-* headers they must set; and HTTPS with client certificates for the direct anchor and
// HAProxy's passthrough, where it checks the verified peer itself.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';

export type BackendTls = { key: string; cert: string; ca: string; crl: string };

/** Messages from the parent: open the HTTPS listener, or report and reset the counters. */
export type BackendCommand = { op: 'tls'; tls: BackendTls } | { op: 'stats'; reset: boolean };
export type BackendStats = { requests: number; viaProxy: number; viaTls: number; mismatches: number; mismatchSamples: string[] };
export type BackendReply = { op: 'listening'; httpPort: number } | { op: 'tls'; httpsPort: number } | { op: 'stats'; stats: BackendStats };

/** A JSON body of about `bytes` bytes; `tag` lets the client check that the backend answered. */
function jsonBody(tag: string, bytes: number, extra: Record<string, unknown>): Buffer {
  const base = JSON.stringify({ ...extra, tag, padding: '' });
  return Buffer.from(JSON.stringify({ ...extra, tag, padding: 'x'.repeat(Math.max(0, bytes - base.length)) }));
}

export const backendTag = 'ringmaster-bench-backend';

const bodies = {
  node: jsonBody(backendTag, 1024, { name: 'agent', environment: 'production', parameters: { pp_role: 'web' }, classes: [] }),
  fileMetadata: jsonBody(backendTag, 1024, { path: '/etc/puppetlabs/code/environments/production/modules/m/files/f', owner: 0, group: 0, mode: 420, checksum: { type: 'sha256', value: '{sha256}00' } }),
  catalog: jsonBody(backendTag, 50 * 1024, { name: 'agent', version: 1, environment: 'production', resources: [] }),
  // puppetserver answers a report with the processors that ran.
  report: Buffer.from('[]'),
  notFound: Buffer.from(JSON.stringify({ message: 'Not Found', issue_kind: 'RUNTIME_ERROR', tag: backendTag })),
};

function pick(method: string, url: string): Buffer {
  if (method === 'POST' && url.startsWith('/puppet/v3/catalog/')) return bodies.catalog;
  if (method === 'GET' && url.startsWith('/puppet/v3/node/')) return bodies.node;
  if (method === 'GET' && url.startsWith('/puppet/v3/file_metadata/')) return bodies.fileMetadata;
  if (method === 'PUT' && url.startsWith('/puppet/v3/report/')) return bodies.report;
  return bodies.notFound;
}

const stats: BackendStats = { requests: 0, viaProxy: 0, viaTls: 0, mismatches: 0, mismatchSamples: [] };

function mismatch(what: string): void {
  stats.mismatches++;
  if (stats.mismatchSamples.length < 5 && !stats.mismatchSamples.includes(what)) stats.mismatchSamples.push(what);
}

/** The identity a TLS-terminating front door must pass on: a verified agent certificate. */
function checkProxyHeaders(headers: Record<string, string | string[] | undefined>): void {
  const verify = headers['x-client-verify'];
  const dn = headers['x-client-dn'];
  const cert = headers['x-client-cert'];
  if (verify !== 'SUCCESS') mismatch(`X-Client-Verify ${JSON.stringify(verify)}`);
  if (typeof dn !== 'string' || !dn.includes('.bench.test')) mismatch(`X-Client-DN ${JSON.stringify(dn)}`);
  if (typeof cert !== 'string' || !cert.startsWith('-----BEGIN%20CERTIFICATE-----%0A')) mismatch(`X-Client-Cert ${JSON.stringify(cert?.slice(0, 40))}`);
}

function handler(viaProxy: boolean) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    stats.requests++;
    if (viaProxy) {
      stats.viaProxy++;
      checkProxyHeaders(req.headers);
    } else {
      stats.viaTls++;
      const socket = req.socket as TLSSocket;
      if (!socket.authorized) mismatch(`TLS peer not verified: ${String(socket.authorizationError)}`);
    }
    // The body (facts of a catalog POST) is read and dropped, as a compiler would consume it.
    req.resume();
    req.on('end', () => {
      const body = pick(req.method ?? 'GET', req.url ?? '/');
      res.writeHead(body === bodies.notFound ? 404 : 200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  };
}

/**
 * The lean backend (`lean` as the script's argument): the same answers and checks on a bare socket
 * with a minimal HTTP/1.1 reading (Content-Length bodies, requests one after another), so that the
 * backend takes less of the CPU it shares with the load client. It serves only what the benchmark's
 * front doors send and is no general server.
 */
function leanConnection(viaProxy: boolean) {
  return (socket: Socket): void => {
    let buf: Buffer | undefined;
    let checkedPeer = false;
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('data', (data: Buffer) => {
      buf = buf ? Buffer.concat([buf, data]) : data;
      for (;;) {
        const end: number = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        const [method = '', url = ''] = lines[0]!.split(' ');
        const headers: Record<string, string> = {};
        for (let i = 1; i < lines.length; i++) {
          const line = lines[i]!;
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (headers['transfer-encoding'] !== undefined) {
          mismatch('a chunked request body (the lean backend reads Content-Length bodies only)');
          socket.destroy();
          return;
        }
        if (buf.length < end + 4 + length) return;
        buf = buf.length === end + 4 + length ? undefined : buf.subarray(end + 4 + length);
        stats.requests++;
        if (viaProxy) {
          stats.viaProxy++;
          checkProxyHeaders(headers);
        } else {
          stats.viaTls++;
          if (!checkedPeer) {
            checkedPeer = true;
            const tls = socket as TLSSocket;
            if (!tls.authorized) mismatch(`TLS peer not verified: ${String(tls.authorizationError)}`);
          }
        }
        const body = pick(method, url);
        // Head and body in one write, as node:http sends them: two small writes would leave the
        // second to Nagle's algorithm on whatever relays it.
        socket.cork();
        socket.write(`HTTP/1.1 ${body === bodies.notFound ? '404 Not Found' : '200 OK'}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`, 'latin1');
        socket.write(body);
        socket.uncork();
        if (buf === undefined) return;
      }
    });
  };
}

const lean = process.argv[2] === 'lean';

// Idle upstream connections are kept longer than any front door keeps them, so no front door
// races a close by the backend (which would show as errors that are nobody's fault).
const serverOptions = { keepAliveTimeout: 120_000, headersTimeout: 60_000, requestTimeout: 0, maxRequestsPerSocket: 0 };

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function send(msg: BackendReply): void {
  process.send?.(msg);
}

if (process.send) {
  const http = lean ? createNetServer(leanConnection(true)) : createHttpServer(serverOptions, handler(true));
  send({ op: 'listening', httpPort: await listen(http) });
  process.on('message', (m: BackendCommand) => {
    if (m.op === 'tls') {
      const tlsOptions = { key: m.tls.key, cert: m.tls.cert, ca: m.tls.ca, crl: m.tls.crl, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', noDelay: true } as const;
      const https = lean ? createTlsServer(tlsOptions, leanConnection(false)) : createHttpsServer({ ...serverOptions, ...tlsOptions }, handler(false));
      void listen(https).then((httpsPort) => send({ op: 'tls', httpsPort }));
    } else if (m.op === 'stats') {
      send({ op: 'stats', stats: { ...stats, mismatchSamples: [...stats.mismatchSamples] } });
      if (m.reset) Object.assign(stats, { requests: 0, viaProxy: 0, viaTls: 0, mismatches: 0, mismatchSamples: [] });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
