// Runs `bin/ringmaster serve` and the `ringmaster` CLI as separate processes, the way operators do,
// and speaks HTTPS to it with or without a client certificate.
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.ts';
import { makeTempDir, pollUntil, StopPolling, runProcess, type RunOptions, type RunResult } from './puppet.ts';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const ringmasterBin = join(repoRoot, 'bin', 'ringmaster');

export type CaSettings = NonNullable<ConfigInput['ca']>;
export type AutosignSettings = NonNullable<CaSettings['autosign']>;

export type RingmasterOptions = {
  /** Extra environment for `ringmaster serve` (e.g. RINGMASTER_MALLOC). */
  env?: Record<string, string>;
  /** Starts `serve` under `taskset -c <cpus>` (e.g. '0': one CPU). */
  cpus?: string;
  /** Merged over the test defaults (2048-bit keys, no autosign, 127.0.0.1 and a kernel-picked port). */
  ca?: CaSettings;
  autosign?: AutosignSettings;
  server?: ConfigInput['server'];
  listeners?: ConfigInput['listeners'];
  pools?: ConfigInput['pools'];
  routes?: ConfigInput['routes'];
  defaultRoutes?: ConfigInput['defaultRoutes'];
  shutdown?: ConfigInput['shutdown'];
  /** Merged over the test default: the admin API on 127.0.0.1 and a kernel-picked port. */
  admin?: ConfigInput['admin'];
  /** The DNS responder section, as written. */
  dns?: ConfigInput['dns'];
  startTimeoutMs?: number;
  /** Runs after the config is written and before serve starts, e.g. `ringmaster ca import`. */
  prepare?: (p: { configFile: string; stateDir: string }) => Promise<void>;
};

export function testConfig(stateDir: string, o: RingmasterOptions = {}): ConfigInput {
  return {
    stateDir,
    server: o.server ?? { certname: 'ringmaster.test', dnsAltNames: ['localhost', 'puppet'] },
    listeners: o.listeners ?? [{ name: 'agents', address: '127.0.0.1', port: 0 }],
    ca: {
      keyLength: 2048,
      ...o.ca,
      autosign: { all: false, allow: [], tokens: true, ...o.ca?.autosign, ...o.autosign },
    },
    ...(o.pools ? { pools: o.pools } : {}),
    ...(o.routes ? { routes: o.routes } : {}),
    ...(o.defaultRoutes !== undefined ? { defaultRoutes: o.defaultRoutes } : {}),
    ...(o.shutdown ? { shutdown: o.shutdown } : {}),
    ...(o.dns ? { dns: o.dns } : {}),
    // Never the fixed default port: tests run side by side and next to a real ringmaster.
    admin: { address: '127.0.0.1', port: 0, ...o.admin },
    // The port is read from the info-level "listening" line, so the level stays at info.
    log: { level: 'info' },
  };
}

/** `ringmaster <args> --config <file>`; every CLI command takes the config file. */
export function ringmasterCli(args: readonly string[], configFile: string, opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(ringmasterBin, [...args, '--config', configFile], { timeoutMs: 60_000, cwd: repoRoot, ...opts });
}

export type Ringmaster = {
  root: string;
  stateDir: string;
  configFile: string;
  /** The port of the current serve process; it changes after a restart. */
  readonly port: number;
  /** The admin API port of the current serve process, once it logged it (before "listening"). */
  readonly adminPort: number | undefined;
  /** The DNS responder port of the current serve process, once it logged it (after "listening"). */
  readonly dnsPort: number | undefined;
  readonly pid: number | undefined;
  paths: { caDir: string; caCert: string; caCrl: string; hostCrl: string; sslDir: string };
  cli(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Output of every serve process so far (stdout JSON lines and stderr), for failure messages. */
  logs(): string;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
  /** SIGKILL, the crash the CA must survive. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts serve again with the same config; resolves when it listens. */
  restart(): Promise<void>;
  /** Rewrites the config file with these options (the state dir stays), e.g. before `ringmaster reload`. */
  rewriteConfig(o: RingmasterOptions): Promise<void>;
  /** Stops serve and removes the whole temporary tree. */
  cleanup(): Promise<void>;
};

type Running = { child: ChildProcess; exited: Promise<void>; exit?: string };

/** `ringmaster ca import DIR` into a fresh state directory, then `serve` on the imported CA. */
export async function startRingmasterFromImport(cadir: string, o: RingmasterOptions = {}): Promise<Ringmaster> {
  return startRingmaster({
    ...o,
    prepare: async ({ configFile }) => {
      const r = await ringmasterCli(['ca', 'import', cadir], configFile);
      if (r.code !== 0) throw new Error(`ringmaster ca import ${cadir} exited ${r.code}: ${r.stderr}`);
    },
  });
}

/** Writes a config into a fresh temp dir and starts `ringmaster serve` on it. */
export async function startRingmaster(o: RingmasterOptions = {}): Promise<Ringmaster> {
  const root = await makeTempDir('ringmaster');
  const stateDir = join(root, 'var');
  await mkdir(stateDir, { recursive: true });
  const configFile = join(root, 'ringmaster.yaml');
  // JSON is YAML, and writing it needs no YAML library here.
  await writeFile(configFile, `${JSON.stringify(testConfig(stateDir, o), null, 2)}\n`);
  let output = '';
  let port = 0;
  let adminPort: number | undefined;
  let dnsPort: number | undefined;
  let current: Running | undefined;

  const keep = (text: string): void => {
    output = (output + text).slice(-256 * 1024);
  };

  const spawnServe = async (): Promise<void> => {
    const [cmd, args] = o.cpus === undefined ? [ringmasterBin, ['serve', '--config', configFile]] : ['taskset', ['-c', o.cpus, ringmasterBin, 'serve', '--config', configFile]];
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
    const running: Running = { child, exited: Promise.resolve() };
    running.exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        running.exit = `exit ${code ?? signal}`;
        res();
      });
    });
    current = running;
    let listening: number | undefined;
    let buffered = '';
    adminPort = undefined;
    dnsPort = undefined;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      keep(d);
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const lineText = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const rec = JSON.parse(lineText) as { msg?: unknown; port?: unknown };
          if (rec.msg === 'listening' && typeof rec.port === 'number' && listening === undefined) listening = rec.port;
          if (rec.msg === 'admin API listening' && typeof rec.port === 'number') adminPort = rec.port;
          if (rec.msg === 'DNS responder listening' && typeof rec.port === 'number') dnsPort = rec.port;
        } catch {
          // Not a JSON log line; kept in the output for diagnosis.
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', keep);
    try {
      port = await pollUntil(
        'ringmaster serve to log "listening"',
        () => {
          if (running.exit !== undefined) throw new StopPolling(`ringmaster serve stopped (${running.exit})`);
          return listening;
        },
        { timeoutMs: o.startTimeoutMs ?? 60_000, intervalMs: 20 },
      );
    } catch (err) {
      child.kill('SIGKILL');
      await running.exited;
      throw new Error(`${(err as Error).message}\n--- ringmaster output (tail)\n${output.slice(-8000)}`);
    }
  };

  const stop = async (): Promise<void> => {
    const r = current;
    if (!r || r.exit !== undefined) return;
    r.child.kill('SIGTERM');
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
    await r.exited;
    clearTimeout(timer);
  };

  try {
    await o.prepare?.({ configFile, stateDir });
    await spawnServe();
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    root,
    stateDir,
    configFile,
    get port() {
      return port;
    },
    get adminPort() {
      return adminPort;
    },
    get dnsPort() {
      return dnsPort;
    },
    get pid() {
      return current?.child.pid;
    },
    paths: {
      caDir: join(stateDir, 'ca'),
      caCert: join(stateDir, 'ssl', 'certs', 'ca.pem'),
      caCrl: join(stateDir, 'ca', 'ca_crl.pem'),
      hostCrl: join(stateDir, 'ssl', 'crl.pem'),
      sslDir: join(stateDir, 'ssl'),
    },
    cli: (args, opts) => ringmasterCli(args, configFile, opts),
    logs: () => output,
    stop,
    kill: async () => {
      const r = current;
      if (!r || r.exit !== undefined) return;
      r.child.kill('SIGKILL');
      await r.exited;
    },
    restart: spawnServe,
    rewriteConfig: async (next) => {
      await writeFile(configFile, `${JSON.stringify(testConfig(stateDir, next), null, 2)}\n`);
    },
    cleanup: async () => {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export type HttpsResult = { status: number; body: string; headers: Record<string, string | string[] | undefined> };

export type HttpsOptions = {
  port: number;
  path: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /** Trust anchors (PEM). Without them the peer is not verified. */
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  timeoutMs?: number;
};

/** One HTTPS request on a fresh connection; rejects on TLS or socket errors. */
export function httpsRequest(o: HttpsOptions): Promise<HttpsResult> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: o.port,
        path: o.path,
        method: o.method ?? 'GET',
        // The Host header names the server as the agent would (Jetty refuses a Host that differs
        // from the SNI name), while the connection goes to the loopback address.
        headers: { Host: `${o.servername ?? 'localhost'}:${o.port}`, ...o.headers },
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        servername: o.servername ?? 'localhost',
        rejectUnauthorized: o.ca !== undefined,
        agent: false,
        timeout: o.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${o.method ?? 'GET'} ${o.path} timed out`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

type StatusEntry = { name: string; state: string };

/** `ringmaster ca list [--all] --json`, parsed; throws with the output when the command fails. */
export async function listCerts(rm: Pick<Ringmaster, 'cli'>, all = false): Promise<StatusEntry[]> {
  const r = await rm.cli(['ca', 'list', ...(all ? ['--all'] : []), '--json']);
  if (r.code !== 0) throw new Error(`ringmaster ca list failed (${r.code}): ${r.stdout}${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`ringmaster ca list --json: expected an array, got ${r.stdout}`);
  return parsed as StatusEntry[];
}

/** certname → serial of every certificate in a CA's signed/ directory (puppetserver layout). */
export async function signedSerials(signedDir: string): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const f of await readdir(signedDir)) {
    if (!f.endsWith('.pem')) continue;
    const cert = new X509Certificate(await readFile(join(signedDir, f)));
    out.set(f.slice(0, -4), BigInt(`0x${cert.serialNumber}`));
  }
  return out;
}

/** The serial file: the next serial, in hex (upper-case padded from the server, lower-case from the CLI). */
export async function nextSerial(caDir: string): Promise<bigint> {
  return BigInt(`0x${(await readFile(join(caDir, 'serial'), 'utf8')).trim()}`);
}
