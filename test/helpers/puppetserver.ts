// Starts a real Puppet Server (Debian's 7.9.5 jar) as a certificate authority in a private config
// tree, for the benchmark and for tests that need files only Puppet's own tools produce.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { packagedServices, javaArgs, writeBaseTree } from '../../src/compiler/local-server.ts';
import { makeTempDir, pollUntil, StopPolling, puppetserverCaCli, writeCaCliConf, type RunResult } from './puppet.ts';

/** A TCP port the kernel just handed out on loopback; released again before returning. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** GET over TLS without verifying the peer: only used to ask a local server for its status. */
export function insecureGet(port: number, path: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', rejectUnauthorized: false, timeout: timeoutMs, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export type PuppetserverOptions = {
  certname?: string;
  autosign?: boolean;
  /** Key length for the CA and server keys; unset keeps Puppet's default of 4096. */
  keylength?: number;
  heap?: string;
  startTimeoutMs?: number;
};

export type Puppetserver = {
  port: number;
  root: string;
  cadir: string;
  ssldir: string;
  certname: string;
  /** stdout and stderr of the JVM so far, for failure messages. */
  log(): string;
  /** SIGTERM, then SIGKILL after 15 s; the directories stay, e.g. to import the CA. */
  stop(): Promise<void>;
  /** Stops it and removes the whole private tree. */
  cleanup(): Promise<void>;
};

async function writeConfigTree(root: string, port: number, o: Required<Pick<PuppetserverOptions, 'certname'>> & PuppetserverOptions): Promise<void> {
  const confd = join(root, 'conf.d');
  const servicesd = join(root, 'services.d');
  await writeBaseTree(root, join(root, 'code'));
  await mkdir(join(root, 'code'), { recursive: true });
  for (const f of await readdir(packagedServices)) await copyFile(join(packagedServices, f), join(servicesd, f));
  await writeFile(
    join(confd, 'webserver.conf'),
    `webserver: {\n  client-auth: want\n  ssl-host: 127.0.0.1\n  ssl-port: ${port}\n}\n`,
  );
  const conf = [
    '[main]',
    `certname = ${o.certname}`,
    `ssldir = ${join(root, 'ssl')}`,
    // Clients connect to "localhost", and the agent checks the name against the server cert.
    `dns_alt_names = localhost,${o.certname}`,
    ...(o.keylength ? [`keylength = ${o.keylength}`] : []),
    '[server]',
    `cadir = ${join(root, 'ca')}`,
    `autosign = ${o.autosign ? 'true' : 'false'}`,
    '',
  ];
  await writeFile(join(root, 'confdir', 'puppet.conf'), conf.join('\n'));
}

/**
 * Starts puppetserver with its own confdir, cadir, vardir and ssldir on 127.0.0.1:<free port>
 * and resolves once /status/v1/simple says "running" (about 35 s on two cores). The CA is created
 * at first start, as on a fresh install.
 */
export async function startPuppetserver(opts: PuppetserverOptions = {}): Promise<Puppetserver> {
  const o = { certname: 'puppetserver.test', ...opts };
  const root = await makeTempDir('puppetserver');
  const port = await freePort();
  await writeConfigTree(root, port, o);
  const heap = o.heap ?? '1g';
  const child: ChildProcess = spawn(
    '/usr/bin/java',
    javaArgs(root, heap),
    { cwd: '/usr/share/puppetserver', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: root } },
  );
  let output = '';
  const keep = (d: Buffer): void => {
    output = (output + d.toString('utf8')).slice(-64 * 1024);
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
    if (exited === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exitedP;
      clearTimeout(timer);
    }
  };
  const cleanup = async (): Promise<void> => {
    await stop();
    await rm(root, { recursive: true, force: true });
  };

  try {
    await pollUntil(
      'puppetserver /status/v1/simple = running',
      async () => {
        if (exited !== undefined) throw new StopPolling(`puppetserver stopped (${exited})`);
        const res = await insecureGet(port, '/status/v1/simple', 2_000);
        return res.status === 200 && res.body.trim() === 'running' ? true : undefined;
      },
      { timeoutMs: o.startTimeoutMs ?? 120_000, intervalMs: 500 },
    );
  } catch (err) {
    const tail = output.split('\n').slice(-40).join('\n');
    await cleanup();
    throw new Error(`${(err as Error).message}\n--- puppetserver output (tail)\n${tail}`);
  }
  return {
    port,
    root,
    cadir: join(root, 'ca'),
    ssldir: join(root, 'ssl'),
    certname: o.certname,
    log: () => output,
    stop,
    cleanup,
  };
}

export type OfflineCa = {
  /** The CA directory `puppetserver ca setup` wrote (ca_crt.pem, ca_key.pem, serial, signed/, …). */
  cadir: string;
  ssldir: string;
  confFile: string;
  /** Signs `certname` with the CA key on disk, the way `puppetserver ca generate --ca-client` does. */
  generate(certname: string): Promise<RunResult>;
};

/**
 * `puppetserver ca setup` into `dir`: a root and an intermediate CA plus a server cert, written
 * the way a real installation's CA directory looks. The CLI's offline actions first probe
 * https://server:port/status/v1/simple/ca and only go ahead on "connection refused", so the
 * config points at a loopback port nothing listens on.
 */
export async function caSetup(dir: string, { certname = 'oldca.test', keylength = 2048 } = {}): Promise<OfflineCa> {
  const cadir = join(dir, 'ca');
  const ssldir = join(dir, 'ssl');
  await mkdir(dir, { recursive: true });
  const confFile = await writeCaCliConf(join(dir, 'puppet.conf'), {
    certname,
    server: '127.0.0.1',
    port: await freePort(),
    cadir,
    ssldir,
    hostcert: join(ssldir, 'certs', `${certname}.pem`),
    hostprivkey: join(ssldir, 'private_keys', `${certname}.pem`),
    localcacert: join(ssldir, 'certs', 'ca.pem'),
    hostcrl: join(ssldir, 'crl.pem'),
    keylength,
  });
  const res = await puppetserverCaCli(['setup'], { confFile });
  if (res.code !== 0) throw new Error(`puppetserver ca setup failed (${res.code}): ${res.stdout}${res.stderr}`);
  return {
    cadir,
    ssldir,
    confFile,
    generate: (name) => puppetserverCaCli(['generate', '--ca-client', '--certname', name], { confFile }),
  };
}
