// Runs the real Debian `puppet` agent and `puppetserver ca` CLI in throw-away directories, so the
// end-to-end tests exercise ringmaster with the software operators actually run. Also holds the
// process and polling primitives the other helpers share.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const puppetBin = '/usr/bin/puppet';
export const puppetserverBin = '/usr/bin/puppetserver';

const packageFiles: Record<string, string> = {
  'puppet-agent': puppetBin,
  puppetserver: puppetserverBin,
  openssl: '/usr/bin/openssl',
};

/**
 * Skip reason for a test that needs real Debian packages, or false when they are installed.
 * In CI a missing package is an error: a suite that silently skips proves nothing.
 */
export function skipUnlessInstalled(...packages: string[]): string | false {
  const missing = packages.filter((p) => !existsSync(packageFiles[p] ?? `/nonexistent/${p}`));
  if (missing.length === 0) return false;
  const reason = `needs the Debian package(s) ${missing.join(', ')} (apt-get install ${missing.join(' ')})`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must not skip real-software tests`);
  return reason;
}

export type RunResult = {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
};

export type RunOptions = {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
};

/** Runs a command to completion, killing it (SIGKILL) when the deadline passes. Never rejects. */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const finish = (code: number | null, signal: NodeJS.Signals | null, extra = ''): void => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr: stderr + extra, timedOut, ms: Date.now() - started });
    };
    child.on('error', (err) => finish(null, null, `\nspawn failed: ${err.message}`));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** Human-readable summary of a finished command for assertion messages. */
export function describeRun(what: string, r: RunResult): string {
  const status = r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`;
  return `${what}: ${status} after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Thrown from a poll check to give up at once (say, the process being waited for has died). */
export class StopPolling extends Error {}

/**
 * Re-evaluates `check` until it returns something other than undefined, or throws once the
 * deadline passes. The short pause between checks bounds CPU use; the deadline bounds the loop.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof StopPolling) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await delay(intervalMs);
  }
}

/** A lower-case certname no other test case or earlier run shares. */
export function uniqueCertname(prefix: string, domain = 'test'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}.${domain}`;
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `rm-${prefix}-`));
}

export type CsrAttributes = {
  custom_attributes?: Record<string, string>;
  extension_requests?: Record<string, string>;
};

export type AgentOptions = {
  certname: string;
  server?: string;
  port: number;
  caServer?: string;
  caPort?: number;
  extraConf?: Record<string, string>;
  csrAttributes?: CsrAttributes;
};

export type AgentPaths = {
  root: string;
  confdir: string;
  vardir: string;
  ssldir: string;
  certdir: string;
  privatekeydir: string;
  cert: string;
  key: string;
  caCert: string;
  crl: string;
};

export type Agent = {
  certname: string;
  paths: AgentPaths;
  /** `puppet ssl bootstrap`; waitforcert 0 makes one attempt and exits 1 when not signed. */
  sslBootstrap(opts?: { waitforcert?: number; maxwaitforcert?: number; timeoutMs?: number }): Promise<RunResult>;
  sslVerify(opts?: { timeoutMs?: number }): Promise<RunResult>;
  /** Any `puppet` subcommand with this agent's confdir and vardir. */
  run(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  cleanup(): Promise<void>;
};

// csr_attributes.yaml is tiny and flat; quoting every value keeps tokens and OIDs as strings.
function csrAttributesYaml(attrs: CsrAttributes): string {
  const lines: string[] = [];
  for (const section of ['custom_attributes', 'extension_requests'] as const) {
    const entries = Object.entries(attrs[section] ?? {});
    if (entries.length === 0) continue;
    lines.push(`${section}:`);
    for (const [k, v] of entries) lines.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * An agent whose every path lives under one temp directory. Debian's build puts ssldir in
 * /var/lib/puppet/ssl rather than $confdir/ssl, so ssldir is set explicitly; confdir and vardir
 * can only be moved on the command line.
 */
export async function createAgent(opts: AgentOptions): Promise<Agent> {
  const root = await makeTempDir(`agent-${opts.certname}`);
  const dir = (name: string): string => join(root, name);
  const ssldir = dir('ssl');
  const paths: AgentPaths = {
    root,
    confdir: dir('conf'),
    vardir: dir('var'),
    ssldir,
    certdir: join(ssldir, 'certs'),
    privatekeydir: join(ssldir, 'private_keys'),
    cert: join(ssldir, 'certs', `${opts.certname}.pem`),
    key: join(ssldir, 'private_keys', `${opts.certname}.pem`),
    caCert: join(ssldir, 'certs', 'ca.pem'),
    crl: join(ssldir, 'crl.pem'),
  };
  for (const d of ['conf', 'var', 'run', 'log', 'code', 'public', 'ca']) await mkdir(dir(d), { recursive: true });
  // Made up front so a test can place an existing identity before the first run.
  await mkdir(paths.certdir, { recursive: true });
  await mkdir(paths.privatekeydir, { recursive: true, mode: 0o750 });
  const settings: Record<string, string> = {
    certname: opts.certname,
    server: opts.server ?? 'localhost',
    serverport: String(opts.port),
    ssldir,
    rundir: dir('run'),
    logdir: dir('log'),
    codedir: dir('code'),
    publicdir: dir('public'),
    cadir: dir('ca'),
    keylength: '2048',
    color: 'false',
    ...(opts.caServer ? { ca_server: opts.caServer } : {}),
    ...(opts.caPort ? { ca_port: String(opts.caPort) } : {}),
    ...opts.extraConf,
  };
  const conf = ['[main]', ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`), ''].join('\n');
  await writeFile(join(paths.confdir, 'puppet.conf'), conf);
  if (opts.csrAttributes) {
    await writeFile(join(paths.confdir, 'csr_attributes.yaml'), csrAttributesYaml(opts.csrAttributes));
  }

  const env = { ...process.env, HOME: root, LANG: 'C.UTF-8' };
  const run = (args: readonly string[], runOpts: RunOptions = {}): Promise<RunResult> =>
    runProcess(puppetBin, [...args, '--confdir', paths.confdir, '--vardir', paths.vardir], {
      env,
      cwd: root,
      timeoutMs: 60_000,
      ...runOpts,
    });

  return {
    certname: opts.certname,
    paths,
    run,
    sslBootstrap: ({ waitforcert = 1, maxwaitforcert, timeoutMs = 60_000 } = {}) =>
      run(
        [
          'ssl',
          'bootstrap',
          '--waitforcert',
          String(waitforcert),
          ...(maxwaitforcert === undefined ? [] : ['--maxwaitforcert', String(maxwaitforcert)]),
        ],
        { timeoutMs },
      ),
    sslVerify: ({ timeoutMs = 30_000 } = {}) => run(['ssl', 'verify'], { timeoutMs }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/**
 * A new agent named `<prefix>-….<domain>`, bootstrapped against the CA at `port`, which must
 * autosign it; added to `agents` for cleanup. Throws with the run's output when bootstrap fails.
 */
export async function autosignedAgent(port: number, prefix: string, agents: Agent[], domain = 'auto.test'): Promise<Agent> {
  const agent = await createAgent({ certname: uniqueCertname(prefix, domain), port });
  agents.push(agent);
  const boot = await agent.sslBootstrap({ waitforcert: 0 });
  if (boot.code !== 0) throw new Error(describeRun('puppet ssl bootstrap', boot));
  return agent;
}

export type Identity = { caCert: string; crl: string; cert: string; key: string };

/** Gives an agent an identity issued elsewhere (CA bundle, CRL chain, cert, key), as a migrated host has. */
export async function installIdentity(agent: Agent, from: Identity): Promise<void> {
  await copyFile(from.caCert, agent.paths.caCert);
  await copyFile(from.crl, agent.paths.crl);
  await copyFile(from.cert, agent.paths.cert);
  await copyFile(from.key, agent.paths.key);
}

export type CaCliConf = {
  certname: string;
  server?: string;
  port: number;
  hostcert: string;
  hostprivkey: string;
  localcacert: string;
  hostcrl: string;
  /** Where offline actions (setup, generate --ca-client) read and write the CA. */
  cadir: string;
  ssldir: string;
  keylength?: number;
};

/**
 * puppet.conf for `puppetserver ca`. The CLI parses puppet.conf itself (no Puppet loaded): it
 * takes ca_server/ca_port from server/serverport and the TLS files from hostcert, hostprivkey,
 * localcacert and hostcrl, and defaults ssldir to /var/lib/puppet/ssl when run as root.
 */
export async function writeCaCliConf(path: string, c: CaCliConf): Promise<string> {
  const lines = [
    '[main]',
    `certname = ${c.certname}`,
    `server = ${c.server ?? 'localhost'}`,
    `serverport = ${c.port}`,
    `ssldir = ${c.ssldir}`,
    `cadir = ${c.cadir}`,
    `hostcert = ${c.hostcert}`,
    `hostprivkey = ${c.hostprivkey}`,
    `localcacert = ${c.localcacert}`,
    `hostcrl = ${c.hostcrl}`,
    `keylength = ${c.keylength ?? 2048}`,
    '',
  ];
  await writeFile(path, lines.join('\n'));
  return path;
}

/** `puppetserver ca <args> --config <puppet.conf>` (the CLI is plain Ruby; it starts in about 0.5 s). */
export function puppetserverCaCli(
  args: readonly string[],
  { confFile, timeoutMs = 60_000 }: { confFile: string; timeoutMs?: number },
): Promise<RunResult> {
  return runProcess(puppetserverBin, ['ca', ...args, '--config', confFile], {
    timeoutMs,
    env: { ...process.env, LANG: 'C.UTF-8' },
  });
}
