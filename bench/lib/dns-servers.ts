// The DNS servers of the DNS benchmark besides ringmaster: Debian's BIND (named, authoritative,
// one worker thread) loaded with `ringmaster dns zonefile`, and dnsmasq loaded with the same
// records as `srv-host`/`host-record` lines. Each runs in the foreground on a private config and a
// loopback port, pinned to one core like ringmaster, and is stopped after the run.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type DnsServer = { name: string; version: string; port: number; pid: number; logs(): string; stop(): Promise<void> };

export function packageVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  } catch {
    return 'unknown';
  }
}

/** Pins a process and all its threads to one core (taskset), so each server gets one core. */
export function pin(pid: number, core: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

function foreground(name: string, version: string, bin: string, args: readonly string[], port: number): DnsServer {
  const child: ChildProcess = spawn(bin, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer): void => {
    output = (output + d.toString('utf8')).slice(-32 * 1024);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    version,
    port,
    pid: child.pid ?? -1,
    logs: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function startBind(dir: string, port: number, zone: string, zonefile: string): Promise<DnsServer> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'zone.db'), zonefile);
  await writeFile(
    join(dir, 'named.conf'),
    [
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${join(dir, 'named.pid')}";`,
      `  session-keyfile "${join(dir, 'session.key')}";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  minimal-responses no;',
      '  querylog no;',
      '};',
      `zone "${zone}" { type primary; file "${join(dir, 'zone.db')}"; };`,
      '',
    ].join('\n'),
  );
  // -n 1: one worker thread; -g: foreground, logs on stderr.
  return foreground('bind', `BIND ${packageVersion('bind9')}`, '/usr/sbin/named', ['-g', '-n', '1', '-c', join(dir, 'named.conf')], port);
}

export async function startDnsmasq(dir: string, port: number, lines: string): Promise<DnsServer> {
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'dnsmasq.conf');
  await writeFile(conf, `${lines}\nport=${port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nno-negcache\nuser=root\npid-file=${join(dir, 'dnsmasq.pid')}\n`);
  return foreground('dnsmasq', `dnsmasq ${packageVersion('dnsmasq-base')}`, '/usr/sbin/dnsmasq', ['--keep-in-foreground', '--log-facility=-', `--conf-file=${conf}`], port);
}

let ticks: number | undefined;

/** CPU milliseconds (user + system) used so far by one process, all its threads included. */
export function cpuMs(pid: number): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
  } catch {
    return 0;
  }
}
