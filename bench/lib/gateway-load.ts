// The load client of the gateway benchmark, run as its own process (forked by gateway-procs.ts)
// so it never shares an event loop with a front door. It speaks to every front door the same
// way: HTTPS with an agent certificate, the requests of an agent run, checked for the backend's
// answer. This file is the benchmarks' only importer of undici.
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { LeanPool } from './gateway-client.ts';
import { monotonicMs, summarize, type LatencySummary } from './stats.ts';

export type Identity = { cert: string; key: string };

export type LoadJob = {
  /**
   * keepalive: `concurrency` requests in flight, each sent as soon as the previous one on its
   * connection is answered (the maximum rate). paced: requests started at a fixed `rate` whether
   * or not earlier ones are answered (open loop), on up to `concurrency` connections. connections:
   * every request on a new TLS connection (full handshake, no session resumption).
   */
  kind: 'keepalive' | 'paced' | 'connections';
  port: number;
  ca: string;
  identities: Identity[];
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  rate?: number;
  /** The keep-alive and paced phases' client: the lean one of gateway-client.ts, or undici. */
  client: 'lean' | 'undici';
  /** Paced runs: return each answered request's start and end (for bench/lib/stalls.ts). */
  spans?: boolean;
};

export type LoadResult = {
  /** Requests answered with the backend's body during the measured window. */
  completed: number;
  /** Requests sent (paced: scheduled) during the measured window. */
  sent: number;
  errors: number;
  errorSamples: string[];
  /** Paced runs: how late the client sent requests (timer and event-loop delay), p50 and p99. */
  sendLag: { p50Ms: number; p99Ms: number } | null;
  /** Keep-alive and paced runs: connections opened during the measured window (ideally 0). */
  handshakes: number;
  windowMs: number;
  perSec: number;
  latency: LatencySummary;
  /** The same by request: catalog POST (50 KB answer), node GET, file_metadata GET. */
  latencyByKind: Record<RequestKind, LatencySummary>;
  clientCpuMs: number;
  /** With `spans`: each answered request's start and end on the monotonic clock (ms, flat pairs). */
  spans?: number[];
};

export type LoadMessage = { op: 'measuring' } | { op: 'done'; result: LoadResult } | { op: 'failed'; error: string };

const backendTag = 'ringmaster-bench-backend';
const headers = { accept: 'application/json', 'x-puppet-version': '8.10.0', 'user-agent': 'Puppet/8.10.0 Ruby/3.1.2-p20 (x86_64-linux)' };
// About what an agent with a few hundred facts sends with its catalog request.
const facts = Buffer.from(`environment=production&facts_format=application%2Fjson&transaction_uuid=00000000-0000-4000-8000-000000000000&facts=${encodeURIComponent(JSON.stringify({ name: 'agent', values: { padding: 'f'.repeat(14_000) } }))}`);

export type RequestKind = 'catalog' | 'node' | 'file_metadata';
const kindOf = (i: number): RequestKind => (i % 10 === 0 ? 'catalog' : i % 10 === 1 ? 'node' : 'file_metadata');

type Shape = { method: 'GET' | 'POST'; path: string; body?: Buffer; headers: Record<string, string> };

/** One agent run in ten requests: a catalog POST, a node GET and eight file_metadata GETs. */
function requestFor(i: number): Shape {
  const agent = `agent-${i % 4}.bench.test`;
  if (i % 10 === 0) {
    return { method: 'POST', path: `/puppet/v3/catalog/${agent}?environment=production`, body: facts, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(facts.length) } };
  }
  if (i % 10 === 1) return { method: 'GET', path: `/puppet/v3/node/${agent}?environment=production&configured_environment=production`, headers };
  return { method: 'GET', path: `/puppet/v3/file_metadata/modules/m${i % 37}/files/app.conf?environment=production&links=manage&checksum_type=sha256&source_permissions=ignore`, headers };
}

class Recorder {
  readonly latencies: number[] = [];
  readonly byKind: Record<RequestKind, number[]> = { catalog: [], node: [], file_metadata: [] };
  readonly samples = new Set<string>();
  errors = 0;
  sent = 0;
  /** Paced runs: how late the client sent each request (its own share of the latency). */
  readonly lags: number[] = [];
  /** Connections the client's pools opened during the measured window. */
  handshakes = 0;

  fail(what: string): void {
    this.errors++;
    if (this.samples.size < 5) this.samples.add(what.slice(0, 200));
  }
}

/** Where a keep-alive or paced run sends: one connection pool per agent identity. */
type Sender = { send: (i: number) => Promise<string | undefined>; destroy: () => Promise<void> };

function pools(job: LoadJob, onConnect: () => void): Sender[] {
  const per = Math.ceil(job.concurrency / job.identities.length);
  if (job.client === 'lean') {
    const built = new Map<string, Buffer>();
    return job.identities.map((id) => {
      const pool = new LeanPool({ port: job.port, ca: job.ca, cert: id.cert, key: id.key }, { connections: per, tag: backendTag, timeoutMs: 30_000, onConnect });
      return { send: (i) => viaLean(pool, built, job.port, i), destroy: () => Promise.resolve(pool.destroy()) };
    });
  }
  return undiciPools(job).map((pool) => {
    pool.on('connect', onConnect);
    return { send: (i) => viaPool(pool, i), destroy: () => pool.destroy() };
  });
}

async function viaLean(pool: LeanPool, built: Map<string, Buffer>, port: number, i: number): Promise<string | undefined> {
  const r = requestFor(i);
  let bytes = built.get(r.path);
  if (!bytes) {
    const head = `${r.method} ${r.path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    bytes = r.body ? Buffer.concat([Buffer.from(head, 'latin1'), r.body]) : Buffer.from(head, 'latin1');
    built.set(r.path, bytes);
  }
  const a = await pool.request(bytes);
  if (a.status !== 200) return `${r.method} ${r.path.split('?')[0]}: ${a.status} ${a.start}`;
  if (!a.tagged) return `${r.method} ${r.path.split('?')[0]}: 200 without the backend's body`;
  return undefined;
}

function undiciPools(job: LoadJob): Pool[] {
  const per = Math.ceil(job.concurrency / job.identities.length);
  return job.identities.map(
    (id) =>
      new Pool(`https://127.0.0.1:${job.port}`, {
        connections: per,
        pipelining: 1,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
        // Connections idle in a quiet spell of a paced run stay open: re-opening them mid-run
        // would time the client's handshakes instead of the front door.
        keepAliveTimeout: 60_000,
        connect: { ca: job.ca, cert: id.cert, key: id.key, servername: 'localhost', rejectUnauthorized: true },
      }),
  );
}

async function viaPool(pool: Pool, i: number): Promise<string | undefined> {
  const r = requestFor(i);
  const res = await pool.request({ method: r.method, path: r.path, headers: r.headers, body: r.body });
  const text = await res.body.text();
  if (res.statusCode !== 200) return `${r.method} ${r.path.split('?')[0]}: ${res.statusCode} ${text.slice(0, 120)}`;
  if (!text.includes(backendTag)) return `${r.method} ${r.path.split('?')[0]}: 200 without the backend's body`;
  return undefined;
}

/** A fresh connection per request: node:https with no agent keeps no TLS session to resume. */
function viaNewConnection(job: LoadJob, id: Identity, i: number): Promise<string | undefined> {
  const r = requestFor(1 + 10 * i);
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: job.port, servername: 'localhost', ca: job.ca, cert: id.cert, key: id.key, agent: false, method: r.method, path: r.path, headers: { ...r.headers, connection: 'close' }, timeout: 30_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve(res.statusCode !== 200 ? `GET node: ${res.statusCode} ${text.slice(0, 120)}` : text.includes(backendTag) ? undefined : 'GET node: 200 without the backend\'s body'));
        res.on('error', (err) => resolve(err.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

async function run(job: LoadJob, announce: () => void): Promise<LoadResult> {
  const rec = new Recorder();
  let measureFrom = Number.POSITIVE_INFINITY;
  const open = job.kind === 'connections' ? [] : pools(job, () => void (performance.now() >= measureFrom && rec.handshakes++));
  // A paced run opens all its connections first (part of the warm-up), so a burst in the
  // measured window finds a connection instead of waiting for a handshake.
  if (job.kind === 'paced') {
    const per = Math.ceil(job.concurrency / job.identities.length);
    await Promise.all(open.flatMap((pool) => Array.from({ length: per }, (_, i) => pool.send(1 + 10 * i).catch(() => undefined))));
  }
  const start = performance.now();
  // performance.now() is this process's own; spans are given on the clock every process shares.
  const toMonotonic = monotonicMs() - performance.now();
  const spans: number[] | undefined = job.spans && job.kind === 'paced' ? [] : undefined;
  measureFrom = start + job.warmupMs;
  const measureTo = measureFrom + job.durationMs;
  let cpuAtStart = process.cpuUsage();
  const warm = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    announce();
  }, job.warmupMs);
  const timed = async (startedAt: number, i: number, send: () => Promise<string | undefined>): Promise<void> => {
    const measured = startedAt >= measureFrom && startedAt < measureTo;
    if (measured) rec.sent++;
    let problem: string | undefined;
    try {
      problem = await send();
    } catch (err) {
      problem = (err as Error).message;
    }
    const end = performance.now();
    if (!measured) return;
    if (problem !== undefined) rec.fail(problem);
    // Paced requests due in the window count however late they end (the late ones are the tail);
    // the closed loops count what ends within the window, which is what the rate divides by.
    else if (job.kind === 'paced' || end <= measureTo) {
      rec.latencies.push(end - startedAt);
      spans?.push(startedAt + toMonotonic, end + toMonotonic);
      rec.byKind[job.kind === 'connections' ? 'node' : kindOf(i)].push(end - startedAt);
    }
  };

  let next = 0;
  try {
    if (job.kind === 'paced') {
      const rate = job.rate ?? 1;
      const interval = 1000 / rate;
      const inFlight = new Set<Promise<void>>();
      // Requests are timed from when they were due, so a front door that falls behind shows its
      // queueing in the latency instead of silently lowering the rate.
      await new Promise<void>((resolve) => {
        const tick = (): void => {
          const now = performance.now();
          for (let due = start + next * interval; due <= now && due < measureTo; due = start + ++next * interval) {
            const i = next;
            if (due >= measureFrom) rec.lags.push(now - due);
            const p = timed(due, i, () => open[i % open.length]!.send(i)).finally(() => inFlight.delete(p));
            inFlight.add(p);
          }
          if (start + next * interval >= measureTo) resolve();
          else setTimeout(tick, 1);
        };
        tick();
      });
      await Promise.all(inFlight);
    } else {
      await Promise.all(
        Array.from({ length: job.concurrency }, async (_, w) => {
          const id = job.identities[w % job.identities.length]!;
          while (performance.now() < measureTo) {
            const i = next++;
            const send = job.kind === 'connections' ? () => viaNewConnection(job, id, i) : () => open[w % open.length]!.send(i);
            await timed(performance.now(), i, send);
          }
        }),
      );
    }
  } finally {
    clearTimeout(warm);
    await Promise.all(open.map((p) => p.destroy()));
  }
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    completed: rec.latencies.length,
    sent: rec.sent,
    errors: rec.errors,
    errorSamples: [...rec.samples],
    handshakes: rec.handshakes,
    sendLag: rec.lags.length > 0 ? (({ p50Ms, p99Ms }) => ({ p50Ms, p99Ms }))(summarize(rec.lags)) : null,
    windowMs: job.durationMs,
    perSec: rec.latencies.length / (job.durationMs / 1000),
    latency: summarize(rec.latencies),
    latencyByKind: { catalog: summarize(rec.byKind.catalog), node: summarize(rec.byKind.node), file_metadata: summarize(rec.byKind.file_metadata) },
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    ...(spans ? { spans } : {}),
  };
}

if (process.send) {
  const send = (m: LoadMessage): void => {
    process.send?.(m);
  };
  process.once('message', (job: LoadJob) => {
    run(job, () => send({ op: 'measuring' })).then(
      (result) => send({ op: 'done', result }),
      (err: unknown) => send({ op: 'failed', error: (err as Error).message }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
