// The scripted compiler of the gateway benchmark, run as its own process (forked by
// gateway-procs.ts) so its CPU is counted apart from the front door's and the load client's.
// It answers the requests of an agent run with canned bodies at once. One app, two listeners:
// plain HTTP behind the front doors that terminate TLS (nginx, ringmaster), where it checks the
// X-Client-* headers they must set; and HTTPS with client certificates for the direct anchor and
// HAProxy's passthrough, where it checks the verified peer itself.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import type { TLSSocket } from 'node:tls';

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
function checkProxyHeaders(req: IncomingMessage): void {
  const verify = req.headers['x-client-verify'];
  const dn = req.headers['x-client-dn'];
  const cert = req.headers['x-client-cert'];
  if (verify !== 'SUCCESS') mismatch(`X-Client-Verify ${JSON.stringify(verify)}`);
  if (typeof dn !== 'string' || !dn.includes('.bench.test')) mismatch(`X-Client-DN ${JSON.stringify(dn)}`);
  if (typeof cert !== 'string' || !cert.startsWith('-----BEGIN%20CERTIFICATE-----%0A')) mismatch(`X-Client-Cert ${JSON.stringify(cert?.slice(0, 40))}`);
}

function handler(viaProxy: boolean) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    stats.requests++;
    if (viaProxy) {
      stats.viaProxy++;
      checkProxyHeaders(req);
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
  const http = createHttpServer(serverOptions, handler(true));
  send({ op: 'listening', httpPort: await listen(http) });
  process.on('message', (m: BackendCommand) => {
    if (m.op === 'tls') {
      const https = createHttpsServer(
        { ...serverOptions, key: m.tls.key, cert: m.tls.cert, ca: m.tls.ca, crl: m.tls.crl, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
        handler(false),
      );
      void listen(https).then((httpsPort) => send({ op: 'tls', httpsPort }));
    } else if (m.op === 'stats') {
      send({ op: 'stats', stats: { ...stats, mismatchSamples: [...stats.mismatchSamples] } });
      if (m.reset) Object.assign(stats, { requests: 0, viaProxy: 0, viaTls: 0, mismatches: 0, mismatchSamples: [] });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
