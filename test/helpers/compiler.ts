// Starts a real Puppet Server (Debian's 7.9.5 jar) as a CA-less compiler from the directory that
// `ringmaster compiler config` wrote, and speaks to it the way ringmaster does: plain HTTP or
// mutual TLS, identity in X-Client-* headers. Several can run side by side, each in its own tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { makeTempDir, pollUntil, StopPolling } from './puppet.ts';
import { jar, logback, packagedConf, packagedServices } from './puppetserver.ts';

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

const ready = 'Puppet Server has successfully started and is now ready to handle requests';

/** Where the generated webserver.conf makes Jetty listen. */
export async function listenOf(configDir: string): Promise<{ host: string; port: number; tls: boolean }> {
  const text = await readFile(join(configDir, 'conf.d', 'webserver.conf'), 'utf8');
  const field = (key: string): string | undefined => new RegExp(`^\\s*${key}: "?([^"\\n]+)"?$`, 'm').exec(text)?.[1];
  const tls = field('ssl-port') !== undefined;
  const host = field(tls ? 'ssl-host' : 'host');
  const port = Number(field(tls ? 'ssl-port' : 'port'));
  if (host === undefined || !Number.isInteger(port)) throw new Error(`no listen address in ${configDir}/conf.d/webserver.conf:\n${text}`);
  return { host, port, tls };
}

async function writeTree(root: string, o: CompilerOptions): Promise<void> {
  for (const d of ['conf.d', 'services.d', 'confdir', 'var', 'run', 'log', 'jruby-gems']) await mkdir(join(root, d), { recursive: true });
  // The packaged rest of conf.d (metrics, web routes, ca.conf), then the generated files over it.
  for (const f of await readdir(packagedConf)) await copyFile(join(packagedConf, f), join(root, 'conf.d', f));
  await copyFile(join(packagedServices, 'bootstrap.cfg'), join(root, 'services.d', 'bootstrap.cfg'));
  await copyFile(join(o.configDir, 'conf.d', 'webserver.conf'), join(root, 'conf.d', 'webserver.conf'));
  await copyFile(join(o.configDir, 'conf.d', 'auth.conf'), join(root, 'conf.d', 'auth.conf'));
  await copyFile(join(o.configDir, 'services.d', 'ca.cfg'), join(root, 'services.d', 'ca.cfg'));
  await copyFile(join(o.configDir, 'puppet.conf'), join(root, 'confdir', 'puppet.conf'));
  await writeFile(join(root, 'logback.xml'), logback);
  await writeFile(join(root, 'conf.d', 'global.conf'), `global: { logging-config: ${JSON.stringify(join(root, 'logback.xml'))} }\n`);
  // One JRuby instance: enough for a test, and each extra one adds start time and memory.
  await writeFile(
    join(root, 'conf.d', 'puppetserver.conf'),
    `jruby-puppet: {
  ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
  gem-home: ${JSON.stringify(join(root, 'jruby-gems'))}
  gem-path: [\${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
  server-conf-dir: ${JSON.stringify(join(root, 'confdir'))}
  server-code-dir: ${JSON.stringify(join(root, 'code'))}
  server-var-dir: ${JSON.stringify(join(root, 'var'))}
  server-run-dir: ${JSON.stringify(join(root, 'run'))}
  server-log-dir: ${JSON.stringify(join(root, 'log'))}
  max-active-instances: 1
}
http-client: {}
profiler: {}
`,
  );
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
  const child: ChildProcess = spawn(
    '/usr/bin/java',
    [
      `-Xms${heap}`,
      `-Xmx${heap}`,
      // Start-up speed over peak speed: the C1 compiler alone and one GC thread halve the time to
      // "ready" on two cores (about 20 s instead of 45 s), and a test compiles a few catalogs only.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      ...(o.jvmArgs ?? []),
      '-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger',
      '-Djruby.lib=/usr/share/jruby/lib',
      `-Dlogback.configurationFile=${join(root, 'logback.xml')}`,
      '-jar',
      jar,
      '--config',
      join(root, 'conf.d'),
      '--bootstrap-config',
      join(root, 'services.d'),
    ],
    { cwd: '/usr/share/puppetserver', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: root } },
  );
  let output = '';
  let started = false;
  const keep = (d: Buffer): void => {
    output = (output + d.toString('utf8')).slice(-64 * 1024);
    if (!started && output.includes(ready)) started = true;
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
      `compiler ${o.name} to log "${ready}"`,
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
