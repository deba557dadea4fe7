import type { Command } from 'commander';
import { resolve } from 'node:path';
import { RingmasterError, isRingmasterError } from '../../lib/errors.ts';
import { parseDuration } from '../../lib/duration.ts';
import { logNormalFromMeanP99 } from '../../sim/distributions.ts';
import { killAt, restartAt, runFleet, type FleetProgress, type ScenarioStep } from '../../sim/fleet.ts';
import type { FleetResult } from '../../sim/fleet-result.ts';
import { describePlan, planCapacity } from '../../sim/plan.ts';
import { writeFleetOutput } from '../../sim/output.ts';
import { formatMs } from '../../sim/report.ts';

// `ringmaster bench fleet`: a simulated Puppet fleet (agents, compilers with JRuby pools) run
// through an in-process ringmaster on loopback, written as fleet.json and a self-contained
// fleet.html; with --plan, only the capacity arithmetic.

type FleetCliOptions = {
  agents: string; compilers: string; slots: string; compileMean: string; compileP99: string; requestTime: string; interval: string; splay?: string;
  duration: string; drain: string; out: string; seed: string; identities?: string; maxQueuedRequests: string; maxRetryDelay: string;
  warmupFactor: string; warmupPeriod: string; startWarm?: boolean; idleTimeout: string; applyMean: string; applyP99?: string; factsMean: string; factsP99?: string; sourcedFiles?: string;
  httpKeepaliveTimeout: string; speeds?: string; restart: string[]; kill: string[]; boot: string;
  plan?: boolean; nodes?: string; compile?: string; utilisation: string; progress: boolean;
};

const usage = (message: string): RingmasterError => new RingmasterError('RM_CLI_USAGE', message);

function whole(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min) throw usage(`--${name} must be a whole number from ${min}, not "${text}"`);
  return n;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw usage(`--${name} must be a positive number, not "${text}"`);
  return n;
}

function duration(name: string, text: string, allowZero = false): number {
  const ms = parseDuration(text);
  if (ms === undefined || (!allowZero && ms <= 0)) throw usage(`--${name} must be a duration such as 500ms, 4s, 30m, not "${text}"`);
  return ms;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `compiler-2@30s` → a scenario step at 30 s. */
function scenarioSteps(flag: 'restart' | 'kill', specs: string[], bootMs: number, compilers: number): ScenarioStep[] {
  return specs.map((spec) => {
    const m = /^(compiler-(\d+))@(.+)$/.exec(spec.trim());
    if (!m) throw usage(`--${flag} expects COMPILER@TIME such as compiler-2@30s, not "${spec}"`);
    if (Number(m[2]) < 1 || Number(m[2]) > compilers) throw usage(`--${flag} ${spec}: the compilers are compiler-1 to compiler-${compilers}`);
    const at = duration(flag, m[3]!, true);
    return flag === 'restart' ? restartAt(at, m[1]!, { bootMs }) : killAt(at, m[1]!);
  });
}

function progressPrinter(durationMs: number, tty: boolean): { update(p: FleetProgress): void; end(): void } {
  let lastTenth = 0;
  return {
    update(p) {
      const share = Math.min(1, p.elapsedMs / durationMs);
      const percent = Math.floor(share * 100);
      const tail = p.phase === 'draining' ? `finishing ${p.running} run${p.running === 1 ? '' : 's'}` : `${p.running} running`;
      if (tty) {
        const bar = '#'.repeat(Math.round(share * 30)).padEnd(30, '.');
        process.stderr.write(`\r[${bar}] ${String(percent).padStart(3)}% ${formatMs(p.elapsedMs)} of ${formatMs(durationMs)}: ${p.ok} ok, ${p.failed} failed, ${tail}\u001b[K`);
      } else if (Math.floor(percent / 10) > lastTenth) {
        lastTenth = Math.floor(percent / 10);
        process.stderr.write(`fleet: ${percent}% (${p.ok} runs ok, ${p.failed} failed, ${tail})\n`);
      }
    },
    end() {
      if (tty) process.stderr.write('\n');
    },
  };
}

function summary(r: FleetResult, files: string[]): string {
  const c = r.catalog;
  return [
    `fleet through ${r.parameters.frontDoor}: ${r.runs.completed} runs (${r.runs.ok} ok, ${r.runs.failed} failed); catalog p50 ${formatMs(c.p50Ms)}, p90 ${formatMs(c.p90Ms)}, p99 ${formatMs(c.p99Ms)}, max ${formatMs(c.maxMs)}`,
    `first runs of all ${r.parameters.agents} agents served after: ${r.herdDrainMs === null ? `not within the run (${r.runs.agentsWithFirstRun} had one)` : formatMs(r.herdDrainMs)}; Retry-After waits: ${r.retryAfter.waits}`,
    ...r.members.map((m) => `  ${m.name}: ${m.catalogs} catalogs, utilisation ${(m.utilisation * 100).toFixed(1)}%, ${m.rejected} × 503, ${m.restarts} restart${m.restarts === 1 ? '' : 's'}`),
    ...Object.entries(r.runs.failureReasons).map(([reason, n]) => `  failed: ${n} × ${reason}`),
    `plan: ${describePlan(r.plan)}`,
    `wrote ${files.join(' and ')}`,
    '',
  ].join('\n');
}

async function fleet(opts: FleetCliOptions): Promise<void> {
  const slots = whole('slots', opts.slots, 1);
  const intervalMs = duration('interval', opts.interval);
  const utilisation = positive('utilisation', opts.utilisation);
  if (utilisation > 1) throw usage(`--utilisation is a share of the JRubies, at most 1, not "${opts.utilisation}"`);
  if (opts.plan) {
    const nodes = whole('nodes', opts.nodes ?? opts.agents, 1);
    const compileMs = duration('compile', opts.compile ?? opts.compileMean);
    try {
      process.stdout.write(`${describePlan(planCapacity({ nodes, intervalMs, compileMs, slotsPerCompiler: slots, targetUtilisation: utilisation }))}\n`);
    } catch (err) {
      throw isRingmasterError(err) ? usage(err.message) : err;
    }
    return;
  }
  const compile = { meanMs: duration('compile-mean', opts.compileMean), p99Ms: duration('compile-p99', opts.compileP99) };
  try {
    logNormalFromMeanP99(compile.meanMs, compile.p99Ms);
  } catch (err) {
    throw isRingmasterError(err) ? usage(err.message) : err;
  }
  // A real apply's tail is long (a package upgrade, a slow exec), and so is Facter's (a slow
  // custom fact): p99 three times the mean unless given.
  const agentStep = (what: 'apply' | 'facts', mean: string, p99: string | undefined): { meanMs: number; p99Ms: number } => {
    const meanMs = duration(`${what}-mean`, mean, true);
    const step = { meanMs, p99Ms: p99 === undefined ? meanMs * 3 : duration(`${what}-p99`, p99) };
    if (meanMs > 0) {
      try {
        logNormalFromMeanP99(step.meanMs, step.p99Ms, what);
      } catch (err) {
        throw isRingmasterError(err) ? usage(err.message) : err;
      }
    }
    return step;
  };
  const apply = agentStep('apply', opts.applyMean, opts.applyP99);
  const facts = agentStep('facts', opts.factsMean, opts.factsP99);
  const durationMs = duration('duration', opts.duration);
  const bootMs = duration('boot', opts.boot, true);
  const warmupFactor = positive('warmup-factor', opts.warmupFactor);
  const compilers = whole('compilers', opts.compilers, 1);
  const out = resolve(opts.out);
  const controller = new AbortController();
  const onSigint = (): void => {
    process.stderr.write('\nstopping the simulation; the report covers what ran so far\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const progress = opts.progress ? progressPrinter(durationMs, process.stderr.isTTY === true) : undefined;
  let result: FleetResult;
  try {
    result = await runFleet({
      agents: whole('agents', opts.agents, 1), compilers, slots, compile,
      requestMs: duration('request-time', opts.requestTime, true), intervalMs, splayMs: duration('splay', opts.splay ?? opts.interval, true), durationMs,
      drainMs: duration('drain', opts.drain, true), seed: whole('seed', opts.seed, 0),
      ...(opts.identities !== undefined ? { identities: whole('identities', opts.identities, 1) } : {}),
      maxQueuedRequests: whole('max-queued-requests', opts.maxQueuedRequests, 0), maxRetryDelayS: whole('max-retry-delay', opts.maxRetryDelay, 0),
      warmup: { factor: warmupFactor, periodMs: duration('warmup-period', opts.warmupPeriod, true), shape: 'exponential' },
      startWarm: opts.startWarm === true, compilerIdleTimeoutMs: duration('idle-timeout', opts.idleTimeout, true),
      facts, apply, keepAliveMs: duration('http-keepalive-timeout', opts.httpKeepaliveTimeout, true),
      ...(opts.sourcedFiles !== undefined ? { sourcedFiles: whole('sourced-files', opts.sourcedFiles, 0) } : {}),
      ...(opts.speeds !== undefined ? { speeds: opts.speeds.split(',').map((s) => positive('speeds', s)) } : {}),
      scenario: [...scenarioSteps('restart', opts.restart, bootMs, compilers), ...scenarioSteps('kill', opts.kill, bootMs, compilers)],
      targetUtilisation: utilisation,
      onProgress: progress ? (p) => progress.update(p) : undefined,
      signal: controller.signal,
    });
  } finally {
    progress?.end();
    process.off('SIGINT', onSigint);
  }
  const files = await writeFleetOutput(result, out);
  process.stdout.write(summary(result, [files.json, files.html]));
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('simulations that show how ringmaster and a fleet of compilers behave under load');
  bench
    .command('fleet')
    .description('run simulated Puppet agents and compilers through an in-process ringmaster on loopback; write fleet.json and fleet.html')
    .option('--agents <n>', 'simulated agents', '1000')
    .option('--compilers <n>', 'simulated compilers', '2')
    .option('--slots <n>', 'JRuby instances per compiler (max-active-instances)', '4')
    .option('--compile-mean <duration>', 'mean catalog compile time', '4s')
    .option('--compile-p99 <duration>', '99th percentile of the compile time (log-normal; at most ~15 × the mean)', '12s')
    .option('--request-time <duration>', 'how long other requests hold a JRuby', '3ms')
    .option('--interval <duration>', 'agent run interval (runinterval)', '30m')
    .option('--splay <duration>', 'first runs start at random within this (default: the interval)')
    .option('--duration <duration>', 'no run starts after this', '2m')
    .option('--drain <duration>', 'how long runs in progress at the end may take before they are cut off', '1m')
    .option('--identities <n>', 'certificates issued for the agents (default: agents, at most 200)')
    .option('--max-queued-requests <n>', "compilers' max-queued-requests (0: no limit)", '0')
    .option('--max-retry-delay <seconds>', "compilers' max-retry-delay: the 503's Retry-After is random below it", '60')
    .option('--warmup-factor <x>', 'compile times are this many times longer right after a (re)start', '1')
    .option('--warmup-period <duration>', 'time for the warm-up to wear off', '60s')
    .option('--start-warm', 'compilers start warm; only --restart ones go through the warm-up')
    .option('--idle-timeout <duration>', "compilers' idle timeout (Jetty idle-timeout-milliseconds; 0: never)", '30s')
    .option('--facts-mean <duration>', 'mean time agents resolve their facts between pluginsync and the catalog request (0: at once)', '0')
    .option('--facts-p99 <duration>', '99th percentile of the fact resolution time (log-normal; default 3 × --facts-mean)')
    .option('--apply-mean <duration>', 'mean time agents apply their catalog before the report (0: report at once)', '0')
    .option('--apply-p99 <duration>', '99th percentile of the apply time (log-normal; default 3 × --apply-mean)')
    .option('--sourced-files <n>', 'file_metadata requests per run, spread through the apply (default 2 or 3)')
    .option('--http-keepalive-timeout <duration>', "agents' http_keepalive_timeout: a connection idle longer is replaced", '4s')
    .option('--speeds <list>', 'comma-separated speed factor per compiler, 2 = twice as slow')
    .option('--restart <compiler@time>', 'restart a compiler at that time, e.g. compiler-2@30s (repeatable)', collect, [])
    .option('--kill <compiler@time>', 'kill a compiler for good at that time (repeatable)', collect, [])
    .option('--boot <duration>', 'how long a restarted compiler boots before serving', '10s')
    .option('--seed <n>', 'seed of the random choices, for repeatable runs', '1')
    .option('--out <dir>', 'where fleet.json and fleet.html go', 'fleet-report')
    .option('--no-progress', 'no progress on stderr')
    .option('--plan', 'print the capacity plan for --nodes, --interval, --compile and --slots, and run nothing')
    .option('--nodes <n>', 'nodes to plan for (with --plan; default --agents)')
    .option('--compile <duration>', 'mean compile time to plan with (with --plan; default --compile-mean)')
    .option('--utilisation <share>', 'target JRuby utilisation of the plan', '0.7')
    .action(fleet);
}
