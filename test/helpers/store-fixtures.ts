import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CaInitialFiles } from '../../src/ca/store.ts';

// Shared by the CA store tests: temp directories, stand-in PEM text (the store never parses it),
// worker processes, and a CA directory made by the real `puppetserver ca setup`.

const workerScript = new URL('./store-worker.ts', import.meta.url).pathname;

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rm-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function pem(label: string, body: string): string {
  return `-----BEGIN ${label}-----\n${Buffer.from(body).toString('base64')}\n-----END ${label}-----\n`;
}

export function fakeCaFiles(nextSerial = 1n): CaInitialFiles {
  return {
    caCertPem: pem('CERTIFICATE', 'ca cert'),
    caKeyPem: pem('RSA PRIVATE KEY', 'ca key'),
    caPubPem: pem('PUBLIC KEY', 'ca pub'),
    crlPem: pem('X509 CRL', 'crl'),
    nextSerial,
  };
}

/** Names in `parent` that initialize/import leave while building; a finished call leaves none. */
export async function buildLeftovers(parent: string): Promise<string[]> {
  return (await readdir(parent)).filter((n) => n.includes('.new-'));
}

/** A directory shaped like a puppetserver cadir, with the given files left out. */
export async function fakePuppetserverCaDir(dir: string, omit: readonly string[] = []): Promise<string> {
  await mkdir(join(dir, 'signed'), { recursive: true });
  await mkdir(join(dir, 'requests'), { recursive: true });
  const files: Record<string, string> = {
    'ca_crt.pem': pem('CERTIFICATE', 'intermediate') + pem('CERTIFICATE', 'root'),
    'ca_key.pem': pem('RSA PRIVATE KEY', 'key'),
    'ca_pub.pem': pem('PUBLIC KEY', 'pub'),
    'ca_crl.pem': pem('X509 CRL', 'crl1') + pem('X509 CRL', 'crl2'),
    'root_key.pem': pem('RSA PRIVATE KEY', 'root'),
    serial: '0004\n',
    'inventory.txt':
      '0x0001 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=puppet.example.com\n' +
      '0x0002 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agent1.example.com\n' +
      '0x0003 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agent2.example.com\n',
    'infra_inventory.txt': '\n',
    infra_serials: '\n',
    'infra_crl.pem': pem('X509 CRL', 'infra'),
    'signed/puppet.example.com.pem': pem('CERTIFICATE', 'puppet'),
    'signed/agent1.example.com.pem': pem('CERTIFICATE', 'agent1'),
    'signed/agent2.example.com.pem': pem('CERTIFICATE', 'agent2'),
    'requests/agent3.example.com.pem': pem('CERTIFICATE REQUEST', 'agent3'),
  };
  for (const [name, text] of Object.entries(files)) {
    if (!omit.includes(name)) await writeFile(join(dir, name), text, { mode: name.endsWith('_key.pem') ? 0o640 : 0o644 });
  }
  return dir;
}

export type Worker = { pid: number; done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> };

export function startWorker(args: string[], onLine?: (line: string) => void): Worker {
  const child = spawn(process.execPath, [workerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (onLine !== undefined) for (const line of chunk.split('\n')) if (line !== '') onLine(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    // 'close' comes after the child is reaped, so its pid no longer answers kill(pid, 0).
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  if (child.pid === undefined) throw new Error('worker did not start');
  return { pid: child.pid, done };
}

/** Starts a worker that takes the lock and waits; resolves once it holds it. */
export async function startHolder(dir: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const worker = startWorker(['hold', dir], (line) => {
    if (line === 'locked') locked();
  });
  await Promise.race([
    isLocked,
    worker.done.then((r) => {
      throw new Error(`holder exited: ${r.stderr}`);
    }),
  ]);
  return {
    pid: worker.pid,
    kill: async () => {
      process.kill(worker.pid, 'SIGKILL');
      await worker.done;
    },
  };
}

export async function runAllocator(dir: string, count: number, startAtMs = 0): Promise<bigint[]> {
  const result = await startWorker(['allocate', dir, String(count), String(startAtMs)]).done;
  if (result.code !== 0) throw new Error(`allocator failed (${result.code ?? result.signal}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as string[]).map((s) => BigInt(s));
}

/** A pid that belonged to a process that has exited and been reaped. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => child.on('close', r));
  if (child.pid === undefined) throw new Error('no pid');
  return child.pid;
}

export const puppetserverInstalled = existsSync('/usr/bin/puppetserver');

/** Runs `puppetserver ca setup` with every Puppet directory under `root`; returns the cadir. */
export async function puppetserverCaSetup(root: string, certname: string): Promise<string> {
  const conf = join(root, 'conf');
  await mkdir(conf, { recursive: true });
  const cadir = join(root, 'ca');
  const lines = [
    '[main]',
    `confdir = ${conf}`,
    `vardir = ${join(root, 'var')}`,
    `logdir = ${join(root, 'log')}`,
    `rundir = ${join(root, 'run')}`,
    `ssldir = ${join(conf, 'ssl')}`,
    'keylength = 2048',
    '[server]',
    `cadir = ${cadir}`,
  ];
  await writeFile(join(conf, 'puppet.conf'), `${lines.join('\n')}\n`);
  await promisify(execFile)('/usr/bin/puppetserver', ['ca', 'setup', '--config', join(conf, 'puppet.conf'), '--certname', certname], {
    cwd: root,
    timeout: 120_000,
  });
  return cadir;
}
