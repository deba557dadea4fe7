import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import type { Log } from '../observability/log.ts';
import { ActiveHealthChecker, type ActiveHealthSettings, type Probe } from './health.ts';
import { eligible, Member, type HealthState, type MemberSpec, type ProbeResult } from './member.ts';
import { createPolicy, type Policy, type PolicyKind } from './policies/policy.ts';
import { snapshotPool, type PoolSnapshot } from './snapshot.ts';

// A pool: its members, the policy that chooses among them, and their health. Pure state and
// timers on the injected clock; the proxy sends the requests and reports their outcome here.

export type PoolSpec = {
  name: string;
  members: MemberSpec[];
  policy: PolicyKind;
  healthCheck: {
    active: { enabled: boolean; path: string; interval: number; timeout: number; rise: number; fall: number };
    passive: { enabled: boolean; failures: number; statuses: number[]; coolOff: number };
  };
};

export type PoolDeps = { clock: Clock; random: Random; log: Log; probe: Probe };

export type RequestFailure = { kind: 'connect' | 'timeout' } | { kind: 'status'; status: number };

export type Lease = { release(): void };

/** What others (DNS answers, status pages, the queue) may want to react to. */
export type PoolEvent =
  | { type: 'health'; pool: string; member: string; from: HealthState; to: HealthState; reason: string | undefined }
  | { type: 'ejected'; pool: string; member: string; until: number; failure: string }
  | { type: 'ejection-ended'; pool: string; member: string }
  | { type: 'draining'; pool: string; member: string; draining: boolean }
  | { type: 'capacity'; pool: string; member: string }
  | { type: 'updated'; pool: string; added: string[]; removed: string[]; kept: string[] };

export type PoolListener = (event: PoolEvent) => void;

export class Pool {
  readonly name: string;
  #spec: PoolSpec;
  #deps: PoolDeps;
  #members: Member[] = [];
  #byName = new Map<string, Member>();
  #policy: Policy;
  #checker: ActiveHealthChecker | undefined;
  #started = false;
  #listeners = new Set<PoolListener>();
  #coolOffTimers = new Map<Member, TimerHandle>();

  constructor(spec: PoolSpec, deps: PoolDeps) {
    this.name = spec.name;
    this.#deps = deps;
    this.#spec = spec;
    this.#policy = createPolicy(spec.policy, { random: deps.random });
    checkUniqueNames(spec);
    for (const memberSpec of spec.members) this.#addMember(new Member(memberSpec));
  }

  get policy(): PolicyKind {
    return this.#policy.kind;
  }

  members(): readonly Member[] {
    return this.#members;
  }

  member(name: string): Member | undefined {
    return this.#byName.get(name);
  }

  /**
   * Chooses a member: the lowest priority number that has any eligible member, then the policy
   * among that tier's eligible members. `exclude` = member names already tried for this request
   * (a retry goes to another member, in a later tier if its own has no other). `key` = the
   * agent's certname when known. undefined when nothing is eligible.
   */
  select(ctx: { key?: string | undefined; exclude?: ReadonlySet<string> | undefined }): Member | undefined {
    const now = this.#deps.clock.now();
    let tier = Infinity;
    let candidates: Member[] = [];
    for (const m of this.#members) {
      if (ctx.exclude?.has(m.name) === true || !eligible(m, now)) continue;
      if (m.priority < tier) {
        tier = m.priority;
        candidates = [m];
      } else if (m.priority === tier) {
        candidates.push(m);
      }
    }
    return this.#policy.pick(candidates, { key: ctx.key });
  }

  hasEligible(): boolean {
    const now = this.#deps.clock.now();
    return this.#members.some((m) => eligible(m, now));
  }

  /** Call when a request is sent to `member`; release the lease when it is done, however it ends. */
  acquire(member: Member): Lease {
    member.addInFlight();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const wasFull = member.maxInFlight !== undefined && member.inFlight >= member.maxInFlight;
        member.releaseInFlight();
        if (wasFull && this.#byName.get(member.name) === member) this.#emit({ type: 'capacity', pool: this.name, member: member.name });
      },
    };
  }

  /** Passive health: a real request to `member` got a response that is not a counted failure. */
  recordSuccess(member: Member): void {
    if (!this.#spec.healthCheck.passive.enabled || !this.#owns(member)) return;
    if (member.recordRequestSuccess(this.#deps.clock.now())) {
      this.#deps.log.info({ pool: this.name, member: member.name }, 'member passed its probation after ejection');
    }
  }

  /**
   * Passive health: a real request to `member` failed. 'connect' = refused, reset or TLS failure
   * before a response; 'timeout' = no response in time; 'status' counts only when listed in
   * `healthCheck.passive.statuses` (other statuses are ignored: the member did answer).
   */
  recordFailure(member: Member, failure: RequestFailure): void {
    const passive = this.#spec.healthCheck.passive;
    if (!passive.enabled || !this.#owns(member)) return;
    if (failure.kind === 'status' && !passive.statuses.includes(failure.status)) return;
    const now = this.#deps.clock.now();
    const probation = member.onProbation(now);
    const until = member.recordRequestFailure(now, passive);
    if (until === undefined) return;
    const described = failure.kind === 'status' ? `status ${failure.status}` : failure.kind;
    this.#deps.log.warn(
      { pool: this.name, member: member.name, failure: described, failures: probation ? 1 : passive.failures, probation, until: new Date(until).toISOString() },
      'member ejected after failed requests',
    );
    this.#emit({ type: 'ejected', pool: this.name, member: member.name, until, failure: described });
    this.#watchCoolOff(member, until - now);
  }

  /** Returns false when there is no such member. */
  setDraining(memberName: string, draining: boolean): boolean {
    const member = this.#byName.get(memberName);
    if (!member) return false;
    if (member.setDraining(draining)) {
      this.#deps.log.info({ pool: this.name, member: memberName, draining }, draining ? 'member draining' : 'member no longer draining');
      this.#emit({ type: 'draining', pool: this.name, member: memberName, draining });
    }
    return true;
  }

  /**
   * Applies a reloaded spec. Members with the same name and url keep their state (health,
   * in flight, ejection, and drain unless the spec's `drain` changed); a changed url makes a new
   * member (its name is in `added`, the old one in `removed`). Removed members are returned so
   * the caller can close their connections once `member.idle()` resolves.
   */
  update(spec: PoolSpec): { added: string[]; removed: Member[]; kept: string[] } {
    if (spec.name !== this.name) throw new Error(`pool "${this.name}": update with a spec for pool "${spec.name}"`);
    checkUniqueNames(spec);
    const old = this.#spec;
    this.#spec = spec;
    if (spec.policy !== this.#policy.kind) this.#policy = createPolicy(spec.policy, { random: this.#deps.random });

    const previous = this.#byName;
    this.#members = [];
    this.#byName = new Map();
    const added: string[] = [];
    const kept: string[] = [];
    for (const memberSpec of spec.members) {
      const existing = previous.get(memberSpec.name);
      if (existing && existing.url === memberSpec.url) {
        existing.applySpec(memberSpec);
        this.#addMember(existing);
        kept.push(memberSpec.name);
      } else {
        this.#addMember(new Member(memberSpec));
        added.push(memberSpec.name);
      }
    }
    const removed = [...previous.values()].filter((m) => this.#byName.get(m.name) !== m);
    for (const member of removed) {
      this.#checker?.remove(member);
      this.#coolOffTimers.get(member)?.cancel();
      this.#coolOffTimers.delete(member);
    }

    if (!spec.healthCheck.passive.enabled) {
      for (const member of this.#members) member.clearEjection();
      this.#cancelCoolOffTimers();
    }
    if (!sameProbing(old.healthCheck.active, spec.healthCheck.active)) {
      // Members keep their health verdict; only the timers start over with the new settings.
      this.#checker?.stop();
      this.#checker = undefined;
      for (const member of this.#members) member.setActiveChecks(spec.healthCheck.active.enabled);
      if (this.#started) this.#startChecker();
    } else {
      for (const name of added) {
        const member = this.#byName.get(name);
        if (member) this.#checker?.add(member);
      }
    }

    const result = { added, removed, kept };
    this.#deps.log.info({ pool: this.name, added, removed: removed.map((m) => m.name), kept, policy: spec.policy }, 'pool updated');
    this.#emit({ type: 'updated', pool: this.name, added, removed: removed.map((m) => m.name), kept });
    return result;
  }

  /** JSON-able state of the pool and each member, for the status endpoint and logs. */
  snapshot(): PoolSnapshot {
    return snapshotPool(this.name, this.#spec, this.#members, this.#deps.clock.now());
  }

  /** Observes health, ejection, drain, capacity and reload changes. Returns an unsubscribe. */
  onChange(listener: PoolListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Begins active probes (if enabled): each member at once, then every `interval`. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startChecker();
  }

  /** Cancels every timer; no probe starts and no probe result counts after this. */
  stop(): void {
    this.#started = false;
    this.#checker?.stop();
    this.#checker = undefined;
    this.#cancelCoolOffTimers();
  }

  #addMember(member: Member): void {
    member.setActiveChecks(this.#spec.healthCheck.active.enabled);
    this.#members.push(member);
    this.#byName.set(member.name, member);
  }

  #owns(member: Member): boolean {
    return this.#byName.get(member.name) === member;
  }

  #startChecker(): void {
    const active = this.#spec.healthCheck.active;
    if (!active.enabled) return;
    const settings: ActiveHealthSettings = { path: active.path, interval: active.interval, timeout: active.timeout };
    this.#checker = new ActiveHealthChecker(settings, {
      clock: this.#deps.clock,
      probe: this.#deps.probe,
      onResult: (member, result) => this.#onProbe(member, result),
    });
    this.#checker.start(this.#members);
  }

  #onProbe(member: Member, result: ProbeResult): void {
    if (!this.#owns(member)) return;
    const change = member.recordProbe(result, this.#spec.healthCheck.active);
    if (!change) return;
    const reason = result.ok ? undefined : result.reason;
    const fields = { pool: this.name, member: member.name, from: change.from, to: change.to, reason };
    if (change.to === 'healthy') this.#deps.log.info(fields, 'member healthy');
    else this.#deps.log.warn(fields, 'member unhealthy');
    this.#emit({ type: 'health', ...fields });
  }

  // The end of a cool-off changes nothing by itself (eligibility is computed when asked); the
  // timer only tells listeners, such as DNS answers, that the member is back. Only while started,
  // so that a stopped pool holds no timers.
  #watchCoolOff(member: Member, ms: number): void {
    this.#coolOffTimers.get(member)?.cancel();
    this.#coolOffTimers.delete(member);
    if (!this.#started) return;
    const timer = this.#deps.clock.setTimeout(() => {
      this.#coolOffTimers.delete(member);
      this.#deps.log.info({ pool: this.name, member: member.name }, 'member back from ejection, on probation');
      this.#emit({ type: 'ejection-ended', pool: this.name, member: member.name });
    }, ms);
    this.#coolOffTimers.set(member, timer);
  }

  #cancelCoolOffTimers(): void {
    for (const timer of this.#coolOffTimers.values()) timer.cancel();
    this.#coolOffTimers.clear();
  }

  #emit(event: PoolEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        // One broken observer must not stop health bookkeeping or the other observers.
        this.#deps.log.error({ pool: this.name, err, event: event.type }, 'pool change listener failed');
      }
    }
  }
}

function sameProbing(a: PoolSpec['healthCheck']['active'], b: PoolSpec['healthCheck']['active']): boolean {
  return a.enabled === b.enabled && a.path === b.path && a.interval === b.interval && a.timeout === b.timeout;
}

function checkUniqueNames(spec: PoolSpec): void {
  const seen = new Set<string>();
  for (const m of spec.members) {
    // The config schema refuses this already; a pool keyed by name cannot work with it.
    if (seen.has(m.name)) throw new Error(`pool "${spec.name}": member name ${m.name} is used twice`);
    seen.add(m.name);
  }
}
