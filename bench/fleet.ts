// Compile scheduling compared, in one run, on the same simulated fleet: ringmaster (default
// policy), ringmaster with round-robin, HAProxy in TCP mode with leastconn and with roundrobin (the
// Vox Pupuli and PE recommendation; the compilers terminate TLS), and nginx as an L7 proxy with
// least_conn. Six scenarios: (a) 4 equal compilers at 80% utilisation, (b) one compiler twice as
// slow, (c) one compiler restarted cold mid-run, (d) a herd starting within 10 s, (e) one
// compiler killed mid-run, (f) a rolling restart of every compiler through drain.
//
//   npm run bench:fleet [-- --scenarios a,b --doors ringmaster,haproxy-leastconn --duration 60 --seed 42]   BENCH_QUICK=1 for a smoke run
import { mkdir, rm as remove, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runFleet, restartAt, killAt, type FleetOptions, type ScenarioStep } from '../src/sim/fleet.ts';
import type { FleetResult } from '../src/sim/fleet-result.ts';
import { ringmasterFrontDoor, type FrontDoorFactory } from '../src/sim/front-door.ts';
import { testCa } from '../src/sim/testing.ts';
import { ensurePackages } from './lib/gateway-doors.ts';
import { haproxyDoor, nginxDoor, type FleetTls } from './lib/fleet-doors.ts';
import { makeTempDir } from '../test/helpers/puppet.ts';
import { repoRoot } from '../test/helpers/ringmaster.ts';

const quick = process.env.BENCH_QUICK === '1';
const { values: args } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'a,b,c,d,e,f' },
    doors: { type: 'string', default: 'ringmaster,ringmaster-round-robin,haproxy-leastconn,haproxy-roundrobin,nginx-least_conn' },
    duration: { type: 'string', default: quick ? '12' : '60' },
    seed: { type: 'string', default: '42' },
    'facts-mean': { type: 'string', default: '0' },
    'skip-install': { type: 'boolean', default: false },
  },
});
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const D = Number(args.duration) * 1000;
const seed = Number(args.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number, not "${args.seed}"`);

// Time is compressed about 5×, so that a scenario takes a minute: 4 compilers × 2 JRubies,
// compiles of 1 s on average with a long tail (p99 3 s) stand for compiles of a few seconds.
// The agents apply their catalog before they report, as real ones do: the apply takes several
// times the compile (4 s, p99 12 s: a package upgrade or a slow exec makes the tail) and asks for
// the metadata of 3 sourced files at random points of it, each one borrowing a JRuby like any
// /puppet/v3 request. The keep-alive stays Puppet's 4 s, not scaled: what matters is whether the
// gaps between an apply's requests stay under it, and a real apply of ~20 s with dozens of sourced
// files has gaps of about a second, as 3 files over 4 s have here; so, as in real life, the
// run's connection (and, behind an L4 balancer, the compiler chosen for it) lasts through most
// applies, and only the long ones reconnect. Compilers close connections idle for 30 s (Jetty).
// A run then lasts about 6 s (p99 ~20 s), so the interval is 40 s: a run ends well inside it,
// or Puppet's schedule would start the next one late.
// 80% utilisation (JRubies busy): 256 agents / 40 s = 6.4 runs/s × 1 s compile = 0.8 × 8 slots;
// the file, report and pluginsync requests add 5 × 3 ms per run, about 1%.
const base: Omit<FleetOptions, 'frontDoor'> = {
  agents: 256, compilers: 4, slots: 2, compile: { meanMs: 1000, p99Ms: 3000 }, intervalMs: 40_000, splayMs: 40_000,
  facts: { meanMs: Number(args['facts-mean']), p99Ms: Number(args['facts-mean']) * 3 }, apply: { meanMs: 4000, p99Ms: 12_000 }, sourcedFiles: 3, keepAliveMs: 4000, compilerIdleTimeoutMs: 30_000,
  durationMs: D, drainMs: 30_000, maxQueuedRequests: 0, maxRetryDelayS: 60, maxRetryAfterMs: 10_000, seed,
};
const warmupPeriodMs = D;

type Scenario = { id: string; title: string; options: Partial<FleetOptions>; steps?: (door: string) => ScenarioStep[] };

const rolling = (): ScenarioStep => ({
  atMs: Math.round(D * 0.15),
  name: 'rolling restart (drain, restart, enable, one compiler at a time)',
  run: async (ctx) => {
    for (const c of ctx.compilers) {
      await ctx.frontDoor.drain?.(c.name);
      await c.restart({ downMs: 1500, bootMs: 1500 });
      // Back when it serves again; the front door's own health checks find it too.
      for (let i = 0; i < 200 && c.state !== 'up'; i++) await new Promise((r) => setTimeout(r, 50));
      await ctx.frontDoor.enable?.(c.name);
    }
  },
});

const scenarios: Scenario[] = [
  { id: 'a', title: '4 equal compilers at 80% utilisation', options: {} },
  { id: 'b', title: 'one compiler twice as slow', options: { speeds: [2, 1, 1, 1] } },
  {
    id: 'c',
    title: `one compiler restarted cold mid-run (the fleet starts warm; compiler-2 restarted, ×3 compile time easing off over ${warmupPeriodMs / 1000} s)`,
    // Restarted compilers are 3–4× slower for minutes; only the restarted one is cold.
    options: { startWarm: true, warmup: { factor: 3, periodMs: warmupPeriodMs, shape: 'linear' } },
    steps: () => [restartAt(Math.round(D * 0.4), 'compiler-2', { downMs: 3000, bootMs: 5000 })],
  },
  { id: 'd', title: 'a herd: every agent starts within 10 s', options: { agents: quick ? 96 : 192, splayMs: 10_000, intervalMs: D * 10 } },
  { id: 'e', title: 'one compiler killed mid-run', options: {}, steps: () => [killAt(Math.round(D * 0.4), 'compiler-2')] },
  { id: 'f', title: 'rolling restart of every compiler through drain', options: {}, steps: () => [rolling()] },
  // Not in the default set: ringmaster's capacity.reserve (door ringmaster-reserve-1) against the
  // default, on compilers with 4 JRubies (with 2, a reserve of one halves compile capacity).
  // 16 JRubies at 70%: 448 agents / 40 s = 11.2 runs/s × 1 s compile.
  { id: 'g', title: '4 compilers × 4 JRubies at 70% utilisation', options: { slots: 4, agents: 448 } },
];

const date = new Date().toISOString();
const wantScenarios = new Set(args.scenarios.split(','));
const wantDoors = args.doors.split(',');
const missing = args['skip-install'] ? [] : ensurePackages(log);
const tmp = await makeTempDir('bench-fleet');
const ca = await testCa(200);
const tls: FleetTls = {
  caPem: ca.caPem, identities: ca.identities,
  caFile: join(tmp, 'ca.pem'), serverChainFile: join(tmp, 'chain.pem'), serverKeyFile: join(tmp, 'key.pem'),
};
await Promise.all([writeFile(tls.caFile, ca.caPem), writeFile(tls.serverChainFile, `${ca.server.cert.trim()}\n${ca.caPem}`), writeFile(tls.serverKeyFile, ca.server.key, { mode: 0o600 })]);

type DoorPlan = { name: string; l4: boolean; factory: (dir: string) => FrontDoorFactory };
const doorPlans: DoorPlan[] = [
  { name: 'ringmaster', l4: false, factory: () => ringmasterFrontDoor({ pool: { healthCheck: { active: { interval: '1s', timeout: '1s' } } } }) },
  { name: 'ringmaster-round-robin', l4: false, factory: () => ringmasterFrontDoor({ pool: { policy: 'round-robin', healthCheck: { active: { interval: '1s', timeout: '1s' } } } }) },
  { name: 'ringmaster-reserve-1', l4: false, factory: () => ringmasterFrontDoor({ pool: { capacity: { reserve: 1 }, healthCheck: { active: { interval: '1s', timeout: '1s' } } } }) },
  { name: 'haproxy-leastconn', l4: true, factory: (dir) => haproxyDoor(dir, tls, 'leastconn') },
  { name: 'haproxy-roundrobin', l4: true, factory: (dir) => haproxyDoor(dir, tls, 'roundrobin') },
  { name: 'nginx-least_conn', l4: false, factory: (dir) => nginxDoor(dir, tls) },
];

type Row = {
  scenario: string; door: string; completed: number; failed: number; failureReasons: Record<string, number>; catalogP50: number | null; catalogP99: number | null;
  catalogWithWaitsP99: number | null; pluginsyncP99: number | null; toCatalogP50: number | null; toCatalogP99: number | null; herdDrainMs: number | null; retryAfterWaits: number;
  /** Busy JRuby share per compiler over the whole run, drain included, and while runs start (the first D seconds, what the 80% is planned for). */
  utilisation: number[]; utilisationWhileStarting: number[];
  runP99: number | null; longerThanInterval: number; connectionsPerRun: number | null; error?: string;
};
const rows: Row[] = [];
/** Mean of the samples' busy share up to the duration: the drain after it (long, with applies) would dilute the figure. */
const windowUtilisation = (r: FleetResult): number[] => {
  const during = r.samples.filter((x) => x.t <= D);
  return r.members.map((_, i) => Math.round((during.reduce((a, x) => a + (x.util[i] ?? 0), 0) / Math.max(1, during.length)) * 100) / 100);
};
const results: Record<string, FleetResult> = {};
try {
  for (const s of scenarios.filter((x) => wantScenarios.has(x.id))) {
    for (const plan of doorPlans.filter((p) => wantDoors.includes(p.name))) {
      if ((plan.name.startsWith('haproxy') && missing.some((m) => m.endsWith('haproxy'))) || (plan.name.startsWith('nginx') && missing.some((m) => m.endsWith('nginx')))) continue;
      log(`(${s.id}) ${s.title}: ${plan.name}`);
      try {
        const r = await runFleet({
          ...base,
          ...s.options,
          scenario: s.steps?.(plan.name) ?? [],
          frontDoor: plan.factory(join(tmp, `${s.id}-${plan.name}`)),
          ...(plan.l4 ? { compilerTls: { key: ca.server.key, cert: ca.server.cert, ca: ca.caPem } } : {}),
        });
        results[`${s.id}/${plan.name}`] = r;
        rows.push({
          scenario: s.id, door: plan.name, completed: r.runs.ok, failed: r.runs.failed, failureReasons: r.runs.failureReasons,
          catalogP50: r.catalog.p50Ms, catalogP99: r.catalog.p99Ms, catalogWithWaitsP99: r.catalogWithWaits.p99Ms,
          pluginsyncP99: r.pluginsync.p99Ms, toCatalogP50: r.toCatalog.p50Ms, toCatalogP99: r.toCatalog.p99Ms, herdDrainMs: r.herdDrainMs,
          retryAfterWaits: r.retryAfter.waits, utilisation: r.members.map((m) => Math.round(m.utilisation * 100) / 100),
          utilisationWhileStarting: windowUtilisation(r),
          runP99: r.runDuration.p99Ms, longerThanInterval: r.runs.longerThanInterval, connectionsPerRun: r.connectionsPerRun.mean,
        });
        log(`  runs ok ${r.runs.ok} failed ${r.runs.failed}; catalog p50 ${r.catalog.p50Ms} p99 ${r.catalog.p99Ms} ms; herd ${r.herdDrainMs ?? '—'} ms; Retry-After waits ${r.retryAfter.waits}`);
      } catch (err) {
        rows.push({
          scenario: s.id, door: plan.name, completed: 0, failed: 0, failureReasons: {}, catalogP50: null, catalogP99: null, catalogWithWaitsP99: null, pluginsyncP99: null, toCatalogP50: null, toCatalogP99: null, herdDrainMs: null,
          retryAfterWaits: 0, utilisation: [], utilisationWhileStarting: [], runP99: null, longerThanInterval: 0, connectionsPerRun: null, error: (err as Error).message.split('\n')[0],
        });
        log(`  failed: ${(err as Error).message}`);
      }
    }
  }
} finally {
  await ca.cleanup();
  await remove(tmp, { recursive: true, force: true });
}

// The expectations: catalog p99 at most 0.7 of HAProxy leastconn's in (a), 0.5 in (b) and (c);
// zero failed runs in (d), (e) and (f).
const row = (s: string, d: string) => rows.find((r) => r.scenario === s && r.door === d && !r.error);
const checks = [
  ...(['a', 'b', 'c'] as const).map((s) => {
    const limit = s === 'a' ? 0.7 : 0.5;
    const rmP = row(s, 'ringmaster')?.catalogP99;
    const hP = row(s, 'haproxy-leastconn')?.catalogP99;
    const ratio = rmP != null && hP != null && hP > 0 ? Math.round((rmP / hP) * 100) / 100 : null;
    return { what: `(${s}) ringmaster catalog p99 ÷ HAProxy leastconn's`, value: ratio, target: `≤ ${limit}`, pass: ratio === null ? null : ratio <= limit };
  }),
  ...(['d', 'e', 'f'] as const).map((s) => {
    const r = row(s, 'ringmaster');
    return { what: `(${s}) ringmaster failed runs`, value: r ? r.failed : null, target: '0', pass: r ? r.failed === 0 : null };
  }),
];
const fmt = (n: number | null | undefined) => (n === null || n === undefined ? '—' : String(Math.round(n)));
const machine = { cpuModel: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memoryBytes: totalmem(), kernel: release(), node: process.version };
const md = [
  '## Fleet: compile scheduling against HAProxy and nginx',
  '',
  `${date}; ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${machine.node}${quick ? '; QUICK smoke run, not a measurement' : ''}`,
  '',
  `Simulated fleet: ${base.compilers} compilers × ${base.slots} JRubies, compile time log-normal (mean ${base.compile.meanMs} ms, p99 ${base.compile.p99Ms} ms), ${base.agents} agents every ${base.intervalMs / 1000} s (splay ${base.splayMs / 1000} s), ${D / 1000} s per scenario, seed ${seed}; agents honour Retry-After (capped at ${(base.maxRetryAfterMs ?? 0) / 1000} s).`,
  `Each run: pluginsync, catalog, then an apply of ${base.apply?.meanMs ?? 0} ms mean (p99 ${base.apply?.p99Ms ?? 0} ms, log-normal) with ${base.sourcedFiles ?? '2–3'} file_metadata requests at random points, then the report; agents keep a connection while it is idle at most ${(base.keepAliveMs ?? 4000) / 1000} s (http_keepalive_timeout) and close it at the end of the run; compilers close connections idle ${(base.compilerIdleTimeoutMs ?? 30_000) / 1000} s. Planned utilisation ${Math.round(((base.agents / (base.intervalMs / 1000)) * (base.compile.meanMs / 1000) / (base.compilers * base.slots)) * 100)}% of the JRubies.`,
  '',
  ...scenarios.filter((s) => wantScenarios.has(s.id)).flatMap((s) => [
    `### (${s.id}) ${s.title}`,
    '',
    '| front door | runs ok | runs failed | catalog p50 (ms) | catalog p99 (ms) | p99 with 503 waits (ms) | pluginsync p99 (ms) | run start to catalog p50 / p99 (ms) | herd served (ms) | Retry-After waits | run p99 (ms) | runs > interval | connections per run | utilisation per compiler while runs start (whole run) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.filter((r) => r.scenario === s.id).map((r) => (r.error
      ? `| ${r.door} | failed: ${r.error} ||||||||||||| `
      : `| ${r.door} | ${r.completed} | ${r.failed}${r.failed > 0 ? ` (${Object.entries(r.failureReasons).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''} | ${fmt(r.catalogP50)} | ${fmt(r.catalogP99)} | ${fmt(r.catalogWithWaitsP99)} | ${fmt(r.pluginsyncP99)} | ${fmt(r.toCatalogP50)} / ${fmt(r.toCatalogP99)} | ${fmt(r.herdDrainMs)} | ${r.retryAfterWaits} | ${fmt(r.runP99)} | ${r.longerThanInterval} | ${r.connectionsPerRun ?? '—'} | ${r.utilisationWhileStarting.join(' / ')} (${r.utilisation.join(' / ')}) |`)),
    '',
  ]),
  ...checks.map((c) => `- ${c.what}: ${c.value ?? '—'} (target ${c.target}: ${c.pass === null ? 'not measured' : c.pass ? 'met' : 'NOT met'})`),
  '',
].join('\n');
process.stdout.write(`${md}\n`);
const outDir = join(repoRoot, 'bench', 'out');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'fleet.json'), `${JSON.stringify({ benchmark: 'fleet', date, machine, base, rows, checks, results }, null, 2)}\n`);
await writeFile(join(outDir, 'fleet.md'), md);
process.exitCode = rows.some((r) => r.error) ? 1 : 0;
