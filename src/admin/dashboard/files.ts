import { readFileSync, readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';

// The web dashboard's files, served by the admin listener from this directory's static/ (plain
// JavaScript modules and CSS: no build step, no CDN, nothing fetched from elsewhere, as production
// DMZs have no network). GET / and /ui/ give the page; /ui/<file> its modules. They are read once
// at start, so a request can name only a file that was there; the data comes from /admin/v1 with
// the operator's credentials. The Content-Security-Policy allows this origin only.

export const staticDir = join(import.meta.dirname, 'static');

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

type File = { body: Buffer; type: string };

/** Loads the files (recursively) under `dir`, keyed by their path below it with "/" separators. */
export function loadFiles(dir = staticDir): Map<string, File> {
  const files = new Map<string, File>();
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else {
        const type = types[extname(entry.name)];
        if (type) files.set(rel, { body: readFileSync(join(dir, rel)), type });
      }
    }
  };
  walk('');
  return files;
}

/** A request handler for the admin server: true when the path was the dashboard's and it answered. */
export function createDashboard(files: Map<string, File> = loadFiles()): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path !== '/' && path !== '/ui' && !path.startsWith('/ui/')) return false;
    const rel = path === '/' || path === '/ui' || path === '/ui/' ? 'index.html' : path.slice('/ui/'.length);
    const file = files.get(rel);
    const headers: Record<string, string | number> = {
      'content-security-policy': contentSecurityPolicy,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return true;
    }
    if (!file) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return true;
    }
    // The page itself is never cached (a new ringmaster may ship new modules); modules revalidate.
    res.writeHead(200, { ...headers, 'content-type': file.type, 'content-length': file.body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}
