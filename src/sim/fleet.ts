import { systemClock, type Clock, type TimerHandle } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { errorMessage, RingmasterError } from '../lib/errors.ts';
import { AgentFleet, type RunRecord } from './agents.ts';
import type { ApplyOptions } from './apply.ts';
import { SimCompiler, type RestartOptions, type SimCompilerOptions, type SimCompilerStats } from './compiler.ts';
import { requestKinds } from './puppet-routes.ts';
import { noWarmup, type Warmup } from './distributions.ts';
import { buildFleetResult, type FleetParameters, type FleetResult, type FleetSample } from './fleet-result.ts';
import { ringmasterFrontDoor, type FrontDoor, type FrontDoorFactory } from './front-door.ts';
import { maxIdentities } from './identities.ts';
import { planCapacity } from './plan.ts';

// A whole simulated fleet on loopback: C simulated compilers, a front door (ringmaster in this
// process unless another is given), N agents, a sampler every quarter second and scenario steps
// (restart compiler 2 at 30 s, …). Everything it starts it stops, whatever happens.

export type FleetContext = {
  compilers: readonly SimCompiler[];
  /** The compiler of that name; throws if there is none. */
  compiler(name: string): SimCompiler;
  frontDoor: FrontDoor;
  agents: AgentFleet;
  elapsedMs(): number;
};

export type ScenarioStep = { atMs: number; name: string; run: (ctx: FleetContext) => void | Promise<void> };

export type FleetProgress = { elapsedMs: number; durationMs: number; ok: number; failed: number; running: number; phase: 'running' | 'draining' };

export type FleetOptions = {
  agents: number;
  compilers: number;
  /** JRuby slots per compiler. */
  slots: number;
  compile: { meanMs: number; p99Ms: number };
  /** Slot time of requests other than catalogs. Default 3 ms. */
  requestMs?: number;
  intervalMs: number;
  splayMs: number;
  /** No run starts after this. */
  durationMs: number;
  /** How long runs in progress at the end of the duration may take before they are cut off. Default 60 s. */
  drainMs?: number;
  seed?: number;
  /** Certificates issued for the agents (agent i uses i mod this). Default: agents, at most 200. */
  identities?: number;
  maxQueuedRequests?: number;
  /** Default 60 s: puppetserver's 1800 would make a short simulation nothing but waiting. */
  maxRetryDelayS?: number;
  /** Cap on one Retry-After wait of an agent. Default: the run interval. */
  maxRetryAfterMs?: number;
  warmup?: Warmup;
  /** Compilers start warm and only restarts go through the warm-up (one compiler restarted in a warm fleet). Default false: every compiler starts cold. */
  startWarm?: boolean;
  /** Compilers' Jetty idle timeout. Default 30 s. */
  compilerIdleTimeoutMs?: number;
  /** The agents' fact resolution between pluginsync and catalog. Default none. */
  facts?: ApplyOptions;
  /** The agents' apply between catalog and report. Default none. */
  apply?: ApplyOptions;
  /** file_metadata requests per run during the apply. Default 2 or 3 at random. */
  sourcedFiles?: number;
  /** Agents' http_keepalive_timeout. Default 4 s. */
  keepAliveMs?: number;
  /** Speed factor per compiler (2 = twice as slow); missing ones are 1. */
  speeds?: number[];
  factsBytes?: number;
  catalogBytes?: number;
  requestTimeoutMs?: number;
  sampleIntervalMs?: number;
  scenario?: ScenarioStep[];
  /** Default: ringmaster in this process with a pool of the compilers (default policy). */
  frontDoor?: FrontDoorFactory;
  /**
   * Compilers the caller started and keeps running, e.g. to put several front doors in turn before
   * the same ones; `compilers` and `slots` are then taken from them, and the compiler settings here
   * only describe them in the result. Their figures in the result count from this run's start.
   */
  sharedCompilers?: readonly SimCompiler[];
  /** Serve the compilers over HTTPS with client certificates (for an L4 front door). */
  compilerTls?: SimCompilerOptions['tls'];
  /** Target utilisation of the capacity plan in the result. Default 0.7. */
  targetUtilisation?: number;
  onProgress?: (p: FleetProgress) => void;
  /** Ends the simulation early (runs in progress are dropped); the result covers what happened until then. */
  signal?: AbortSignal;
};

/** A scenario step restarting one compiler (cold, on the same port). */
export function restartAt(atMs: number, compiler: string, o: RestartOptions = {}): ScenarioStep {
  return { atMs, name: `restart ${compiler}`, run: (ctx) => ctx.compiler(compiler).restart(o) };
}

/** A scenario step killing one compiler for good. */
export function killAt(atMs: number, compiler: string): ScenarioStep {
  return { atMs, name: `kill ${compiler}`, run: (ctx) => ctx.compiler(compiler).kill() };
}

/** The growth of a compiler's counters since `base` (maxBusy stays the all-time figure). */
function since(now: SimCompilerStats, base: SimCompilerStats | undefined): SimCompilerStats {
  if (!base) return now;
  const requests = Object.fromEntries(requestKinds.map((k) => [k, now.requests[k] - base.requests[k]])) as SimCompilerStats['requests'];
  return { ...now, requests, catalogs: now.catalogs - base.catalogs, busySlotMs: now.busySlotMs - base.busySlotMs, rejected: now.rejected - base.rejected, restarts: now.restarts - base.restarts };
}

function parametersOf(o: FleetOptions, frontDoor: string): FleetParameters {
  return {
    frontDoor, agents: o.agents, compilers: o.compilers, slots: o.slots, compile: o.compile, requestMs: o.requestMs ?? 3, intervalMs: o.intervalMs,
    splayMs: o.splayMs, durationMs: o.durationMs, drainMs: o.drainMs ?? 60_000, seed: o.seed ?? 1, identities: o.identities ?? Math.min(o.agents, maxIdentities),
    maxQueuedRequests: o.maxQueuedRequests ?? 0, maxRetryDelayS: o.maxRetryDelayS ?? 60, maxRetryAfterMs: o.maxRetryAfterMs ?? o.intervalMs,
    warmup: o.warmup ?? noWarmup, startWarm: o.startWarm ?? false, compilerIdleTimeoutMs: o.compilerIdleTimeoutMs ?? 30_000,
    facts: o.facts ?? { meanMs: 0, p99Ms: 0 }, apply: o.apply ?? { meanMs: 0, p99Ms: 0 }, sourcedFiles: o.sourcedFiles ?? null, keepAliveMs: o.keepAliveMs ?? 4000, speeds: Array.from({ length: o.compilers }, (_, i) => o.speeds?.[i] ?? 1),
    scenario: (o.scenario ?? []).map((s) => ({ atMs: s.atMs, name: s.name })),
  };
}

export async function runFleet(options: FleetOptions, deps: { clock?: Clock } = {}): Promise<FleetResult> {
  const clock = deps.clock ?? systemClock;
  const shared = options.sharedCompilers;
  const o: FleetOptions = shared && shared.length > 0 ? { ...options, compilers: shared.length, slots: shared[0]!.stats().slots } : options;
  for (const [k, v] of Object.entries({ agents: o.agents, compilers: o.compilers, slots: o.slots })) {
    if (!Number.isInteger(v) || v < 1) throw new RingmasterError('RM_CONFIG_INVALID', `fleet: ${k} must be a whole number from 1, not ${v}`);
  }
  const params = parametersOf(o, 'ringmaster');
  const seed = params.seed;
  const plan = planCapacity({ nodes: o.agents, intervalMs: o.intervalMs, compileMs: o.compile.meanMs, slotsPerCompiler: o.slots, targetUtilisation: o.targetUtilisation });
  const compilers: SimCompiler[] = [...(shared ?? [])];
  let door: FrontDoor | undefined;
  let fleet: AgentFleet | undefined;
  const timers: TimerHandle[] = [];
  let sampler: TimerHandle | undefined;
  try {
    for (let i = compilers.length; i < o.compilers; i++) {
      compilers.push(await SimCompiler.start({
        name: `compiler-${i + 1}`, slots: o.slots, compile: o.compile, requestMs: params.requestMs, speed: params.speeds[i], warmup: params.warmup,
        startWarm: params.startWarm, idleTimeoutMs: params.compilerIdleTimeoutMs,
        maxQueuedRequests: params.maxQueuedRequests, maxRetryDelayS: params.maxRetryDelayS, catalogBytes: o.catalogBytes, tls: o.compilerTls,
      }, { clock, random: seededRandom(seed * 1000 + i + 1) }));
    }
    door = await (o.frontDoor ?? ringmasterFrontDoor())({ compilers, identities: params.identities, random: seededRandom(seed * 1000 + 999) });
    params.frontDoor = door.name;
    const frontDoor = door;

    const startedAt = clock.now();
    const base = shared ? compilers.map((c) => c.stats()) : undefined;
    const agents = AgentFleet.start({
      target: door.target, identities: door.identities, agents: o.agents, intervalMs: o.intervalMs, splayMs: o.splayMs, durationMs: o.durationMs,
      maxRetryAfterMs: params.maxRetryAfterMs, requestTimeoutMs: o.requestTimeoutMs, factsBytes: o.factsBytes,
      facts: o.facts, apply: o.apply, sourcedFiles: o.sourcedFiles, keepAliveMs: params.keepAliveMs,
    }, { clock, random: seededRandom(seed) });
    fleet = agents;
    const counts = { ok: 0, failed: 0, retryAfterWaits: 0 };
    agents.onRun((r: RunRecord) => {
      counts[r.ok ? 'ok' : 'failed'] += 1;
      counts.retryAfterWaits += r.retryAfterWaits;
    });

    const events: { t: number; name: string }[] = [];
    const ctx: FleetContext = {
      compilers,
      compiler: (name) => compilers.find((c) => c.name === name) ?? fail(`no compiler named ${name} (there are ${compilers.map((c) => c.name).join(', ')})`),
      frontDoor,
      agents,
      elapsedMs: () => clock.now() - startedAt,
    };
    for (const step of o.scenario ?? []) {
      timers.push(clock.setTimeout(() => {
        events.push({ t: clock.now() - startedAt, name: step.name });
        Promise.resolve()
          .then(() => step.run(ctx))
          .catch((err: unknown) => events.push({ t: clock.now() - startedAt, name: `${step.name} failed: ${errorMessage(err)}` }));
      }, step.atMs));
    }

    const samples: FleetSample[] = [];
    let previous = { t: 0, busy: compilers.map((_, i) => base?.[i]?.busySlotMs ?? 0) };
    const sample = (): void => {
      const t = clock.now() - startedAt;
      const stats = compilers.map((c) => c.stats());
      const dt = Math.max(1, t - previous.t);
      const view = frontDoor.observe?.();
      samples.push({
        t,
        busy: stats.map((s) => s.busy),
        queued: stats.map((s) => s.queued),
        util: stats.map((s, i) => Math.min(1, Math.max(0, (s.busySlotMs - (previous.busy[i] ?? 0)) / (dt * s.slots)))),
        up: stats.map((s) => s.state === 'up'),
        doorQueued: view?.queued ?? 0,
        doorInFlight: Object.values(view?.inFlight ?? {}).reduce((a, b) => a + b, 0),
        ok: counts.ok, failed: counts.failed, running: agents.running, retryAfterWaits: counts.retryAfterWaits,
      });
      previous = { t, busy: stats.map((s) => s.busySlotMs) };
      o.onProgress?.({ elapsedMs: t, durationMs: o.durationMs, ok: counts.ok, failed: counts.failed, running: agents.running, phase: t < o.durationMs ? 'running' : 'draining' });
    };
    const interval = o.sampleIntervalMs ?? 250;
    const tick = (): void => {
      sample();
      sampler = clock.setTimeout(tick, interval);
    };
    sampler = clock.setTimeout(tick, interval);
    // Runs still going this long after the last could start are cut off, so the simulation always ends.
    timers.push(clock.setTimeout(() => void agents.stop(), o.durationMs + params.drainMs));
    const abort = (): void => {
      events.push({ t: clock.now() - startedAt, name: 'aborted' });
      void agents.stop();
    };
    if (o.signal?.aborted) abort();
    o.signal?.addEventListener('abort', abort, { once: true });
    await agents.done;
    o.signal?.removeEventListener('abort', abort);
    sample();
    const elapsedMs = clock.now() - startedAt;
    sampler.cancel();
    for (const t of timers) t.cancel();
    return buildFleetResult({
      startedAt, elapsedMs, parameters: params, records: agents.records, samples, events,
      members: compilers.map((c, i) => ({ stats: since(c.stats(), base?.[i]), port: c.port, speed: params.speeds[i] ?? 1 })),
      plan,
    });
  } finally {
    sampler?.cancel();
    for (const t of timers) t.cancel();
    await fleet?.stop();
    await door?.stop();
    await Promise.all(compilers.filter((c) => !shared?.includes(c)).map((c) => c.close()));
  }
}

function fail(message: string): never {
  throw new RingmasterError('RM_CONFIG_INVALID', message);
}
