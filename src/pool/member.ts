import type { Candidate } from './policies/policy.ts';

// One compiler (or CA server) of a pool and everything the gateway knows about it at run time:
// requests in flight, drain, active health, passive ejection. The Pool changes this state; the
// rest of the gateway reads it. Eligibility is decided here, apart from selection (the policy).

export type MemberSpec = {
  name: string;
  url: string;
  weight: number;
  priority: number;
  maxInFlight?: number | undefined;
  /** Catalog compiles at once (its JRuby count); overrides what the member reports and the pool default. */
  compileSlots?: number | undefined;
  drain: boolean;
};

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

export type IneligibleReason = 'draining' | 'unhealthy' | 'ejected' | 'full';

export type HealthTransition = { from: HealthState; to: HealthState };

/** `jrubies`: the member's JRuby count, when the probe could read it (puppetserver's jruby-metrics). */
export type ProbeResult = { ok: true; jrubies?: number | undefined } | { ok: false; reason: string };

export class Member implements Candidate {
  readonly name: string;
  readonly url: string;
  #spec: MemberSpec;
  #inFlight = 0;
  #draining: boolean;
  #activeChecks = false;
  #health: HealthState = 'unknown';
  #streak = 0; // consecutive probe results that disagree with the current state
  #lastProbeError: string | undefined;
  #passiveFailures = 0;
  #ejectedUntil: number | undefined;
  #idleWaiters: (() => void)[] = [];
  #compiles = 0;
  /** When each running compile was sent (injected clock), oldest first. */
  #compileStarts: number[] = [];
  #reportedSlots: number | undefined;
  #readySince: number | undefined;
  #compileMs: number | undefined;

  constructor(spec: MemberSpec) {
    this.name = spec.name;
    this.url = spec.url;
    this.#spec = { ...spec };
    this.#draining = spec.drain;
  }

  get spec(): Readonly<MemberSpec> {
    return this.#spec;
  }
  get weight(): number {
    return this.#spec.weight;
  }
  get priority(): number {
    return this.#spec.priority;
  }
  get maxInFlight(): number | undefined {
    return this.#spec.maxInFlight;
  }
  get inFlight(): number {
    return this.#inFlight;
  }
  /** Catalog compiles running on this member, by ringmaster's own count. */
  get compiles(): number {
    return this.#compiles;
  }
  /** When each running compile was sent, oldest first. */
  get compileStarts(): readonly number[] {
    return this.#compileStarts;
  }
  /** The JRuby count the member last reported, if it did. */
  get reportedSlots(): number | undefined {
    return this.#reportedSlots;
  }
  /** Since when the member ramps up (slow start); undefined when it takes a full share. */
  get readySince(): number | undefined {
    return this.#readySince;
  }
  /** Moving average of its compile times (ms to the response head), once one was seen. */
  get compileMs(): number | undefined {
    return this.#compileMs;
  }
  get draining(): boolean {
    return this.#draining;
  }
  /** Whether active probes decide eligibility; when off, `health` stays 'unknown' and is ignored. */
  get activeChecks(): boolean {
    return this.#activeChecks;
  }
  get health(): HealthState {
    return this.#health;
  }
  /** The reason the latest probe failed; undefined once a probe succeeds. */
  get lastProbeError(): string | undefined {
    return this.#lastProbeError;
  }
  /** When the passive ejection ends (or ended: then the member is on probation until a success). */
  get ejectedUntil(): number | undefined {
    return this.#ejectedUntil;
  }

  isEjected(now: number): boolean {
    return this.#ejectedUntil !== undefined && now < this.#ejectedUntil;
  }

  /** Back from ejection and not yet proven by a successful request: one failure ejects again. */
  onProbation(now: number): boolean {
    return this.#ejectedUntil !== undefined && now >= this.#ejectedUntil;
  }

  /** Resolves once no request is in flight, e.g. to close a removed member's connections. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  // ---- state changes, made by the Pool ----

  /** A reload with the same name and url: keep run-time state, take the new numbers. */
  applySpec(spec: MemberSpec): void {
    // An operator's `drain` in the file wins only when it changed; otherwise a drain set at run
    // time (admin API) survives unrelated reloads.
    if (spec.drain !== this.#spec.drain) this.#draining = spec.drain;
    this.#spec = { ...spec };
  }

  /** Returns whether anything changed. */
  setDraining(draining: boolean): boolean {
    if (this.#draining === draining) return false;
    this.#draining = draining;
    return true;
  }

  setActiveChecks(enabled: boolean): void {
    if (this.#activeChecks === enabled) return;
    this.#activeChecks = enabled;
    // A verdict from probes that were switched off would be stale when they come back.
    this.#health = 'unknown';
    this.#streak = 0;
    this.#lastProbeError = undefined;
  }

  addInFlight(): void {
    this.#inFlight++;
  }

  /** A compile sent at `startedAt`; pass the same time to releaseCompile. */
  addCompile(startedAt = Number.NaN): void {
    this.#compiles++;
    this.#compileStarts.push(startedAt);
  }

  releaseCompile(startedAt = Number.NaN): void {
    if (this.#compiles > 0) this.#compiles--;
    const i = Number.isNaN(startedAt) ? this.#compileStarts.findIndex((t) => Number.isNaN(t)) : this.#compileStarts.indexOf(startedAt);
    this.#compileStarts.splice(i === -1 ? 0 : i, 1);
  }

  /** Folds one compile time into the moving average (weight `alpha` for the new sample). */
  recordCompileTime(ms: number, alpha: number): void {
    this.#compileMs = this.#compileMs === undefined ? ms : this.#compileMs + alpha * (ms - this.#compileMs);
  }

  setReportedSlots(n: number | undefined): boolean {
    if (this.#reportedSlots === n) return false;
    this.#reportedSlots = n;
    return true;
  }

  /** Starts a slow-start ramp at `now` (a member that came back or was added), or ends it. */
  setReadySince(now: number | undefined): void {
    this.#readySince = now;
    // A restarted compiler is a different (cold) process: its old compile times say little.
    if (now !== undefined) this.#compileMs = undefined;
  }

  releaseInFlight(): void {
    if (this.#inFlight > 0) this.#inFlight--;
    if (this.#inFlight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Active health. The first result decides at once (a fresh start should neither wait `rise`
   * probes to take traffic nor keep sending to a member that is down); after that it takes
   * `rise` successes or `fall` failures in a row to change state.
   */
  recordProbe(result: ProbeResult, thresholds: { rise: number; fall: number }): HealthTransition | undefined {
    this.#lastProbeError = result.ok ? undefined : result.reason;
    const from = this.#health;
    let to: HealthState = from;
    if (from === 'unknown') {
      to = result.ok ? 'healthy' : 'unhealthy';
    } else if (result.ok === (from === 'healthy')) {
      this.#streak = 0;
    } else {
      this.#streak++;
      if (this.#streak >= (from === 'healthy' ? thresholds.fall : thresholds.rise)) to = from === 'healthy' ? 'unhealthy' : 'healthy';
    }
    if (to === from) return undefined;
    this.#health = to;
    this.#streak = 0;
    return { from, to };
  }

  /** Passive health: a real request succeeded. Returns true when it ended a probation. */
  recordRequestSuccess(now: number): boolean {
    // A request sent before the ejection may still succeed during it; that does not lift it.
    if (this.isEjected(now)) return false;
    this.#passiveFailures = 0;
    if (this.#ejectedUntil === undefined) return false;
    this.#ejectedUntil = undefined;
    return true;
  }

  /**
   * Passive health: a real request failed. Returns the end of the cool-off when this failure
   * ejected the member. On probation one failure is enough.
   */
  recordRequestFailure(now: number, limits: { failures: number; coolOff: number }): number | undefined {
    // Failures of requests sent before the ejection say nothing new.
    if (this.isEjected(now)) return undefined;
    if (!this.onProbation(now)) {
      this.#passiveFailures++;
      if (this.#passiveFailures < limits.failures) return undefined;
    }
    this.#passiveFailures = 0;
    this.#ejectedUntil = now + limits.coolOff;
    return this.#ejectedUntil;
  }

  clearEjection(): void {
    this.#passiveFailures = 0;
    this.#ejectedUntil = undefined;
  }
}

/** Why a member may not take a new request now, or undefined when it may. */
export function ineligibleReason(member: Member, now: number): IneligibleReason | undefined {
  if (member.draining) return 'draining';
  // 'unknown' counts as eligible so that a fresh start does not answer 503 before the first probe.
  if (member.activeChecks && member.health === 'unhealthy') return 'unhealthy';
  if (member.isEjected(now)) return 'ejected';
  if (member.maxInFlight !== undefined && member.inFlight >= member.maxInFlight) return 'full';
  return undefined;
}

export function eligible(member: Member, now: number): boolean {
  return ineligibleReason(member, now) === undefined;
}
