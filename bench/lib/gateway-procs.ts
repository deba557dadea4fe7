// Process plumbing for the gateway benchmark: forked helpers spoken to over IPC, free loopback
// ports, and the CPU time a process tree has used (read from /proc, so nginx's workers and
// Node's helper threads are counted without cooperation from the process).
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { pollUntil } from '../../test/helpers/puppet.ts';

export type Forked = { child: ChildProcess; exited: Promise<void>; stop(): Promise<void> };

/** Forks a .ts file on this Node; its stderr shows on ours so a crash explains itself. */
export function forkScript(file: string, args: readonly string[] = []): Forked {
  const child = fork(file, [...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The next IPC message for which `pick` returns a value; rejects if the child exits first or time runs out. */
export function nextMessage<M, T>(child: ChildProcess, pick: (m: M) => T | undefined, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: M): void => {
      const value = pick(m);
      if (value === undefined) return;
      done();
      resolve(value);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`child process exited (${code ?? signal}) before answering`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no answer from the child process within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** A port the kernel just handed out and took back; another process could take it, rarely. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function waitForPort(port: number, what: string, timeoutMs = 15_000): Promise<true> {
  return pollUntil(
    `${what} to accept connections on 127.0.0.1:${port}`,
    () =>
      new Promise<true | undefined>((resolve) => {
        const s = createConnection({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      }),
    { timeoutMs, intervalMs: 50 },
  );
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** [ppid, utime + stime in ticks] from /proc/<pid>/stat; the command name may hold spaces. */
function statOf(pid: number): [number, number] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[11]) + Number(f[12])];
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant, by their parent links in /proc, with their stat figures. */
function processTree(pid: number): { pid: number; cpuTicks: number }[] {
  const stats = new Map<number, [number, number]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = statOf(Number(entry));
    if (s) stats.set(Number(entry), s);
  }
  const tree: { pid: number; cpuTicks: number }[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    tree.push({ pid: p, cpuTicks: stats.get(p)?.[1] ?? 0 });
    for (const [child, [ppid]] of stats) if (ppid === p) stack.push(child);
  }
  return tree;
}

/** CPU milliseconds used so far by `pid` and every live descendant (all threads included). */
export function treeCpuMs(pid: number): number {
  const ticks = processTree(pid).reduce((n, p) => n + p.cpuTicks, 0);
  return (ticks * 1000) / clockTicks();
}

/**
 * Pins `pid`, its threads and every live descendant to one CPU (taskset). On a small virtual
 * machine the cost of a wake-up depends on whether the woken process shares the waker's core, so
 * unpinned runs of the same code differ by tens of percent; pinned, every front door has a core
 * of its own and the client and backend share the other.
 */
export function pinTree(pid: number, cpu: number): void {
  for (const p of processTree(pid)) spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(p.pid)], { stdio: 'ignore' });
}

/** Resident memory (VmRSS, KiB) of `pid` and every live descendant; `VmHWM` gives each one's peak instead. */
export function treeRssKb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  let kb = 0;
  const pattern = new RegExp(`${field}:\\s+(\\d+)`);
  for (const { pid: p } of processTree(pid)) {
    try {
      kb += Number(pattern.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // The process ended meanwhile.
    }
  }
  return kb;
}

/** CPU milliseconds the whole machine has spent busy (all cores, any process) since boot. */
export function systemBusyMs(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = first.trim().split(/\s+/).slice(1).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / clockTicks();
}

/**
 * Waits, for at most `maxWaitMs`, until the machine has been nearly idle for a second: other
 * work on a 2-core machine (a build, a test run) would be measured as the front door's slowness.
 * Returns the busy cores of the last second sampled.
 */
export async function waitForQuiet({ maxWaitMs = 60_000, busyCores = 0.15 } = {}): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const b0 = systemBusyMs();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busy = (systemBusyMs() - b0) / (performance.now() - t0);
    if (busy <= busyCores || Date.now() >= deadline) return busy;
  }
}
