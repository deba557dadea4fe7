import type { ClientRequest } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { RingmasterError } from '../lib/errors.ts';
import { failureOf, retryAfterMs, RunConnections, send, type AgentTarget, type Exchange } from './agent-http.ts';
import { applyDistribution, planApply, type ApplyOptions } from './apply.ts';
import { logNormalDraw, type LogNormal } from './distributions.ts';
import type { SimIdentity } from './identities.ts';
import { catalogForm, catalogFormPrefix, factsJson, reportBody, uuidFrom } from './payloads.ts';

// Simulated Puppet agents: each does a real agent run (pluginsync, catalog, an apply that asks for
// file metadata along the way, report) over mutual TLS, every run interval after a random splay,
// honouring Retry-After as Puppet does. Connections follow Puppet's pool: one kept alive per run,
// replaced when it sat idle longer than http_keepalive_timeout, all closed at the end of the run.
// Their schedule runs on the injected clock and ends by itself (a duration, a number of runs);
// `stop` ends it early.

export type AgentFleetOptions = {
  target: AgentTarget;
  /** Agent i presents identities[i mod identities.length]. */
  identities: SimIdentity[];
  agents: number;
  /** Puppet runinterval. */
  intervalMs: number;
  /** First runs start at random within this (Puppet splay/splaylimit). */
  splayMs: number;
  /** No run starts later than this after the start. */
  durationMs?: number;
  /** Runs per agent at most. */
  runsPerAgent?: number;
  /** Longest wait for one Retry-After. Default: intervalMs, as Puppet sleeps min(Retry-After, runinterval). */
  maxRetryAfterMs?: number;
  /** Retry-After answers followed per request before the run fails (Puppet retry_limit). Default 100. */
  retryLimit?: number;
  /** A request not answered within this fails the run (Puppet http_read_timeout). Default 10 minutes. */
  requestTimeoutMs?: number;
  /** Size of each node's facts. Default 15,000 bytes. */
  factsBytes?: number;
  puppetVersion?: string;
  /**
   * Fact resolution between pluginsync and the catalog request: Puppet runs Facter after
   * pluginsync, since plugins carry custom facts. Default none: the catalog follows at once.
   */
  facts?: ApplyOptions;
  /** The apply between catalog and report. Default none: the file requests and the report follow the catalog at once. */
  apply?: ApplyOptions;
  /** file_metadata requests per run, spread through the apply. Default 2 or 3 at random. */
  sourcedFiles?: number;
  /** Puppet http_keepalive_timeout: a connection idle longer than this is closed when the next request needs one. Default 4 s. */
  keepAliveMs?: number;
};

export type AgentFleetDeps = { clock: Clock; random: Random };

export type RunRecord = {
  agent: number;
  certname: string;
  /** 1 for the agent's first run. */
  run: number;
  start: number;
  end: number;
  ok: boolean;
  /** Why the run failed: `<step>: <cause>`, e.g. `catalog: HTTP 503 without Retry-After`, `pluginsync: ECONNREFUSED`. */
  reason?: string;
  /** The pluginsync request that succeeded, from sending it to its answer's last byte (it waits for a JRuby too). */
  pluginsyncMs?: number;
  /** From the run's start to the catalog's last byte: pluginsync, facts, catalog, and the waits among them. */
  toCatalogMs?: number;
  /** The catalog request that succeeded, from sending it to the last byte of the catalog. */
  catalogMs?: number;
  /** The same, with the Retry-After waits and attempts before it. */
  catalogTotalMs?: number;
  /** X-Sim-Compiler of the catalog response. */
  compiler?: string;
  /** From the catalog's last byte to the start of the report: the apply's work and its file requests. */
  applyMs?: number;
  retryAfterWaits: number;
  retryAfterWaitMs: number;
  /** TCP connections the run opened (one, plus one after every idle gap past keepAliveMs, Retry-After or closed connection). */
  connections: number;
};

type RunContext = { http: RunConnections; identity: SimIdentity; retryAfterWaits: number; retryAfterWaitMs: number };

class StepFailure extends Error {}
const stopped = Symbol('stopped');

const pluginsyncPath = '/puppet/v3/file_metadatas/plugins?recurse=false&links=manage&checksum_type=sha256&source_permissions=ignore&environment=production';
const metadataFiles = ['sim/files/motd', 'sim/files/sshd_config', 'sim/files/ntp.conf'];

export class AgentFleet {
  readonly records: RunRecord[] = [];
  /** Resolves once no agent has a run in progress or to come. */
  readonly done: Promise<void>;
  #o: AgentFleetOptions;
  #clock: Clock;
  #random: Random;
  #startedAt: number;
  #timers = new Set<{ cancel(): void }>();
  #requests = new Set<ClientRequest>();
  #active = 0;
  #waiting = 0;
  #stopped = false;
  #forms = new Map<string, string>();
  #listeners: ((r: RunRecord) => void)[] = [];
  #apply: LogNormal | undefined;
  #facts: LogNormal | undefined;
  #resolveDone: () => void = () => undefined;

  private constructor(options: AgentFleetOptions, deps: AgentFleetDeps) {
    if (options.durationMs === undefined && options.runsPerAgent === undefined) {
      throw new RingmasterError('RM_CONFIG_INVALID', 'simulated agents need a duration or a number of runs, or they would never stop');
    }
    if (options.identities.length === 0) throw new RingmasterError('RM_CONFIG_INVALID', 'simulated agents need at least one identity');
    if (!(options.intervalMs > 0)) throw new RingmasterError('RM_CONFIG_INVALID', `the run interval must be positive, not ${options.intervalMs}`);
    if (options.sourcedFiles !== undefined && !(Number.isInteger(options.sourcedFiles) && options.sourcedFiles >= 0)) {
      throw new RingmasterError('RM_CONFIG_INVALID', `sourced files must be a whole number from 0, not ${options.sourcedFiles}`);
    }
    if (options.keepAliveMs !== undefined && !(options.keepAliveMs >= 0)) throw new RingmasterError('RM_CONFIG_INVALID', `the keep-alive timeout must be 0 or more, not ${options.keepAliveMs}`);
    this.#apply = applyDistribution(options.apply);
    this.#facts = applyDistribution(options.facts, 'facts');
    this.#o = options;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#startedAt = deps.clock.now();
    this.done = new Promise<void>((resolve) => (this.#resolveDone = resolve));
  }

  /** Schedules every agent's first run within the splay. */
  static start(options: AgentFleetOptions, deps: AgentFleetDeps): AgentFleet {
    const fleet = new AgentFleet(options, deps);
    for (let i = 0; i < options.agents; i++) fleet.#schedule(i, 1, fleet.#startedAt + Math.floor(deps.random.next() * options.splayMs));
    fleet.#settle();
    return fleet;
  }

  /** Runs in progress. */
  get running(): number {
    return this.#active;
  }

  onRun(listener: (r: RunRecord) => void): void {
    this.#listeners.push(listener);
  }

  /** Ends the simulation now: no more runs, requests in flight destroyed; unfinished runs are not recorded. */
  stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    for (const r of this.#requests) r.destroy();
    this.#requests.clear();
    this.#waiting = 0;
    this.#settle();
    return this.done;
  }

  #schedule(agent: number, run: number, at: number): void {
    const last = this.#o.durationMs === undefined ? Infinity : this.#startedAt + this.#o.durationMs;
    if (this.#stopped || at > last || run > (this.#o.runsPerAgent ?? Infinity)) return;
    this.#waiting += 1;
    this.#after(at - this.#clock.now(), () => {
      this.#waiting -= 1;
      this.#active += 1;
      void this.#run(agent, run).then((record) => {
        this.#active -= 1;
        if (record === stopped) return this.#settle();
        this.records.push(record);
        for (const l of this.#listeners) l(record);
        // Puppet's scheduler starts the next run an interval after the last one started, or at once if that run took longer.
        this.#schedule(agent, run + 1, Math.max(record.start + this.#o.intervalMs, record.end));
        this.#settle();
      });
    });
  }

  #settle(): void {
    if (this.#active === 0 && this.#waiting === 0) this.#resolveDone();
  }

  #after(ms: number, fn: () => void): void {
    const entry = { cancel: () => handle.cancel() };
    const handle: TimerHandle = this.#clock.setTimeout(() => {
      this.#timers.delete(entry);
      fn();
    }, Math.max(0, ms));
    this.#timers.add(entry);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const entry = { cancel: () => { handle.cancel(); resolve(); } };
      const handle: TimerHandle = this.#clock.setTimeout(() => {
        this.#timers.delete(entry);
        resolve();
      }, Math.max(0, ms));
      this.#timers.add(entry);
    });
  }

  #form(identity: SimIdentity): string {
    let prefix = this.#forms.get(identity.certname);
    if (prefix === undefined) {
      prefix = catalogFormPrefix(factsJson(identity.certname, this.#o.factsBytes ?? 15_000));
      this.#forms.set(identity.certname, prefix);
    }
    return prefix;
  }

  async #run(agent: number, run: number): Promise<RunRecord | typeof stopped> {
    const identity = this.#o.identities[agent % this.#o.identities.length]!;
    const { certname } = identity;
    const start = this.#clock.now();
    // Puppet closes its connection pool at the end of every run, so each run has connections of its own.
    const http = new RunConnections(this.#o.keepAliveMs ?? 4000, () => this.#clock.now());
    const ctx: RunContext = { http, identity, retryAfterWaits: 0, retryAfterWaitMs: 0 };
    const uuid = uuidFrom(this.#random);
    const record: RunRecord = { agent, certname, run, start, end: start, ok: false, retryAfterWaits: 0, retryAfterWaitMs: 0, connections: 0 };
    const env = 'environment=production';
    try {
      const pluginsync = await this.#exchange(ctx, 'pluginsync', 'GET', pluginsyncPath);
      record.pluginsyncMs = pluginsync.ms;
      if (this.#facts !== undefined) await this.#work(Math.round(logNormalDraw(this.#facts, this.#random)));
      const catalogStart = this.#clock.now();
      const catalog = await this.#exchange(ctx, 'catalog', 'POST', `/puppet/v3/catalog/${certname}?${env}`, {
        body: catalogForm(this.#form(identity), uuid), contentType: 'application/x-www-form-urlencoded', accept: 'application/vnd.puppet.rich+json, application/json',
      });
      const compiler = catalog.headers['x-sim-compiler'];
      Object.assign(record, { catalogMs: catalog.ms, catalogTotalMs: this.#clock.now() - catalogStart, toCatalogMs: this.#clock.now() - start, ...(typeof compiler === 'string' ? { compiler } : {}) });
      const applyStart = this.#clock.now();
      const apply = planApply(this.#apply, this.#o.sourcedFiles, this.#random);
      let worked = 0;
      for (const [f, at] of apply.fileAtMs.entries()) {
        await this.#work(at - worked);
        worked = at;
        const file = metadataFiles[f] ?? `sim/files/extra-${f}.conf`;
        await this.#exchange(ctx, 'file_metadata', 'GET', `/puppet/v3/file_metadata/modules/${file}?links=manage&checksum_type=sha256&source_permissions=ignore&${env}`);
      }
      await this.#work(apply.workMs - worked);
      if (this.#apply !== undefined) record.applyMs = this.#clock.now() - applyStart;
      await this.#exchange(ctx, 'report', 'PUT', `/puppet/v3/report/${certname}?${env}`, { body: this.#report(certname, uuid, 'changed'), contentType: 'application/json' });
      record.ok = true;
    } catch (err) {
      if (this.#stopped) return stopped;
      record.reason = err instanceof StepFailure ? err.message : `run: ${failureOf(err)}`;
      // Puppet sends a report after a failed run too; whether it arrives does not change the outcome.
      if (!record.reason.startsWith('report:')) {
        await this.#exchange(ctx, 'report', 'PUT', `/puppet/v3/report/${certname}?${env}`, { body: this.#report(certname, uuid, 'failed'), contentType: 'application/json' }).catch(() => undefined);
      }
      if (this.#stopped) return stopped;
    } finally {
      ctx.http.close();
    }
    record.end = this.#clock.now();
    record.connections = ctx.http.opened;
    record.retryAfterWaits = ctx.retryAfterWaits;
    record.retryAfterWaitMs = ctx.retryAfterWaitMs;
    return record;
  }

  /** The agent busy with the catalog for `ms`; no timer at all for none, so runs without an apply keep their old timing. */
  async #work(ms: number): Promise<void> {
    if (ms > 0) await this.#sleep(ms);
  }

  #report(certname: string, uuid: string, status: 'changed' | 'failed'): string {
    return reportBody({ certname, transactionUuid: uuid, status, time: this.#clock.now() });
  }

  /** One request with Puppet's Retry-After handling; resolves on 2xx, throws a StepFailure otherwise. */
  async #exchange(ctx: RunContext, step: string, method: string, path: string, o: { body?: string; contentType?: string; accept?: string } = {}): Promise<Exchange & { ms: number }> {
    const headers: Record<string, string> = {
      'X-Puppet-Version': this.#o.puppetVersion ?? '8.10.0', 'User-Agent': `Puppet/${this.#o.puppetVersion ?? '8.10.0'} Ruby/3.2.5-p208 (x86_64-linux)`,
      Accept: o.accept ?? 'application/json',
    };
    if (o.contentType) headers['Content-Type'] = o.contentType;
    for (let answered = 0; ; answered++) {
      if (this.#stopped) throw new StepFailure(`${step}: stopped`);
      const t0 = this.#clock.now();
      let res: Exchange;
      try {
        res = await send({
          agent: ctx.http.checkOut(), target: this.#o.target, identity: ctx.identity, method, path, headers, body: o.body, timeoutMs: this.#o.requestTimeoutMs ?? 600_000,
          track: (req) => {
            this.#requests.add(req);
            ctx.http.track(req);
            return () => this.#requests.delete(req);
          },
        });
      } catch (err) {
        throw new StepFailure(`${step}: ${failureOf(err)}`);
      } finally {
        ctx.http.checkIn();
      }
      const ms = this.#clock.now() - t0;
      if (res.status === 503 || res.status === 429) {
        const wait = retryAfterMs(res.headers['retry-after'], this.#clock.now());
        if (wait === undefined) throw new StepFailure(`${step}: HTTP ${res.status} without Retry-After`);
        if (answered >= (this.#o.retryLimit ?? 100)) throw new StepFailure(`${step}: too many Retry-After answers`);
        const capped = Math.min(wait, this.#o.maxRetryAfterMs ?? this.#o.intervalMs);
        ctx.retryAfterWaits += 1;
        ctx.retryAfterWaitMs += capped;
        // Puppet closes the connection before it sleeps and sends the retry on a new one.
        ctx.http.close();
        await this.#sleep(capped);
        continue;
      }
      if (res.status < 200 || res.status >= 300) throw new StepFailure(`${step}: HTTP ${res.status}`);
      return { ...res, ms };
    }
  }
}
