// Gateway throughput and latency: the same agent traffic, in one run, through four front doors of
// one scripted compiler on loopback: ringmaster, nginx terminating TLS and setting X-Client-*,
// a bare Node relay (the platform's floor), HAProxy passing TCP through to the compiler's own TLS,
// and the compiler reached directly.
//
//   npm run bench:gateway [-- --duration 10 --rounds 3 --only ringmaster,nginx]      BENCH_QUICK=1 for a smoke run
//
// Each phase waits (up to --quiet-wait seconds) for the machine to be idle, is repeated (up to
// --attempts) when other processes used the cores meanwhile, and reports the CPU they used: on
// 2 cores, anything else running skews the figures.
import { mkdir, readFile, rm as remove, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backendTag, type BackendCommand, type BackendReply, type BackendStats } from './lib/gateway-backend.ts';
import { ensurePackages, startHaproxy, startNginx, type Door } from './lib/gateway-doors.ts';
import type { LoadJob } from './lib/gateway-load.ts';
import type { RelayReply, RelayStart } from './lib/gateway-node-relay.ts';
import type { FloorStart } from './lib/gateway-floor.ts';
import { probe, runLoad, type Measured } from './lib/gateway-measure.ts';
import { forkScript, nextMessage, pinTree, waitForQuiet } from './lib/gateway-procs.ts';
import { renderGatewayReport, type DoorResult } from './lib/gateway-report.ts';
import { makeTempDir } from '../test/helpers/puppet.ts';
import { repoRoot, type Ringmaster } from '../test/helpers/ringmaster.ts';
import { startBenchRingmaster } from './lib/bench-setup.ts';
import { StallMeters } from './lib/stalls.ts';

const quick = process.env.BENCH_QUICK === '1';
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: quick ? '2' : '10' },
    warmup: { type: 'string', default: quick ? '0.5' : '2' },
    // The paced phase measures the steady state's tail: its client process is new and cold, and
    // a few seconds of its own start-up (and the door's, after idling) otherwise land in the p99.
    'paced-warmup': { type: 'string', default: quick ? '0.5' : '8' },
    concurrency: { type: 'string', default: '32' },
    'paced-concurrency': { type: 'string', default: '64' },
    // A fixed rate for the paced phase instead of half of ringmaster's maximum (for profiling).
    'paced-rate': { type: 'string' },
    'connection-concurrency': { type: 'string', default: '16' },
    only: { type: 'string', default: 'ringmaster,nginx,node-relay,haproxy,direct' },
    'skip-install': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: quick ? '5' : '120' },
    attempts: { type: 'string', default: quick ? '1' : '3' },
    rounds: { type: 'string', default: quick ? '1' : '3' },
    // For profiling one kind of load: e.g. --phases keepalive.
    phases: { type: 'string', default: 'keepalive,paced,connections' },
    // The front door on CPU 0, the client and the backend on CPU 1 (see pinTree).
    pin: { type: 'boolean', default: false },
    // The keep-alive and paced client: lean (bench/lib/gateway-client.ts) or undici.
    client: { type: 'string', default: 'lean' },
    // Paced rounds also measure the machine's own stalls (bench/lib/stall-meter.ts; needs root
    // for real-time priority): --no-stall-meter leaves them out.
    'stall-meter': { type: 'boolean', default: true },
    // The scripted backend: node (node:http and node:https) or lean (bare sockets, a minimal
    // HTTP/1.1 reading; less CPU on the core it shares with the load client).
    backend: { type: 'string', default: 'node' },
  },
  allowNegative: true,
});
const durationMs = Number(args.duration) * 1000;
const warmupMs = Number(args.warmup) * 1000;
const pacedWarmupMs = Number(args['paced-warmup']) * 1000;
if (args.client !== 'lean' && args.client !== 'undici') throw new Error(`--client must be lean or undici, not ${args.client}`);
const client = args.client;
if (args.backend !== 'node' && args.backend !== 'lean') throw new Error(`--backend must be node or lean, not ${args.backend}`);
const concurrency = Number(args.concurrency);
const pacedConcurrency = Number(args['paced-concurrency']);
const connectionConcurrency = Number(args['connection-concurrency']);
const quietWaitMs = Number(args['quiet-wait']) * 1000;
const attempts = Math.max(1, Number(args.attempts));
const rounds = Math.max(1, Number(args.rounds));
const phases = new Set(args.phases.split(','));
/** Cores other processes may use during a phase before it counts as disturbed. */
const otherLimit = 0.15;
const only = new Set(args.only.split(',').map((s) => s.trim()));
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

// The machine's CPUs, counted before this process is pinned to one of them.
const cores = availableParallelism();
// Pinned, this process (it reads the machine's CPU counters and the stall meters between rounds)
// keeps off the front door's CPU too; what it starts inherits CPU 1 until it is pinned itself.
if (args.pin) pinTree(process.pid, 1);
const date = new Date().toISOString();
const unavailable = args['skip-install'] ? [] : ensurePackages(log);
const tmp = await makeTempDir('bench-gateway');
const backend = forkScript(join(import.meta.dirname, 'lib', 'gateway-backend.ts'), args.backend === 'lean' ? ['lean'] : []);
const backendPid = backend.child.pid ?? -1;
const ask = <T>(cmd: BackendCommand, pick: (m: BackendReply) => T | undefined): Promise<T> => {
  const answer = nextMessage<BackendReply, T>(backend.child, pick, 15_000);
  backend.child.send(cmd);
  return answer;
};
const backendStats = (reset: boolean): Promise<BackendStats> => ask({ op: 'stats', reset }, (m) => (m.op === 'stats' ? m.stats : undefined));

let rm: Ringmaster | undefined;
const stops: (() => Promise<void>)[] = [];
let meters: StallMeters | undefined;
if (args['stall-meter'] && args.phases.split(',').includes('paced')) {
  const started = await StallMeters.start(Array.from({ length: cores }, (_, i) => i));
  if (started instanceof StallMeters) {
    meters = started;
    stops.push(() => started.close());
  } else {
    log(`stall meters not running: ${started.unavailable}`);
  }
}
const results: DoorResult[] = [];
let pacedRate: { rate: number; from: string } | undefined = args['paced-rate'] === undefined ? undefined : { rate: Number(args['paced-rate']), from: '--paced-rate' };
try {
  const httpPort = await nextMessage<BackendReply, number>(backend.child, (m) => (m.op === 'listening' ? m.httpPort : undefined), 15_000);

  // ringmaster's CA issues every certificate of the run, so all four front doors present the
  // same server certificate and verify the same agent certificates (RSA-2048).
  log(`starting ringmaster (backend http://127.0.0.1:${httpPort})`);
  // Pinned, ringmaster starts on its one CPU, as it would in a one-CPU container (bin/ringmaster
  // then runs V8's collector on the main thread).
  const setup = await startBenchRingmaster(tmp, httpPort, args.pin ? { cpus: '0' } : {});
  rm = setup.ringmaster;
  const ringmaster = rm;
  const { identities, ca, crl, serverChain, serverKey, tlsFiles } = setup;
  const httpsPort = await ask({ op: 'tls', tls: { key: serverKey, cert: serverChain, ca, crl } }, (m) => (m.op === 'tls' ? m.httpsPort : undefined));
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

  type Plan = { name: string; proxied: boolean; start: () => Promise<Door> };
  const plans: Plan[] = [
    {
      name: 'ringmaster',
      proxied: true,
      start: () => Promise.resolve({ name: 'ringmaster', version: `ringmaster ${version}`, port: ringmaster.port, pid: ringmaster.pid ?? -1, logs: () => ringmaster.logs(), stop: () => ringmaster.stop() }),
    },
    { name: 'nginx', proxied: true, start: () => startNginx(join(tmp, 'nginx'), tlsFiles, httpPort) },
    ...([
      ['node-relay', 'gateway-node-relay.ts', 'node:https + undici relay'],
      ['floor-parse', 'gateway-floor-parse.ts', "node:tls + minimal HTTP/1.1 parse + ringmaster's upstream"],
    ] as const).map(([name, script, what]) => ({
      name,
      proxied: true,
      start: async (): Promise<Door> => {
        const relay = forkScript(join(import.meta.dirname, 'lib', script));
        const port = nextMessage<RelayReply, number>(relay.child, (m) => (m.op === 'listening' ? m.port : undefined), 15_000);
        relay.child.send({ op: 'start', backendUrl: `http://127.0.0.1:${httpPort}`, key: serverKey, cert: serverChain, ca, crl } satisfies RelayStart);
        return { name, version: `${what} ${process.version}`, port: await port, pid: relay.child.pid ?? -1, logs: () => '', stop: () => relay.stop() };
      },
    })),
    ...(['pipe', 'answer'] as const).map((mode) => ({
      name: `floor-${mode}`,
      proxied: true,
      start: async (): Promise<Door> => {
        const floor = forkScript(join(import.meta.dirname, 'lib', 'gateway-floor.ts'));
        const port = nextMessage<RelayReply, number>(floor.child, (m) => (m.op === 'listening' ? m.port : undefined), 15_000);
        floor.child.send({ op: 'start', mode, backendPort: httpPort, key: serverKey, cert: serverChain, ca, crl } satisfies FloorStart);
        return { name: `floor-${mode}`, version: `floor ${mode} ${process.version}`, port: await port, pid: floor.child.pid ?? -1, logs: () => '', stop: () => floor.stop() };
      },
    })),
    { name: 'haproxy', proxied: false, start: () => startHaproxy(join(tmp, 'haproxy'), httpsPort) },
    {
      name: 'direct',
      proxied: false,
      start: () => Promise.resolve({ name: 'direct', version: `backend on ${args.backend === 'lean' ? 'node:tls, lean' : 'node:https'} ${process.version}`, port: httpsPort, pid: backendPid, logs: () => '', stop: () => Promise.resolve() }),
    },
  ];

  // Every front door is started first and stays up, idle while another is measured; the phases
  // then go round the doors `rounds` times, so a slow minute of the machine does not fall on one
  // door only, and the median round of each door is reported.
  type Live = { door: Door; proxied: boolean; result: DoorResult; rounds: Record<LoadJob['kind'], Measured[]> };
  const live: Live[] = [];
  for (const plan of plans.filter((p) => only.has(p.name))) {
    const result: DoorResult = { name: plan.name, version: plan.name, tls: '', mismatches: 0, mismatchSamples: [] };
    results.push(result);
    if ((plan.name === 'nginx' || plan.name === 'haproxy') && unavailable.some((b) => b.endsWith(plan.name))) {
      result.failure = `${plan.name} is not installed`;
      continue;
    }
    let door: Door | undefined;
    try {
      const started = await plan.start();
      door = started;
      stops.push(() => started.stop());
      result.version = door.version;
      const p = await probe(door.port, ca, identities[0]!);
      result.tls = p.tls;
      if (p.status !== 200 || !p.body.includes(backendTag)) {
        throw new Error(`GET /puppet/v3/node/agent-0.bench.test did not reach the backend: ${p.status} ${p.body.slice(0, 200)}`);
      }
      live.push({ door, proxied: plan.proxied, result, rounds: { keepalive: [], paced: [], connections: [] } });
    } catch (err) {
      result.failure = (err as Error).message.split('\n')[0];
      log(`${plan.name}: not measured: ${(err as Error).message}${door ? `\n${door.logs().slice(-2000)}` : ''}`);
    }
  }

  const measure = async (l: Live, what: string, job: LoadJob): Promise<void> => {
    if (l.result.failure) return;
    const name = l.result.name;
    try {
      await backendStats(true);
      // A phase during which other processes used the cores is run again (up to --attempts
      // times in all); the attempt with the least outside load is kept, its outside load shown.
      let best: Measured | undefined;
      for (let attempt = 1; attempt <= attempts && (best === undefined || best.otherCores > otherLimit); attempt++) {
        const busy = await waitForQuiet({ maxWaitMs: quietWaitMs });
        log(`${name}: ${what}${attempt > 1 ? ` (attempt ${attempt})` : ''}${busy > otherLimit ? ` (the machine is not idle: ${busy.toFixed(2)} cores busy elsewhere)` : ''}`);
        const m = await runLoad(job, { door: l.door.pid, backend: backendPid, pin: args.pin }, meters);
        log(`${name}: ${what}: ${Math.round(m.perSec)}/s, p50 ${m.latency.p50Ms.toFixed(2)} ms, p90 ${m.latency.p90Ms.toFixed(2)} p99 ${m.latency.p99Ms.toFixed(2)} max ${m.latency.maxMs.toFixed(1)} ms, errors ${m.errors}, CPU front door ${m.doorCores.toFixed(2)} backend ${m.backendCores.toFixed(2)} client ${m.clientCores.toFixed(2)} other ${m.otherCores.toFixed(2)}${job.kind === 'connections' ? '' : `, connections opened while measuring ${m.handshakes}`}${m.sendLag ? `, client send lag p50 ${m.sendLag.p50Ms.toFixed(2)} p99 ${m.sendLag.p99Ms.toFixed(2)} ms` : ''}`);
        if (m.stalls) {
          const st = m.stalls;
          log(`${name}:   machine stalls ${st.perCpu.map((c) => `CPU ${c.cpu} ${c.count} (${c.totalMs.toFixed(1)} ms, longest ${c.maxMs.toFixed(1)})`).join(', ')}; ${(st.touchedShare * 100).toFixed(2)}% of requests met one; the others: p50 ${st.untouched.p50Ms.toFixed(2)} p99 ${st.untouched.p99Ms.toFixed(2)} ms`);
        }
        if (job.kind !== 'connections') log(`${name}:   p50/p99 ms by request: ${Object.entries(m.latencyByKind).map(([k, v]) => `${k} ${v.p50Ms.toFixed(2)}/${v.p99Ms.toFixed(2)}`).join(', ')}`);
        if (best === undefined || m.otherCores < best.otherCores) best = m;
      }
      l.rounds[job.kind].push(best!);
    } catch (err) {
      l.result.failure = (err as Error).message.split('\n')[0];
      log(`${name}: failed: ${(err as Error).message}\n${l.door.logs().slice(-2000)}`);
    } finally {
      const s = await backendStats(true);
      l.result.mismatches += s.mismatches;
      for (const sample of s.mismatchSamples) if (l.result.mismatchSamples.length < 5) l.result.mismatchSamples.push(sample);
      if (l.proxied ? s.viaTls > 0 : s.viaProxy > 0) {
        l.result.mismatches += 1;
        l.result.mismatchSamples.push(`requests arrived on the backend's ${l.proxied ? 'TLS' : 'plain'} listener`);
      }
    }
  };
  const job = (l: Live, kind: LoadJob['kind'], concurrency: number, rate?: number): LoadJob => ({ kind, port: l.door.port, ca, identities, concurrency, warmupMs: kind === 'paced' ? pacedWarmupMs : warmupMs, durationMs, rate, client });
  const median = (ms: Measured[], key: (m: Measured) => number): Measured | undefined => [...ms].sort((a, b) => key(a) - key(b))[Math.floor(ms.length / 2)];

  for (let round = 1; round <= rounds && phases.has('keepalive'); round++) {
    for (const l of live) await measure(l, `round ${round}/${rounds}, keep-alive, ${concurrency} in flight`, job(l, 'keepalive', concurrency));
  }
  for (const l of live) l.result.keepAlive = median(l.rounds.keepalive, (m) => m.perSec);
  // Latency is compared at half of ringmaster's maximum; nginx's stands in when ringmaster could not be measured.
  for (const from of ['ringmaster', 'nginx']) {
    const max = live.find((l) => l.result.name === from && !l.result.failure)?.result.keepAlive?.perSec;
    if (pacedRate === undefined && max !== undefined) pacedRate = { rate: Math.max(1, Math.round(max / 2)), from };
  }
  const rate = pacedRate?.rate;
  for (let round = 1; round <= rounds && rate !== undefined && phases.has('paced'); round++) {
    for (const l of live) await measure(l, `round ${round}/${rounds}, paced at ${rate}/s`, job(l, 'paced', pacedConcurrency, rate));
  }
  for (const l of live) {
    l.result.paced = median(l.rounds.paced, (m) => m.latency.p99Ms);
    const metered = l.rounds.paced.filter((m) => m.stalls !== undefined);
    if (metered.length > 0) l.result.pacedOutsideStalls = median(metered, (m) => m.stalls!.untouched.p99Ms);
  }
  for (let round = 1; round <= rounds && phases.has('connections'); round++) {
    for (const l of live) await measure(l, `round ${round}/${rounds}, new TLS connection per request, ${connectionConcurrency} in flight`, job(l, 'connections', connectionConcurrency));
  }
  for (const l of live) {
    l.result.connections = median(l.rounds.connections, (m) => m.perSec);
    l.result.rounds = l.rounds;
  }
} finally {
  for (const stop of stops.reverse()) await stop();
  await rm?.cleanup();
  await backend.stop();
  await remove(tmp, { recursive: true, force: true });
}

const cpuList = cpus();
const machine = { cpuModel: cpuList[0]?.model ?? 'unknown', cores, memoryBytes: totalmem(), kernel: release(), node: process.version };
const params = {
  durationMs, warmupMs, pacedWarmupMs, client, backend: args.backend, concurrency, pacedConcurrency, connectionConcurrency, pacedRate: pacedRate ?? null, quick, quietWaitMs, attempts, rounds,
  mix: 'per 10 requests: 1 POST /puppet/v3/catalog (15 KB facts in, 50 KB out), 1 GET /puppet/v3/node (1 KB), 8 GET /puppet/v3/file_metadata (1 KB)',
  tls: 'agent certificates RSA-2048 from ringmaster\'s CA, one of 4 per connection; every front door presents ringmaster\'s server certificate',
};
const { text, markdown, ratios, checks } = renderGatewayReport({ date, machine, params, results });
process.stdout.write(`${text}\n`);
const outDir = join(repoRoot, 'bench', 'out');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'gateway.json'), `${JSON.stringify({ benchmark: 'gateway', date, machine, params, results, ratios, checks }, null, 2)}\n`);
await writeFile(join(outDir, 'gateway.md'), markdown);
process.stdout.write(`wrote ${join('bench', 'out', 'gateway.json')} and ${join('bench', 'out', 'gateway.md')}\n`);
process.exitCode = results.some((r) => r.failure || r.mismatches > 0 || (r.keepAlive?.errors ?? 0) + (r.paced?.errors ?? 0) + (r.connections?.errors ?? 0) > 0) ? 1 : 0;
