// The third-party front doors of the gateway benchmark: Debian's nginx terminating TLS and
// setting the X-Client-* headers the way Puppet's nginx guides do, and Debian's HAProxy passing
// TCP through. Each runs in the foreground on a private config, pid file and loopback port, is
// measured, and is stopped; the packaged services are never used.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, waitForPort } from './gateway-procs.ts';

export const nginxBin = '/usr/sbin/nginx';
export const haproxyBin = '/usr/sbin/haproxy';

export type Door = { name: string; version: string; port: number; pid: number; logs(): string; stop(): Promise<void> };

/** TLS material as PEM files: the server certificate followed by its CA, as ringmaster serves it. */
export type TlsFiles = { serverChain: string; serverKey: string; ca: string; crl: string };

function run(cmd: string, args: readonly string[]): { ok: boolean; output: string } {
  try {
    const output = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return { ok: true, output };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

export function packageVersion(...pkgs: string[]): string {
  for (const pkg of pkgs) {
    const r = run('dpkg-query', ['-W', '-f=${Version}', pkg]);
    if (r.ok && r.output !== '') return r.output;
  }
  return 'unknown';
}

/**
 * Installs nginx and HAProxy from Debian when their binaries are missing, then makes sure the
 * packaged services are not running (where systemd runs them); returns what could not be had.
 */
export function ensurePackages(log: (line: string) => void): string[] {
  const missing = (): string[] => [nginxBin, haproxyBin].filter((b) => !existsSync(b));
  if (missing().length === 0) return [];
  log(`installing nginx and haproxy (missing: ${missing().join(', ')})`);
  let r = run('apt-get', ['install', '-y', 'nginx-light', 'haproxy']);
  if (!r.ok) {
    run('apt-get', ['update']);
    r = run('apt-get', ['install', '-y', 'nginx-light', 'haproxy']);
    if (!r.ok) r = run('apt-get', ['install', '-y', 'nginx', 'haproxy']);
  }
  if (!r.ok) log(`apt-get install failed: ${r.output.trim().split('\n').slice(-3).join(' / ')}`);
  // Only systemd starts them (policy-rc.d often forbids it in containers); our own instances use
  // other ports, but an idle packaged nginx would still share the cores.
  run('systemctl', ['disable', '--now', 'nginx.service', 'haproxy.service']);
  return missing();
}

export function startForeground(name: string, version: string, bin: string, args: readonly string[], port: number): Promise<Door> {
  const child: ChildProcess = spawn(bin, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: string): void => {
    output = (output + d).slice(-16_384);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const door: Door = { name, version, port, pid: child.pid ?? -1, logs: () => output, stop };
  return waitForPort(port, name).then(
    () => door,
    async (err: unknown) => {
      await stop();
      throw new Error(`${(err as Error).message}\n${output.trim()}`);
    },
  );
}

/**
 * nginx with one worker (one core, like ringmaster's one process), verifying client certificates
 * against ringmaster's CA and CRL without requiring one, and proxying over kept-alive upstream
 * connections. Settings beyond the Puppet guides' are the ones a benchmark needs to be fair:
 * TLS 1.3 on (nginx 1.22 leaves it off by default), no access log (this measures proxying), no
 * per-connection request cap (nginx closes a client connection after 1,000 requests, which
 * would add handshakes to a keep-alive run), and buffers that hold a catalog and the facts in
 * memory instead of temporary files.
 */
export type NginxOptions = {
  workerConnections?: number;
  keepaliveTimeout?: string;
  /** An upstream balancing directive such as `least_conn` (default: nginx's round-robin). */
  balance?: string;
};

/** `upstream`: the backend's HTTP port, or `server` lines (several compilers, with their options). */
export async function startNginx(dir: string, tls: Omit<TlsFiles, 'crl'> & { crl?: string }, upstream: number | string[], o: NginxOptions = {}): Promise<Door> {
  const servers = typeof upstream === 'number' ? [`127.0.0.1:${upstream}`] : upstream;
  await mkdir(join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const asRoot = process.getuid?.() === 0 ? 'user root;\n' : '';
  await writeFile(
    conf,
    `${asRoot}daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections ${o.workerConnections ?? 4096}; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'temp', 'body')};
  proxy_temp_path ${join(dir, 'temp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'temp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'temp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'temp', 'scgi')};
  keepalive_timeout ${o.keepaliveTimeout ?? '65s'};
  keepalive_requests 10000000;
  upstream compilers {
${o.balance ? `    ${o.balance};\n` : ''}${servers.map((line) => `    server ${line};`).join('\n')}
    keepalive 64;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${tls.serverChain};
    ssl_certificate_key ${tls.serverKey};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate ${tls.ca};
${tls.crl ? `    ssl_crl ${tls.crl};\n` : ''}    ssl_verify_client optional;
    client_max_body_size 256m;
    client_body_buffer_size 64k;
    location / {
      proxy_pass http://compilers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Client-Verify $ssl_client_verify;
      proxy_set_header X-Client-DN $ssl_client_s_dn;
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_buffer_size 16k;
      proxy_buffers 8 16k;
      proxy_read_timeout 600s;
    }
  }
}
`,
  );
  return startForeground('nginx', `nginx ${packageVersion('nginx-light', 'nginx')}`, nginxBin, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], port);
}

export type HaproxyOptions = {
  /** `balance` algorithm (default HAProxy's roundrobin). */
  balance?: string;
  /** A runtime API socket (admin level), for draining servers. */
  adminSocket?: string;
  /** Extra options on every `server` line, e.g. health checks. */
  serverOptions?: string;
};

/**
 * HAProxy in TCP mode, one thread: the agents' TLS goes through untouched to the TLS backends.
 * `backends`: one port, or named ports (several compilers).
 */
export async function startHaproxy(dir: string, backends: number | { name: string; port: number }[], o: HaproxyOptions = {}): Promise<Door> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'haproxy.cfg');
  const servers = typeof backends === 'number' ? [{ name: 'b1', port: backends }] : backends;
  await writeFile(
    conf,
    `global
  nbthread 1
  maxconn 8000
${o.adminSocket ? `  stats socket ${o.adminSocket} mode 600 level admin\n` : ''}defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend agents
  bind 127.0.0.1:${port}
  default_backend compilers
backend compilers
${o.balance ? `  balance ${o.balance}\n` : ''}${servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port}${o.serverOptions ? ` ${o.serverOptions}` : ''}`).join('\n')}
`,
  );
  return startForeground('haproxy', `haproxy ${packageVersion('haproxy')}`, haproxyBin, ['-db', '-f', conf], port);
}
