import type { Clock } from '../lib/clock.ts';
import type { Log } from '../observability/log.ts';
import { ActiveHealthChecker } from '../pool/health.ts';
import { ineligibleReason, Member, type ProbeResult } from '../pool/member.ts';
import type { Pool } from '../pool/pool.ts';
import type { ParsedConfig } from '../config/schema.ts';
import { urlHost } from './names.ts';
import type { HostSpec } from './zone.ts';

// Whether each target of the DNS answers is healthy. Three sources: hosts probed over HTTPS
// (other ringmaster instances, Puppet Servers), this instance itself (its gateway state), and the
// gateway's pools, whose members the pools already check. The probed hosts reuse the pools'
// Member and ActiveHealthChecker, so rise/fall and "first result decides" work the same way.

export type PoolMemberView = { member: string; host: string; port: number; weight: number; priority: number; healthy: boolean };

export type TargetHealth = {
  host(name: string): boolean;
  poolMembers(pool: string): readonly PoolMemberView[];
};

export type HostProbe = (host: HostSpec, timeoutMs: number, path: string) => Promise<ProbeResult>;

export type HealthSettings = { interval: number; timeout: number; rise: number; fall: number };

export type LiveHealthDeps = {
  clock: Clock;
  log: Log;
  probe: HostProbe;
  /** The gateway's pools, as they are now (a reload may add or replace pools). */
  pools: () => ReadonlyMap<string, Pool>;
  /** Whether this ringmaster instance takes requests (its gateway is running). */
  selfRunning: () => boolean;
};

function memberPort(url: string): number {
  const u = new URL(url);
  return u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
}

export class LiveHealth implements TargetHealth {
  #hosts = new Map<string, HostSpec>();
  #members = new Map<string, Member>();
  #specOf = new Map<Member, HostSpec>();
  #checker: ActiveHealthChecker | undefined;
  #deps: LiveHealthDeps;
  #settings: HealthSettings;
  #listeners = new Set<() => void>();
  #subscribed = new Map<Pool, () => void>();

  constructor(hosts: readonly HostSpec[], settings: HealthSettings, deps: LiveHealthDeps) {
    this.#deps = deps;
    this.#settings = settings;
    for (const h of hosts) {
      this.#hosts.set(h.name, h);
      if (h.check !== 'status') continue;
      const m = new Member({ name: h.name, url: `https://${h.name}:${h.port}`, weight: 1, priority: 0, drain: false });
      m.setActiveChecks(true);
      this.#members.set(h.name, m);
      this.#specOf.set(m, h);
    }
  }

  start(): void {
    if (this.#checker) return;
    this.#checker = new ActiveHealthChecker(
      { path: '/status/v1/simple', interval: this.#settings.interval, timeout: this.#settings.timeout },
      {
        clock: this.#deps.clock,
        probe: (member, timeoutMs, path) => {
          const spec = this.#specOf.get(member);
          return spec ? this.#deps.probe(spec, timeoutMs, path) : Promise.resolve({ ok: false, reason: 'unknown host' });
        },
        onResult: (member, result) => this.#onProbe(member, result),
      },
    );
    this.#checker.start([...this.#members.values()]);
    this.watchPools();
  }

  stop(): void {
    this.#checker?.stop();
    this.#checker = undefined;
    for (const off of this.#subscribed.values()) off();
    this.#subscribed.clear();
  }

  /** Called on any change of a target's health (probe verdict, member drain, pool reload). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribes to pools not yet watched (a reload may have added some); call it now and then. */
  watchPools(): void {
    const current = new Set(this.#deps.pools().values());
    for (const [pool, off] of this.#subscribed) {
      if (current.has(pool)) continue;
      off();
      this.#subscribed.delete(pool);
    }
    for (const pool of current) {
      if (!this.#subscribed.has(pool)) this.#subscribed.set(pool, pool.onChange((e) => e.type !== 'capacity' && this.#emit()));
    }
  }

  host(name: string): boolean {
    const spec = this.#hosts.get(name);
    if (!spec || spec.check === 'none') return true;
    if (spec.check === 'self') return this.#deps.selfRunning();
    // 'unknown' (not probed yet) counts as healthy, as in the pools: a fresh start answers at once.
    return this.#members.get(name)?.health !== 'unhealthy';
  }

  /** The probed state of a `check: status` host, for status output and tests. */
  hostState(name: string): { health: string; lastError: string | undefined } | undefined {
    const m = this.#members.get(name);
    return m ? { health: m.health, lastError: m.lastProbeError } : undefined;
  }

  poolMembers(pool: string): readonly PoolMemberView[] {
    const p = this.#deps.pools().get(pool);
    if (!p) return [];
    const now = this.#deps.clock.now();
    return p.members().map((m) => {
      const reason = ineligibleReason(m, now);
      // A full member is busy, not down: DNS still names it (the gateway queues for it).
      return { member: m.name, host: urlHost(m.url), port: memberPort(m.url), weight: m.weight, priority: m.priority, healthy: reason === undefined || reason === 'full' };
    });
  }

  #onProbe(member: Member, result: ProbeResult): void {
    const change = member.recordProbe(result, this.#settings);
    if (!change) return;
    const fields = { host: member.name, from: change.from, to: change.to, reason: result.ok ? undefined : result.reason };
    if (change.to === 'healthy') this.#deps.log.info(fields, 'DNS target healthy');
    else this.#deps.log.warn(fields, 'DNS target unhealthy');
    this.#emit();
  }

  #emit(): void {
    for (const l of this.#listeners) l();
  }
}

/** Health for a zone file: every host is up and each pool has the members of the config file (drained ones left out). */
export function staticHealth(pools: ParsedConfig['pools']): TargetHealth {
  return {
    host: () => true,
    poolMembers: (pool) =>
      (pools[pool]?.members ?? [])
        .filter((m) => !m.drain)
        .map((m) => ({ member: m.name, host: urlHost(m.url), port: memberPort(m.url), weight: m.weight, priority: m.priority, healthy: true })),
  };
}
