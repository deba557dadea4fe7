// Runs a local Puppet Server (Debian's puppetserver package) as a CA-less compiler behind
// ringmaster, from the directory `ringmaster compiler config` wrote, in a private config tree:
// nothing under /etc/puppet or /var/lib/puppet is read or changed. Used by scripts/quickstart.sh.
//
//   node scripts/local-compiler.ts start --config-dir DIR --tree DIR --code DIR [--heap 768m] [--timeout 300]
//   node scripts/local-compiler.ts stop --tree DIR
//
// `start` writes the tree, starts the JVM detached (log: <tree>/../puppetserver.log, pid file:
// <tree>/../puppetserver.pid), waits until Puppet Server says it is ready and exits, leaving the
// JVM running. If the pid file names a live Puppet Server, it is reused instead.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { fastStartFlags, javaArgs, listenOf, readyLine, writeCompilerTree, type Listen } from '../src/compiler/local-server.ts';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid in the pid file when that process is still a Puppet Server JVM. */
async function runningPid(pidFile: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('puppetserver') ? pid : undefined;
}

function status(l: Listen): Promise<string | undefined> {
  return new Promise((done) => {
    const req = request({ host: l.host, port: l.port, path: '/status/v1/simple', timeout: 5_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => done(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => done(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(undefined));
    req.end();
  });
}

async function tail(file: string, lines = 40): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');
}

async function start(configDir: string, root: string, codeDir: string, heap: string, timeoutS: number): Promise<void> {
  const base = dirname(root);
  const logFile = join(base, 'puppetserver.log');
  const pidFile = join(base, 'puppetserver.pid');
  const listen = await listenOf(configDir);
  const where = `${listen.tls ? 'https' : 'http'}://${listen.host}:${listen.port}`;

  const existing = await runningPid(pidFile);
  if (existing !== undefined) {
    console.log(`local compiler already running (pid ${existing}, ${where})`);
    return;
  }
  if (!listen.tls && (await status(listen)) !== undefined) {
    throw new Error(`something else already answers on ${where}; choose another compiler port`);
  }

  await writeCompilerTree(root, configDir, codeDir);
  const out = openSync(logFile, 'a');
  // Start-up speed over peak speed (fastStartFlags): a local compiler for trying ringmaster out.
  const child = spawn(
    '/usr/bin/java',
    javaArgs(root, heap, fastStartFlags),
    { cwd: '/usr/share/puppetserver', detached: true, stdio: ['ignore', out, out], env: { ...process.env, HOME: root } },
  );
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start /usr/bin/java');
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  child.unref();
  await writeFile(pidFile, `${pid}\n`);
  console.log(`starting the local compiler (pid ${pid}, ${where}); log: ${logFile}`);

  const logStart = Date.now();
  const deadline = logStart + timeoutS * 1000;
  // Only this run's part of the log counts: an earlier run may have logged "ready" too.
  const before = (await readFile(logFile, 'utf8').catch(() => '')).length;
  for (;;) {
    if (exited !== undefined || !alive(pid)) {
      await rm(pidFile, { force: true });
      throw new Error(`the local compiler stopped (${exited ?? 'gone'}); last lines of ${logFile}:\n${await tail(logFile)}`);
    }
    const log = (await readFile(logFile, 'utf8').catch(() => '')).slice(before);
    if (log.includes(readyLine)) break;
    if (Date.now() > deadline) throw new Error(`the local compiler is not ready after ${timeoutS} s (pid ${pid} left running); last lines of ${logFile}:\n${await tail(logFile)}`);
    await sleep(500);
  }
  if (!listen.tls) {
    const s = await status(listen);
    if (s !== 'running') throw new Error(`${where}/status/v1/simple answered ${s ?? 'nothing'}`);
  }
  console.log(`local compiler ready after ${Math.round((Date.now() - logStart) / 1000)} s`);
}

async function stop(root: string): Promise<void> {
  const pidFile = join(dirname(root), 'puppetserver.pid');
  const pid = await runningPid(pidFile);
  if (pid === undefined) {
    console.log('local compiler not running');
    await rm(pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (alive(pid) && Date.now() < deadline) await sleep(250);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  await rm(pidFile, { force: true });
  console.log(`local compiler stopped (pid ${pid})`);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      'config-dir': { type: 'string' },
      tree: { type: 'string' },
      code: { type: 'string' },
      heap: { type: 'string', default: '768m' },
      timeout: { type: 'string', default: '300' },
    },
  });
  const need = (name: 'config-dir' | 'tree' | 'code'): string => {
    const v = values[name];
    if (v === undefined) throw new Error(`--${name} is required`);
    return resolve(v);
  };
  switch (positionals[0]) {
    case 'start':
      return start(need('config-dir'), need('tree'), need('code'), values.heap, Number(values.timeout));
    case 'stop':
      return stop(need('tree'));
    default:
      throw new Error('usage: local-compiler.ts start --config-dir DIR --tree DIR --code DIR [--heap 768m] [--timeout 300] | stop --tree DIR');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
