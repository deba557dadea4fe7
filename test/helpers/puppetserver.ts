// Starts a real Puppet Server (Debian's 7.9.5 jar) as a certificate authority in a private config
// tree, for the benchmark and for tests that need files only Puppet's own tools produce.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { renderAuthConf } from '../../src/compiler/auth-conf.ts';
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
  /**
   * ca.conf `allow-subject-alt-names: true`: the CA signs (and autosigns) CSRs that ask for DNS
   * alt names, such as a front door's own request for `localhost`. Off by default, as packaged:
   * then such a CSR is refused at submission (400, "which are disallowed"), autosign or not.
   */
  allowSubjectAltNames?: boolean;
  /**
   * auth.conf `allow-header-cert-info: true` (external TLS termination): every request's identity
   * comes from X-Client-Verify, X-Client-DN and X-Client-Cert, never from the TLS peer, so a
   * request forwarded by a gateway is authorised as the agent it names. Without those headers a
   * request is unauthenticated, even over mutual TLS: `puppetserver ca` in API mode is refused
   * (`caAdminRequest` is how a test administers such a server's CA).
   */
  headerCertInfo?: boolean;
  /** site.pp of a production environment in the server's own code dir; unset: no environment. */
  manifest?: string;
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
  if (o.manifest !== undefined) {
    const manifests = join(root, 'code', 'environments', 'production', 'manifests');
    await mkdir(manifests, { recursive: true });
    await writeFile(join(manifests, 'site.pp'), o.manifest);
  }
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
  // Both replace the packaged files copied into this server's own conf.d; /etc stays untouched.
  if (o.allowSubjectAltNames) {
    await writeFile(join(confd, 'ca.conf'), 'certificate-authority: {\n    allow-subject-alt-names: true\n}\n');
  }
  // The packaged rules (the same ones `ringmaster compiler config` writes) with the header flag.
  if (o.headerCertInfo) await writeFile(join(confd, 'auth.conf'), renderAuthConf());
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

/**
 * A CA API request to a server started with `headerCertInfo`, made as its own CA CLI would be
 * authorised: in header mode puppetserver ignores the TLS peer (so `puppetserver ca` is refused
 * with 403) and takes the identity from X-Client-*. The rules for certificate_status(es), clean and
 * the CRL update want the `pp_cli_auth` extension, which the server's own host certificate carries
 * (the CA puts it there at first start), so that certificate is sent in X-Client-Cert; a DN alone
 * gets 403. The Host header names `localhost` like the SNI, or Jetty answers 400.
 */
export async function caAdminRequest(
  ps: Pick<Puppetserver, 'port' | 'ssldir' | 'certname'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const ca = await readFile(join(ps.ssldir, 'certs', 'ca.pem'), 'utf8');
  const hostCert = await readFile(join(ps.ssldir, 'certs', `${ps.certname}.pem`), 'utf8');
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: ps.port,
        servername: 'localhost',
        method,
        path,
        ca,
        agent: false,
        timeout: 10_000,
        headers: {
          Host: `localhost:${ps.port}`,
          Accept: 'application/json',
          'X-Client-Verify': 'SUCCESS',
          'X-Client-DN': `CN=${ps.certname}`,
          // One URI-encoded PEM (spaces %20, newlines %0A), as a TLS-terminating proxy sends it.
          'X-Client-Cert': encodeURIComponent(hostCert),
          ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Revokes `certname` on a `headerCertInfo` server's CA (204 when done); throws otherwise. */
export async function revokeOnServer(ps: Pick<Puppetserver, 'port' | 'ssldir' | 'certname'>, certname: string): Promise<void> {
  const r = await caAdminRequest(ps, 'PUT', `/puppet-ca/v1/certificate_status/${encodeURIComponent(certname)}`, { desired_state: 'revoked' });
  if (r.status !== 204) throw new Error(`revoking ${certname} on puppetserver: ${r.status} ${r.body}`);
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
