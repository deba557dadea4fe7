// Over 500 lines on purpose: eligibility, selection, the compile queue and slow start all act on the
// same members, timers and clock; the planning and capacity arithmetic already live in their own files.
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { RingmasterError } from '../lib/errors.ts';
import type { Random } from '../lib/random.ts';
import type { Log } from '../observability/log.ts';
import { compileTimeAlpha, effectiveSlots, hasFreeSlot, isWarm, jitteredRetryAfter, nextSlotAt, type CapacitySpec, type WarmReference } from './capacity.ts';
import { compilePicker, eligibleIgnoringFull, lowestTier, warmReference, type CompilePicker } from './compile-picker.ts';
import { CompileQueue } from './compile-queue.ts';
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
  capacity: CapacitySpec;
};

export type PoolDeps = { clock: Clock; random: Random; log: Log; probe: Probe };

export type RequestFailure = { kind: 'connect' | 'timeout' } | { kind: 'status'; status: number };

export type Lease = { release(): void };

/** A compile slot on a member. `compileMs`: how long the member took to answer, when it did. */
export type CompileLease = { release(outcome?: { compileMs?: number }): void };
export type CompileGrant = { member: Member; lease: CompileLease; waitedMs: number };
export type CompileContext = { key?: string | undefined; exclude?: ReadonlySet<string> | undefined; signal?: AbortSignal | undefined };

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
  #queue: CompileQueue<CompileGrant>;
  #rampTimer: TimerHandle | undefined;
  #recheckTimer: TimerHandle | undefined;

  constructor(spec: PoolSpec, deps: PoolDeps) {
    this.name = spec.name;
    this.#deps = deps;
    this.#spec = spec;
    this.#policy = createPolicy(spec.policy, { random: deps.random });
    checkUniqueNames(spec);
    this.#queue = new CompileQueue(deps.clock);
    for (const memberSpec of spec.members) this.#addMember(new Member(memberSpec));
  }

  get capacity(): CapacitySpec {
    return this.#spec.capacity;
  }

  /** Compiles waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
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
    const tier = lowestTier(this.#members, (m) => ctx.exclude?.has(m.name) !== true && eligible(m, now));
    if (this.#policy.kind !== 'least-time' || tier.length < 2) return this.#policy.pick(tier, { key: ctx.key });
    // least-time sends requests other than compiles where a JRuby is free by its own count: on
    // puppetserver they need one too, and would wait behind compiles on a busy member.
    const capacity = this.#spec.capacity;
    const views = tier.map((member) => ({ member, name: member.name, weight: member.weight, inFlight: member.inFlight, compiles: member.compiles, compileSlots: effectiveSlots(member, capacity, now) }));
    return this.#policy.pick(views, { key: ctx.key })?.member;
  }

  /**
   * A compile slot taken now, when an eligible member has one free and nobody is waiting: what
   * `acquireCompile` would grant at once, without a promise. undefined otherwise (then wait).
   */
  compileNow(ctx: CompileContext): CompileGrant | undefined {
    if (this.#queue.length !== 0) return undefined;
    const member = this.#compilePicker(this.#deps.clock.now())(ctx);
    return member ? this.#grant(member, 0) : undefined;
  }

  /**
   * A compile slot: at once when an eligible member has one free (by ringmaster's count, within
   * its slow-start share) and nobody is waiting; otherwise in the queue, first come first
   * served, until a slot frees up or `capacity.queueTimeout` passes (503 RM_QUEUE_TIMEOUT). A
   * full queue answers 503 RM_QUEUE_FULL at once. Both carry a Retry-After spread over
   * `capacity.retryAfter`. undefined when no member is eligible at all (the caller answers 503
   * RM_POOL_UNAVAILABLE); a full member counts as eligible here, since it will free up.
   */
  acquireCompile(ctx: CompileContext): Promise<CompileGrant | undefined> {
    const now = this.#deps.clock.now();
    if (!this.#members.some((m) => ctx.exclude?.has(m.name) !== true && eligibleIgnoringFull(m, now))) return Promise.resolve(undefined);
    let held = false;
    if (this.#queue.length === 0) {
      const pick = this.#compilePicker(now);
      const member = pick(ctx);
      if (member) return Promise.resolve(this.#grant(member, 0));
      held = pick.holdsFreeSlots?.() ?? false;
    } else {
      // Compiles wait, yet a slot is free: they chose to wait for faster members, and this one,
      // further back in line, may be better off in that slot. A pass over the line decides.
      held = this.#policy.kind === 'least-time' && this.#anyFreeSlot(now);
    }
    const capacity = this.#spec.capacity;
    if (this.#queue.length >= capacity.maxQueue) {
      return Promise.reject(new RingmasterError('RM_QUEUE_FULL', `${this.#queue.length} compiles already wait for pool ${this.name}`, { details: { retryAfter: jitteredRetryAfter(capacity, this.#deps.random) } }));
    }
    return new Promise<CompileGrant | undefined>((resolve, reject) => {
      const withdraw = this.#queue.add(
        { exclude: ctx.exclude, key: ctx.key, resolve, reject },
        capacity.queueTimeout,
        (waitedMs) => new RingmasterError('RM_QUEUE_TIMEOUT', `no compile slot in pool ${this.name} within ${waitedMs} ms`, { details: { retryAfter: jitteredRetryAfter(capacity, this.#deps.random), waitedMs } }),
      );
      ctx.signal?.addEventListener('abort', () => {
        withdraw();
        reject(Object.assign(new Error('the agent went away while its compile waited'), { code: 'CLIENT_GONE' }));
      }, { once: true });
      this.#scheduleRamp(now);
      if (held) this.#serveQueue();
    });
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

  #compilePicker(now: number): CompilePicker {
    return compilePicker({ members: this.#members, capacity: this.#spec.capacity, policy: this.#policy, random: this.#deps.random }, now);
  }

  #warm(now: number): WarmReference {
    return warmReference(this.#members, this.#spec.capacity, now);
  }

  /** Whether some eligible member has a compile slot free now. */
  #anyFreeSlot(now: number): boolean {
    const capacity = this.#spec.capacity;
    const warm = this.#warm(now);
    return this.#members.some((m) => eligible(m, now) && hasFreeSlot(m, capacity, now, warm));
  }

  #grant(member: Member, waitedMs: number): CompileGrant {
    const startedAt = this.#deps.clock.now();
    member.addInFlight();
    member.addCompile(startedAt);
    let released = false;
    const lease: CompileLease = {
      release: (outcome) => {
        if (released) return;
        released = true;
        member.releaseCompile(startedAt);
        member.releaseInFlight();
        if (outcome?.compileMs !== undefined) {
          member.recordCompileTime(outcome.compileMs, compileTimeAlpha);
          this.#endRampIfWarm(member);
        }
        if (this.#owns(member)) this.#emit({ type: 'capacity', pool: this.name, member: member.name });
        this.#serveQueue();
      },
    };
    return { member, lease, waitedMs };
  }

  /** Hands freed slots to waiting compiles; with no member eligible at all, answers them 503. */
  #serveQueue(): void {
    if (this.#queue.length === 0) return;
    const now = this.#deps.clock.now();
    if (!this.#members.some((m) => eligibleIgnoringFull(m, now))) {
      this.#queue.rejectAll(() => new RingmasterError('RM_POOL_UNAVAILABLE', `no member of pool ${this.name} is available`, { details: { retryAfter: Math.ceil(jitteredRetryAfter(this.#spec.capacity, this.#deps.random)) } }));
      return;
    }
    const pick = this.#compilePicker(now);
    this.#queue.serve(
      (w) => {
        const member = pick({ key: w.key, exclude: w.exclude });
        return member ? this.#grant(member, now - w.enqueuedAt) : undefined;
      },
      () => (pick.holdsFreeSlots ? pick.holdsFreeSlots() : this.#anyFreeSlot(now)),
    );
    this.#scheduleRamp(now);
    // Compiles chose to wait for faster members while a slower one had a free slot: if those
    // run long, the free slot becomes the better choice, so look again a little later.
    this.#recheckTimer?.cancel();
    this.#recheckTimer = undefined;
    if (pick.holdsFreeSlots?.()) this.#recheck(pick);
  }

  #recheck(pick: { shortestMs?: () => number }): void {
    if (this.#queue.length === 0 || !this.#started) return;
    this.#recheckTimer = this.#deps.clock.setTimeout(() => {
      this.#recheckTimer = undefined;
      this.#serveQueue();
    }, Math.max(50, Math.round((pick.shortestMs?.() ?? 400) / 8)));
  }

  /** A ramping member whose compiles are as fast as the warm members' has warmed up: its ramp ends. */
  #endRampIfWarm(member: Member): void {
    if (member.readySince === undefined || !this.#owns(member)) return;
    const now = this.#deps.clock.now();
    const warm = this.#warm(now);
    if (!isWarm(member, warm)) return;
    member.setReadySince(undefined);
    this.#deps.log.info({ pool: this.name, member: member.name, compileMs: Math.round(member.compileMs ?? 0), warmMs: Math.round(warm.compileMs ?? 0) }, 'member warmed up: slow start ends');
  }

  // While compiles wait and a member is ramping up (slow start), its next slot opens at a known
  // time: wake the queue then, rather than only when a compile finishes.
  #scheduleRamp(now: number): void {
    this.#rampTimer?.cancel();
    this.#rampTimer = undefined;
    if (this.#queue.length === 0 || !this.#started) return;
    const warm = this.#warm(now);
    let at = Infinity;
    for (const m of this.#members) {
      const next = eligibleIgnoringFull(m, now) ? nextSlotAt(m, this.#spec.capacity, now, warm) : undefined;
      if (next !== undefined && next < at) at = next;
    }
    if (at === Infinity) return;
    this.#rampTimer = this.#deps.clock.setTimeout(() => {
      this.#rampTimer = undefined;
      this.#serveQueue();
    }, at - now);
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
      // A drain usually surrounds a restart: the member comes back cold and ramps up.
      if (!draining) member.setReadySince(this.#deps.clock.now());
      this.#deps.log.info({ pool: this.name, member: memberName, draining }, draining ? 'member draining' : 'member no longer draining');
      this.#emit({ type: 'draining', pool: this.name, member: memberName, draining });
      this.#serveQueue();
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
        const member = new Member(memberSpec);
        // A compiler added to a running pool is usually just started: it ramps up.
        if (this.#started) member.setReadySince(this.#deps.clock.now());
        this.#addMember(member);
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
    this.#serveQueue();
    return result;
  }

  /** JSON-able state of the pool and each member, for the status endpoint and logs. */
  snapshot(): PoolSnapshot {
    const now = this.#deps.clock.now();
    return snapshotPool(this.name, this.#spec, this.#members, now, { queued: this.#queue.length, oldestWaitMs: this.#queue.oldestWaitMs() }, this.#warm(now));
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
    this.#rampTimer?.cancel();
    this.#rampTimer = undefined;
    this.#recheckTimer?.cancel();
    this.#recheckTimer = undefined;
    this.#queue.rejectAll(() => new RingmasterError('RM_SHUTTING_DOWN', `pool ${this.name} is stopping`, { details: { retryAfter: this.#spec.capacity.retryAfter.min } }));
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
    if (result.ok && this.#spec.capacity.discover && result.jrubies !== undefined && member.setReportedSlots(result.jrubies)) {
      this.#deps.log.info({ pool: this.name, member: member.name, jrubies: result.jrubies }, 'member compile slots from its JRuby count');
      this.#serveQueue();
    }
    const change = member.recordProbe(result, this.#spec.healthCheck.active);
    if (!change) return;
    // Back from being down: a restarted compiler is cold, so it ramps up (slow start).
    // The probes saw it go down and come back: that is the recovery an ejection waits for, so
    // the ejection ends now rather than after the rest of its cool-off.
    if (change.from === 'unhealthy' && change.to === 'healthy') {
      member.setReadySince(this.#deps.clock.now());
      if (member.ejectedUntil !== undefined) {
        member.clearEjection();
        this.#coolOffTimers.get(member)?.cancel();
        this.#coolOffTimers.delete(member);
      }
    }
    const reason = result.ok ? undefined : result.reason;
    const fields = { pool: this.name, member: member.name, from: change.from, to: change.to, reason };
    if (change.to === 'healthy') this.#deps.log.info(fields, 'member healthy');
    else this.#deps.log.warn(fields, 'member unhealthy');
    this.#emit({ type: 'health', ...fields });
    this.#serveQueue();
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
      member.setReadySince(this.#deps.clock.now());
      this.#emit({ type: 'ejection-ended', pool: this.name, member: member.name });
      this.#serveQueue();
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
