// Starts a real Puppet Server (Debian's 7.9.5 jar) as a CA-less compiler from the directory that
// `ringmaster compiler config` wrote, and speaks to it the way ringmaster does: plain HTTP or
// mutual TLS, identity in X-Client-* headers. Several can run side by side, each in its own tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { makeTempDir, pollUntil, StopPolling } from './puppet.ts';
import { fastStartFlags, javaArgs, listenOf, readyLine, writeCompilerTree } from '../../src/compiler/local-server.ts';

export type CompilerOptions = {
  /** The --out directory of `ringmaster compiler config`, generated with --install-dir and --ssldir pointing into it. */
  configDir: string;
  /** The compiler's certname (NAME given to `compiler config`); used in messages. */
  name: string;
  /** site.pp of the production environment; default: an empty manifest. */
  manifest?: string;
  /** When set, a `staging` environment with this site.pp. */
  stagingManifest?: string;
  heap?: string;
  /** Extra JVM options, after the defaults. */
  jvmArgs?: string[];
  startTimeoutMs?: number;
};

export type Compiler = {
  name: string;
  /** http://host:port or https://host:port, as ringmaster's pool member would name it. */
  url: string;
  host: string;
  port: number;
  tls: boolean;
  root: string;
  /** stdout and stderr of the JVM so far, for failure messages. */
  log(): string;
  /** SIGTERM, then SIGKILL after 15 s. */
  stop(): Promise<void>;
  /** SIGKILL: a compiler lost without warning. */
  kill(): Promise<void>;
  /** Stops it and removes its private tree (not configDir). */
  cleanup(): Promise<void>;
};


export { listenOf };

async function writeTree(root: string, o: CompilerOptions): Promise<void> {
  await writeCompilerTree(root, o.configDir, join(root, 'code'));
  const envs: [string, string][] = [['production', o.manifest ?? ''], ...(o.stagingManifest === undefined ? [] : [['staging', o.stagingManifest] as [string, string]])];
  for (const [env, manifest] of envs) {
    const dir = join(root, 'code', 'environments', env, 'manifests');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'site.pp'), manifest);
  }
}

/** Starts the compiler and resolves once Puppet Server says it is ready (about 35 s; in parallel, a little more). */
export async function startCompiler(o: CompilerOptions): Promise<Compiler> {
  const root = await makeTempDir(`compiler-${o.name}`);
  const { host, port, tls } = await listenOf(o.configDir);
  await writeTree(root, o);
  const heap = o.heap ?? '512m';
  // Start-up speed over peak speed: a test compiles a few catalogs only.
  const child: ChildProcess = spawn(
    '/usr/bin/java',
    javaArgs(root, heap, [...fastStartFlags, ...(o.jvmArgs ?? [])]),
    { cwd: '/usr/share/puppetserver', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: root } },
  );
  let output = '';
  let started = false;
  const keep = (d: Buffer): void => {
    output = (output + d.toString('utf8')).slice(-64 * 1024);
    if (!started && output.includes(readyLine)) started = true;
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  const exitedP = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = `exit ${code ?? signal}`;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exitedP;
    clearTimeout(timer);
  };
  const kill = async (): Promise<void> => {
    if (exited !== undefined) return;
    child.kill('SIGKILL');
    await exitedP;
  };
  const cleanup = async (): Promise<void> => {
    await stop();
    await rm(root, { recursive: true, force: true });
  };
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const compiler: Compiler = { name: o.name, url, host, port, tls, root, log: () => output, stop, kill, cleanup };
  try {
    // The log line, not /status/v1/simple: in TLS mode only ringmaster's certificate may ask.
    await pollUntil(
      `compiler ${o.name} to log "${readyLine}"`,
      () => {
        if (exited !== undefined) throw new StopPolling(`compiler ${o.name} stopped (${exited})`);
        return started ? true : undefined;
      },
      { timeoutMs: o.startTimeoutMs ?? 180_000, intervalMs: 250 },
    );
    if (!tls) {
      const status = await compilerRequest(compiler, { path: '/status/v1/simple' });
      if (status.status !== 200 || status.body.trim() !== 'running') throw new Error(`/status/v1/simple answered ${status.status} ${status.body}`);
    }
  } catch (err) {
    const tail = output.split('\n').slice(-40).join('\n');
    await cleanup();
    throw new Error(`${(err as Error).message}\n--- compiler ${o.name} output (tail)\n${tail}`);
  }
  return compiler;
}

/** The headers ringmaster sets for a verified agent; X-Client-Cert URI-encoded with %20 and %0A. */
export function clientHeaders(certname: string, certPem?: string): Record<string, string> {
  return {
    'X-Client-Verify': 'SUCCESS',
    'X-Client-DN': `CN=${certname}`,
    ...(certPem === undefined ? {} : { 'X-Client-Cert': encodeURIComponent(certPem) }),
  };
}

/** Form body of a catalog request, as an agent sends it. */
export function catalogForm(certname: string, facts: Record<string, unknown> = {}): string {
  const body = JSON.stringify({ name: certname, values: { clientcert: certname, ...facts } });
  return new URLSearchParams({ facts_format: 'application/json', facts: body, transaction_uuid: '00000000-0000-4000-8000-000000000000' }).toString();
}

export type CompilerRequest = {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** TLS client identity and the CA that signed the compiler's certificate (https:// compilers). */
  tls?: { ca: string; cert?: string; key?: string };
  timeoutMs?: number;
};

export type CompilerResponse = { status: number; body: string; headers: IncomingMessage['headers'] };

/** One request on a fresh connection, straight to the compiler; rejects on TLS or socket errors. */
export function compilerRequest(c: Pick<Compiler, 'host' | 'port' | 'tls'>, r: CompilerRequest): Promise<CompilerResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...(r.body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(r.body)) }), ...r.headers };
    const common = { host: c.host, port: c.port, path: r.path, method: r.method ?? 'GET', headers, agent: false as const, timeout: r.timeoutMs ?? 60_000 };
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    };
    // The compiler's certificate is checked against the URL's host, as ringmaster checks it.
    const req = c.tls
      ? httpsRequest({ ...common, ca: r.tls?.ca, cert: r.tls?.cert, key: r.tls?.key, rejectUnauthorized: true }, onResponse)
      : httpRequest(common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`${r.method ?? 'GET'} ${r.path} timed out`)));
    req.on('error', reject);
    req.end(r.body);
  });
}
