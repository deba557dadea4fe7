// One measurement of the gateway benchmark: a fresh load-client process runs a job against a
// front door while the CPU time of the front door and of the backend is read around the
// measured window (the client announces when its warm-up ends).
import { request } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Identity, LoadJob, LoadMessage, LoadResult } from './gateway-load.ts';
import { forkScript, nextMessage, pinTree, systemBusyMs, treeCpuMs } from './gateway-procs.ts';
import { analyseStalls, type StallMeters, type StallReport } from './stalls.ts';

export type Measured = LoadResult & {
  /** CPU cores used during the window by the front door's processes, the backend and the client. */
  doorCores: number;
  backendCores: number;
  clientCores: number;
  /** Busy cores of the machine beyond those three: other work that competed with the run. */
  otherCores: number;
  /** Paced runs with stall meters: the machine's stalls in the window and the requests they met. */
  stalls?: StallReport;
};

const loadScript = join(import.meta.dirname, 'gateway-load.ts');

/**
 * `doorPid` is the front door's process (tree); for the direct anchor it is the backend's, whose
 * CPU then counts as the front door's. The client process is new for every job, so nothing one
 * job left behind (sockets, heap) weighs on the next.
 */
export async function runLoad(job: LoadJob, pids: { door: number; backend: number; pin?: boolean }, meters?: StallMeters): Promise<Measured> {
  const metered = meters !== undefined && job.kind === 'paced';
  const client = forkScript(loadScript);
  let stalls: Map<number, number[]> | undefined;
  if (pids.pin) {
    // The front door alone on CPU 0; the client and the backend share CPU 1.
    pinTree(pids.door, 0);
    if (pids.backend !== pids.door) pinTree(pids.backend, 1);
    if (client.child.pid !== undefined) pinTree(client.child.pid, 1);
  }
  try {
    const done = nextMessage<LoadMessage, LoadMessage>(client.child, (m) => (m.op === 'measuring' ? undefined : m), job.warmupMs + job.durationMs + 120_000);
    const measuring = nextMessage<LoadMessage, true>(client.child, (m) => (m.op === 'measuring' ? true : undefined), job.warmupMs + 60_000);
    // Either may fail first; the other must not reject unobserved.
    done.catch(() => undefined);
    measuring.catch(() => undefined);
    client.child.send(metered ? { ...job, spans: true } : job);
    await measuring;
    if (metered) meters.start();
    const t0 = performance.now();
    const door0 = treeCpuMs(pids.door);
    const backend0 = treeCpuMs(pids.backend);
    const system0 = systemBusyMs();
    const end = await done;
    const wallMs = performance.now() - t0;
    const doorMs = treeCpuMs(pids.door) - door0;
    const backendMs = treeCpuMs(pids.backend) - backend0;
    const systemMs = systemBusyMs() - system0;
    if (metered) stalls = await meters.stop();
    if (end.op === 'failed') throw new Error(`load client failed: ${end.error}`);
    if (end.op !== 'done') throw new Error('load client answered out of turn');
    const clientCores = end.result.clientCpuMs / end.result.windowMs;
    const ownMs = doorMs + (pids.door === pids.backend ? 0 : backendMs);
    const { spans, ...result } = end.result;
    return {
      ...result,
      ...(stalls && spans ? { stalls: analyseStalls(spans, stalls) } : {}),
      doorCores: doorMs / wallMs,
      backendCores: backendMs / wallMs,
      clientCores,
      otherCores: Math.max(0, (systemMs - ownMs) / wallMs - clientCores),
    };
  } finally {
    // A run that failed still leaves the meters stopped and read, so the next starts clean.
    if (metered && stalls === undefined) await meters.stop().catch(() => undefined);
    await client.stop();
  }
}

export type Probe = { status: number; body: string; tls: string };

/** One request on a new connection, to check a front door end to end before it is measured. */
export function probe(port: number, ca: string, id: Identity): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, servername: 'localhost', ca, cert: id.cert, key: id.key, agent: false, path: '/puppet/v3/node/agent-0.bench.test?environment=production', headers: { accept: 'application/json' }, timeout: 10_000 },
      (res) => {
        const socket = res.socket as TLSSocket;
        const kx = socket.getEphemeralKeyInfo();
        const group = kx && 'name' in kx && kx.name ? ` ${kx.name}` : '';
        const tls = `${socket.getProtocol() ?? '?'} ${socket.getCipher()?.standardName ?? '?'}${group}`;
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, tls }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('probe timed out after 10 s')));
    req.on('error', reject);
    req.end();
  });
}
