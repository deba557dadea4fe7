// ringmaster's footprint against nginx doing the same job (and a bare Node relay, the platform's
// floor), in one run: resident memory with many
// idle agent TLS connections open (agents between requests of a run, or a fleet behind a slow
// network), and CPU per thousand agent runs, each run on a new TLS connection (full handshake
// with a client certificate) carrying the ten requests of a run, proxied to the scripted backend.
//
//   npm run bench:footprint [-- --connections 10000 --runs 1000]      BENCH_QUICK=1 for a smoke run
//   --door-env KEY=VALUE (repeatable) sets an environment variable for the Node front doors only
//   (ringmaster and the bare relay, not nginx, the backend or the client), e.g. to weigh them with
//   another allocator: --door-env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
//   ringmaster runs with its defaults, which park idle connections out of OpenSSL
//   (listeners[].parkIdleAfter, parkAboveConnections); --park-idle-after and --park-above set
//   them otherwise. A second ringmaster with parking off (parkIdleAfter 0) is measured beside it
//   unless --no-unparked. Memory is read 2 s after the last connection is open and again after
//   --settle seconds (what stays once parking and the allocators have caught up); the peak is each
//   process's VmHWM.
import { mkdir, readFile, rm as remove, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendReply } from './lib/gateway-backend.ts';
import { ensurePackages, startNginx, type Door } from './lib/gateway-doors.ts';
import type { FootprintJob, FootprintReply } from './lib/footprint-client.ts';
import type { RelayReply, RelayStart } from './lib/gateway-node-relay.ts';
import { forkScript, nextMessage, treeCpuMs, treeRssKb, waitForQuiet } from './lib/gateway-procs.ts';
import { startBenchRingmaster } from './lib/bench-setup.ts';
import { makeTempDir } from '../test/helpers/puppet.ts';
import { repoRoot, type Ringmaster } from '../test/helpers/ringmaster.ts';

const quick = process.env.BENCH_QUICK === '1';
const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: quick ? '500' : '10000' },
    runs: { type: 'string', default: quick ? '100' : '1000' },
    concurrency: { type: 'string', default: '16' },
    'skip-install': { type: 'boolean', default: false },
    'door-env': { type: 'string', multiple: true, default: [] },
    'park-idle-after': { type: 'string' },
    'park-above': { type: 'string' },
    'no-unparked': { type: 'boolean', default: false },
    settle: { type: 'string', default: quick ? '8' : '20' },
  },
});
/** The listener settings the benchmark sets beyond ringmaster's defaults. */
const parking = {
  ...(args['park-idle-after'] === undefined ? {} : { parkIdleAfter: args['park-idle-after'] }),
  ...(args['park-above'] === undefined ? {} : { parkAboveConnections: Number(args['park-above']) }),
};
const parkingText = Object.keys(parking).length === 0 ? 'defaults' : Object.entries(parking).map(([k, v]) => `${k} ${v}`).join(', ');
const settleMs = Number(args.settle) * 1000;
const doorEnv = Object.fromEntries(
  args['door-env'].map((kv) => {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`--door-env wants KEY=VALUE, not ${JSON.stringify(kv)}`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);
/** Runs `start` with `doorEnv` in this process's environment, which the door it spawns inherits. */
async function withDoorEnv<T>(start: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(doorEnv).map((k) => [k, process.env[k]]));
  Object.assign(process.env, doorEnv);
  try {
    return await start();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
const connections = Number(args.connections);
const runsPerDoor = Number(args.runs);
const concurrency = Number(args.concurrency);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

type DoorFigures = {
  name: string;
  version: string;
  rssIdleMb: number;
  rssHeldMb: number;
  rssSettledMb: number;
  rssPeakMb: number;
  perConnectionKb: number;
  settledPerConnectionKb: number;
  held: number;
  holdFailed: number;
  runs: number;
  runsFailed: number;
  cpuSecondsPer1000Runs: number;
  backendCpuSecondsPer1000Runs: number;
  runsPerSecond: number;
  errors: string[];
  failure?: string;
};

const date = new Date().toISOString();
const unavailable = args['skip-install'] ? [] : ensurePackages(log);
const tmp = await makeTempDir('bench-footprint');
const backend = forkScript(join(import.meta.dirname, 'lib', 'gateway-backend.ts'));
const backendPid = backend.child.pid ?? -1;
const figures: DoorFigures[] = [];
let rm: Ringmaster | undefined;
const stops: (() => Promise<void>)[] = [];
try {
  const httpPort = await nextMessage<BackendReply, number>(backend.child, (m) => (m.op === 'listening' ? m.httpPort : undefined), 15_000);
  // Idle connections must outlive the measurement on both doors; everything else as in the gateway benchmark.
  const setup = await withDoorEnv(() => startBenchRingmaster(tmp, httpPort, { agents: 20, listeners: [{ name: 'agents', address: '127.0.0.1', port: 0, keepAliveTimeout: '30m', ...parking }] }));
  rm = setup.ringmaster;
  const ringmaster = rm;
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  type Measured = Door & { ca?: string; identities?: typeof setup.identities };
  const doors: (() => Promise<Measured>)[] = [
    () => Promise.resolve({ name: 'ringmaster', version: `ringmaster ${version} (parking: ${parkingText})`, port: ringmaster.port, pid: ringmaster.pid ?? -1, logs: () => ringmaster.logs(), stop: () => ringmaster.stop() }),
  ];
  if (!args['no-unparked']) {
    // The same ringmaster with parking off, every connection kept by OpenSSL: its own state directory and CA.
    doors.push(async () => {
      await mkdir(join(tmp, 'unparked'), { recursive: true });
      const unparked = await withDoorEnv(() => startBenchRingmaster(join(tmp, 'unparked'), httpPort, { agents: 20, listeners: [{ name: 'agents', address: '127.0.0.1', port: 0, keepAliveTimeout: '30m', parkIdleAfter: '0' }] }));
      const r = unparked.ringmaster;
      return { name: 'ringmaster-unparked', version: `ringmaster ${version}, parkIdleAfter 0`, port: r.port, pid: r.pid ?? -1, logs: () => r.logs(), stop: async () => { await r.stop(); await r.cleanup(); }, ca: unparked.ca, identities: unparked.identities };
    });
  }
  // The platform's floor: node:https relaying through ringmaster's upstream module, nothing else.
  doors.push(async () => {
    const relay = await withDoorEnv(() => forkScript(join(import.meta.dirname, 'lib', 'gateway-node-relay.ts')));
    const port = nextMessage<RelayReply, number>(relay.child, (m) => (m.op === 'listening' ? m.port : undefined), 15_000);
    relay.child.send({ op: 'start', backendUrl: `http://127.0.0.1:${httpPort}`, key: setup.serverKey, cert: setup.serverChain, ca: setup.ca, crl: setup.crl, keepAliveTimeoutMs: 30 * 60_000 } satisfies RelayStart);
    return { name: 'node-relay', version: `node:https + undici relay ${process.version}`, port: await port, pid: relay.child.pid ?? -1, logs: () => '', stop: () => relay.stop() };
  });
  if (!unavailable.some((b) => b.endsWith('nginx'))) doors.push(() => startNginx(join(tmp, 'nginx'), setup.tlsFiles, httpPort, { workerConnections: connections + 1024, keepaliveTimeout: '30m' }));

  for (const start of doors) {
    const door = await start();
    stops.push(() => door.stop());
    const f: DoorFigures = { name: door.name, version: door.version, rssIdleMb: 0, rssHeldMb: 0, rssSettledMb: 0, rssPeakMb: 0, perConnectionKb: 0, settledPerConnectionKb: 0, held: 0, holdFailed: 0, runs: 0, runsFailed: 0, cpuSecondsPer1000Runs: 0, backendCpuSecondsPer1000Runs: 0, runsPerSecond: 0, errors: [] };
    figures.push(f);
    const client = forkScript(join(import.meta.dirname, 'lib', 'footprint-client.ts'));
    const ask = <T extends FootprintReply['op']>(job: FootprintJob, op: T, timeoutMs: number) => {
      const answer = nextMessage<FootprintReply, Extract<FootprintReply, { op: T }>>(client.child, (m) => (m.op === op ? (m as Extract<FootprintReply, { op: T }>) : undefined), timeoutMs);
      client.child.send(job);
      return answer;
    };
    try {
      const base = { port: door.port, ca: door.ca ?? setup.ca, identities: door.identities ?? setup.identities };
      // A few runs first, so the door has its upstream connections and JIT warm before it is weighed.
      await ask({ op: 'runs', ...base, runs: 50, concurrency }, 'ran', 120_000);
      await waitForQuiet({ maxWaitMs: 30_000 });
      const idle = treeRssKb(door.pid);
      log(`${door.name}: opening ${connections} agent connections`);
      const h = await ask({ op: 'hold', ...base, count: connections, concurrency: 64 }, 'holding', 30 * 60_000);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const heldKb = treeRssKb(door.pid);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, settleMs - 2_000)));
      const settledKb = treeRssKb(door.pid);
      const open = Math.max(1, h.open);
      Object.assign(f, { rssIdleMb: idle / 1024, rssHeldMb: heldKb / 1024, rssSettledMb: settledKb / 1024, rssPeakMb: treeRssKb(door.pid, 'VmHWM') / 1024, perConnectionKb: (heldKb - idle) / open, settledPerConnectionKb: (settledKb - idle) / open, held: h.open, holdFailed: h.failed });
      f.errors.push(...h.errors);
      log(`${door.name}: ${h.open} open (${h.failed} failed) in ${(h.ms / 1000).toFixed(1)} s; RSS ${(idle / 1024).toFixed(0)} MB idle → ${(heldKb / 1024).toFixed(0)} MB, ${(settledKb / 1024).toFixed(0)} MB after ${args.settle} s`);
      await ask({ op: 'release' }, 'released', 60_000);
      await waitForQuiet({ maxWaitMs: 30_000 });
      const cpu0 = treeCpuMs(door.pid);
      const b0 = treeCpuMs(backendPid);
      const r = await ask({ op: 'runs', ...base, runs: runsPerDoor, concurrency }, 'ran', 30 * 60_000);
      const cpuMs = treeCpuMs(door.pid) - cpu0;
      const backendMs = treeCpuMs(backendPid) - b0;
      Object.assign(f, { runs: r.runs, runsFailed: r.failed, cpuSecondsPer1000Runs: cpuMs / r.runs, backendCpuSecondsPer1000Runs: backendMs / r.runs, runsPerSecond: (r.runs * 1000) / r.ms });
      f.errors.push(...r.errors);
      log(`${door.name}: ${r.runs} runs (${r.failed} failed) in ${(r.ms / 1000).toFixed(1)} s; ${(cpuMs / r.runs).toFixed(2)} CPU s per 1000 runs`);
    } catch (err) {
      f.failure = (err as Error).message.split('\n')[0];
      log(`${door.name}: failed: ${(err as Error).message}\n${door.logs().slice(-2000)}`);
    } finally {
      await client.stop();
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop();
  await rm?.cleanup();
  await backend.stop();
  await remove(tmp, { recursive: true, force: true });
}

const machine = { cpuModel: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memoryBytes: totalmem(), kernel: release(), node: process.version };
const nginx = figures.find((f) => f.name === 'nginx' && !f.failure);
const rmF = figures.find((f) => f.name === 'ringmaster' && !f.failure);
const checks = [
  { what: `ringmaster (parking: ${parkingText}) RSS with ${connections} idle agent connections, ${args.settle} s after the last opened, MB`, value: rmF ? Math.round(rmF.rssSettledMb) : null, target: '< 300', pass: rmF ? rmF.rssSettledMb < 300 && rmF.held === connections : null },
];
const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const rows = figures.map((f) => `| ${f.version} | ${f.failure ? `failed: ${f.failure}` : `${fmt(f.rssIdleMb)} → ${fmt(f.rssHeldMb)} → ${fmt(f.rssSettledMb)}`} | ${fmt(f.rssPeakMb)} | ${fmt(f.perConnectionKb, 1)} / ${fmt(f.settledPerConnectionKb, 1)} | ${f.held} (${f.holdFailed} failed) | ${fmt(f.cpuSecondsPer1000Runs, 2)} | ${nginx ? fmt(f.cpuSecondsPer1000Runs / nginx.cpuSecondsPer1000Runs, 2) : '—'} | ${fmt(f.backendCpuSecondsPer1000Runs, 2)} | ${fmt(f.runsPerSecond, 1)} | ${f.runsFailed} |`);
const markdown = [
  `## Footprint: ringmaster and nginx`,
  '',
  `${date}; ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${machine.kernel}, Node ${machine.node}${quick ? '; QUICK smoke run, not a measurement' : ''}${args['door-env'].length > 0 ? `; Node doors run with ${args['door-env'].join(' ')}` : ''}`,
  '',
  `${connections} idle agent connections (each did one proxied request, then stays open); ${runsPerDoor} agent runs, ${concurrency} at a time, each on a new TLS connection (RSA-2048 client certificate, no session resumption) with 10 requests: node, catalog POST (15 KB facts, 50 KB catalog), 8 file_metadata.`,
  '',
  `| front door | RSS idle → with connections, 2 s → ${args.settle} s after the last (MB) | peak RSS (MB) | KB per connection, 2 s / ${args.settle} s | connections held | CPU s per 1000 runs | ÷ nginx | backend CPU s per 1000 runs | runs/s | failed runs |`,
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  '',
  ...checks.map((c) => `- ${c.what}: ${c.value ?? '—'} (target ${c.target}: ${c.pass === null ? 'not measured' : c.pass ? 'met' : 'NOT met'})`),
  '',
].join('\n');
process.stdout.write(`${markdown}\n`);
const outDir = join(repoRoot, 'bench', 'out');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'footprint.json'), `${JSON.stringify({ benchmark: 'footprint', date, machine, params: { connections, runs: runsPerDoor, concurrency, quick, doorEnv, parking, settleSeconds: Number(args.settle) }, figures, checks }, null, 2)}\n`);
await writeFile(join(outDir, 'footprint.md'), markdown);
process.exitCode = figures.some((f) => f.failure || f.runsFailed > 0 || f.holdFailed > 0) ? 1 : 0;
