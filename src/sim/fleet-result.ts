import type { RunRecord } from './agents.ts';
import type { SimCompilerStats } from './compiler.ts';
import type { Warmup } from './distributions.ts';
import type { CapacityPlan } from './plan.ts';
import { logHistogram, summarise, type HistogramBucket, type LatencySummary } from './stats.ts';

// The result of a fleet simulation: plain JSON (fleet.json), everything the HTML report draws,
// and what a benchmark compares between front doors. Times in samples and events are
// milliseconds since the fleet started.

export type FleetParameters = {
  frontDoor: string;
  agents: number;
  compilers: number;
  slots: number;
  compile: { meanMs: number; p99Ms: number };
  requestMs: number;
  intervalMs: number;
  splayMs: number;
  durationMs: number;
  drainMs: number;
  seed: number;
  identities: number;
  maxQueuedRequests: number;
  maxRetryDelayS: number;
  maxRetryAfterMs: number;
  warmup: Warmup;
  /** Compilers started warm: only restarts went through the warm-up. */
  startWarm: boolean;
  compilerIdleTimeoutMs: number;
  /** The agents' fact resolution between pluginsync and catalog; a mean of 0 is none. */
  facts: { meanMs: number; p99Ms: number };
  /** The agents' apply; a mean of 0 is none. */
  apply: { meanMs: number; p99Ms: number };
  /** file_metadata requests per run; null is 2 or 3 at random. */
  sourcedFiles: number | null;
  /** Agents' http_keepalive_timeout. */
  keepAliveMs: number;
  speeds: number[];
  scenario: { atMs: number; name: string }[];
};

export type FleetSample = {
  t: number;
  /** Per member, in the order of `members`. */
  busy: number[];
  queued: number[];
  /** Share of the member's slots busy since the previous sample, 0..1. */
  util: number[];
  up: boolean[];
  /** The front door's own queue and what it has in flight (0 when it cannot tell). */
  doorQueued: number;
  doorInFlight: number;
  ok: number;
  failed: number;
  running: number;
  retryAfterWaits: number;
};

export type FleetMemberResult = {
  name: string;
  port: number;
  slots: number;
  speed: number;
  /** Catalogs the simulated compiler compiled. */
  catalogs: number;
  /** Catalogs agents received from it (X-Sim-Compiler). */
  catalogsServed: number;
  requests: SimCompilerStats['requests'];
  /** Busy slot time over slots × elapsed time. */
  utilisation: number;
  maxBusy: number;
  rejected: number;
  restarts: number;
};

export type FleetResult = {
  startedAt: string;
  elapsedMs: number;
  parameters: FleetParameters;
  runs: {
    completed: number; ok: number; failed: number; failureReasons: Record<string, number>; agentsWithFirstRun: number;
    /** Runs that took longer than the run interval, so the agent's next run started late. */
    longerThanInterval: number;
  };
  /** Whole runs, start to end, of the runs that succeeded. */
  runDuration: LatencySummary;
  /** The apply of the runs that succeeded (work and file requests); empty without an apply. */
  apply: LatencySummary;
  /** TCP connections agents opened per run. */
  connectionsPerRun: { mean: number | null; max: number | null };
  /** Catalog requests that succeeded, the attempt that succeeded. */
  catalog: LatencySummary & { histogram: HistogramBucket[] };
  /** The same including Retry-After waits and refused attempts. */
  catalogWithWaits: LatencySummary;
  /** Pluginsync requests (they borrow a JRuby, so behind an L4 balancer they wait behind compiles too). */
  pluginsync: LatencySummary;
  /** From a run's start to its catalog: pluginsync, facts, the catalog, and every wait among them. */
  toCatalog: LatencySummary;
  /** Time until every agent's first run had finished (the herd of first runs served); null if some never did. */
  herdDrainMs: number | null;
  retryAfter: { waits: number; waitMs: number; runsAffected: number };
  members: FleetMemberResult[];
  samples: FleetSample[];
  events: { t: number; name: string }[];
  plan: CapacityPlan;
};

export type ResultInput = {
  startedAt: number;
  elapsedMs: number;
  parameters: FleetParameters;
  records: readonly RunRecord[];
  members: { stats: SimCompilerStats; port: number; speed: number }[];
  samples: FleetSample[];
  events: { t: number; name: string }[];
  plan: CapacityPlan;
};

export function buildFleetResult(i: ResultInput): FleetResult {
  const ok = i.records.filter((r) => r.ok);
  const failureReasons: Record<string, number> = {};
  for (const r of i.records) if (!r.ok) failureReasons[r.reason ?? 'unknown'] = (failureReasons[r.reason ?? 'unknown'] ?? 0) + 1;
  const catalogs = i.records.flatMap((r) => (r.catalogMs === undefined ? [] : [r.catalogMs]));
  const served = new Map<string, number>();
  for (const r of i.records) if (r.compiler !== undefined) served.set(r.compiler, (served.get(r.compiler) ?? 0) + 1);
  const firstRuns = i.records.filter((r) => r.run === 1);
  const agents = i.parameters.agents;
  const herdDrainMs = firstRuns.length === agents && agents > 0 ? Math.max(...firstRuns.map((r) => r.end)) - i.startedAt : null;
  const waited = i.records.filter((r) => r.retryAfterWaits > 0);
  const connections = summarise(i.records.map((r) => r.connections));
  return {
    startedAt: new Date(i.startedAt).toISOString(),
    elapsedMs: i.elapsedMs,
    parameters: i.parameters,
    runs: {
      completed: i.records.length, ok: ok.length, failed: i.records.length - ok.length, failureReasons, agentsWithFirstRun: firstRuns.length,
      longerThanInterval: i.records.filter((r) => r.end - r.start > i.parameters.intervalMs).length,
    },
    runDuration: summarise(ok.map((r) => r.end - r.start)),
    apply: summarise(ok.flatMap((r) => (r.applyMs === undefined ? [] : [r.applyMs]))),
    connectionsPerRun: { mean: connections.meanMs, max: connections.maxMs },
    catalog: { ...summarise(catalogs), histogram: logHistogram(catalogs) },
    catalogWithWaits: summarise(i.records.flatMap((r) => (r.catalogTotalMs === undefined ? [] : [r.catalogTotalMs]))),
    pluginsync: summarise(i.records.flatMap((r) => (r.pluginsyncMs === undefined ? [] : [r.pluginsyncMs]))),
    toCatalog: summarise(i.records.flatMap((r) => (r.toCatalogMs === undefined ? [] : [r.toCatalogMs]))),
    herdDrainMs,
    retryAfter: { waits: waited.reduce((a, r) => a + r.retryAfterWaits, 0), waitMs: waited.reduce((a, r) => a + r.retryAfterWaitMs, 0), runsAffected: waited.length },
    members: i.members.map(({ stats: s, port, speed }) => ({
      name: s.name, port, slots: s.slots, speed, catalogs: s.catalogs, catalogsServed: served.get(s.name) ?? 0, requests: s.requests,
      utilisation: i.elapsedMs > 0 ? s.busySlotMs / (s.slots * i.elapsedMs) : 0, maxBusy: s.maxBusy, rejected: s.rejected, restarts: s.restarts,
    })),
    samples: i.samples,
    events: i.events,
    plan: i.plan,
  };
}
