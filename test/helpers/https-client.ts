import { request, type Agent } from 'node:https';

// A minimal HTTPS client for tests: optional client certificate, the CA to trust, and a fresh
// connection per request unless an agent is passed (to test kept-alive connections).

export type TlsIdentity = { cert: string; key: string };
/** `rawHeaders`: names and values as they came, repeats kept (node joins or drops some in `headers`). */
export type Reply = { status: number; headers: Record<string, string | string[] | undefined>; rawHeaders: string[]; body: string };

export async function call(
  port: number,
  method: string,
  path: string,
  options: { ca: string; identity?: TlsIdentity; body?: string | Buffer; headers?: Record<string, string>; agent?: Agent; servername?: string } ,
): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port, method, path, ca: options.ca, servername: options.servername ?? 'localhost',
        ...(options.identity ? { cert: options.identity.cert, key: options.identity.key } : {}),
        headers: { ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}), ...options.headers },
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
