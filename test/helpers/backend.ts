// A scripted HTTP backend on a real loopback socket, standing in for a compiler where a test needs
// conditions a real puppetserver cannot be made to produce on demand (a hang, a reset, a broken
// body). It records what reached it, headers included.
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Seen = { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer };
export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

export type Backend = {
  name: string;
  port: number;
  url: string;
  seen: Seen[];
  /** Replaces how requests are answered; the default answers 200 with the backend's name. */
  handle(h: Handler | undefined): void;
  /** Handlers that stream take the raw request before its body is read. */
  handleRaw(h: ((req: IncomingMessage, res: ServerResponse) => void) | undefined): void;
  close(): Promise<void>;
};

export async function startBackend(name: string, port = 0): Promise<Backend> {
  let handler: Handler | undefined;
  let raw: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    if (raw) {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0) });
      raw(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) {
        void Promise.resolve(handler(req, res, body)).catch(() => res.destroy());
        return;
      }
      if (req.url?.startsWith('/status/v1/simple')) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('running');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name }).end(JSON.stringify({ backend: name, url: req.url }));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    name,
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    seen,
    handle: (h) => {
      handler = h;
    },
    handleRaw: (h) => {
      raw = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (bound, read, released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
