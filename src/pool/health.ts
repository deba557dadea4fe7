import type { Clock, TimerHandle } from '../lib/clock.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Member, ProbeResult } from './member.ts';

// Active health checks: each member is probed on its own timer. The next probe is scheduled
// `interval` after the previous one answered or timed out, so one member is never probed twice
// at once, even when a probe hangs past its timeout (see `#run`).

/**
 * Asks one member whether it is healthy (ringmaster's is a GET of `path`, 2xx = healthy). It
 * should give up by itself after `timeoutMs`; the checker also stops waiting then.
 */
export type Probe = (member: Member, timeoutMs: number, path: string) => Promise<ProbeResult>;

export type ActiveHealthSettings = { path: string; interval: number; timeout: number };

export type HealthCheckerDeps = {
  clock: Clock;
  probe: Probe;
  /** Every probe outcome, including timeouts. Never called after `stop()` or `remove()`. */
  onResult(member: Member, result: ProbeResult): void;
};

type Schedule = {
  timer: TimerHandle | undefined;
  /** The probe whose promise has not settled yet, even if its result no longer counts. */
  running: object | undefined;
  active: boolean;
};

export class ActiveHealthChecker {
  readonly settings: Readonly<ActiveHealthSettings>;
  #deps: HealthCheckerDeps;
  #schedules = new Map<Member, Schedule>();
  #running = false;

  constructor(settings: ActiveHealthSettings, deps: HealthCheckerDeps) {
    this.settings = { ...settings };
    this.#deps = deps;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Probes every member at once, then each every `interval`. */
  start(members: readonly Member[]): void {
    if (this.#running) return;
    this.#running = true;
    for (const member of members) this.add(member);
  }

  /** Starts probing a member (at once) if the checker runs; a member already probed is left alone. */
  add(member: Member): void {
    if (!this.#running || this.#schedules.has(member)) return;
    const schedule: Schedule = { timer: undefined, running: undefined, active: true };
    this.#schedules.set(member, schedule);
    this.#run(member, schedule);
  }

  remove(member: Member): void {
    const schedule = this.#schedules.get(member);
    if (!schedule) return;
    schedule.active = false;
    schedule.timer?.cancel();
    this.#schedules.delete(member);
  }

  /** Cancels every timer; results still on their way are dropped. */
  stop(): void {
    this.#running = false;
    for (const member of [...this.#schedules.keys()]) this.remove(member);
  }

  #run(member: Member, schedule: Schedule): void {
    schedule.timer = undefined;
    const { timeout, path } = this.settings;
    if (schedule.running !== undefined) {
      // The previous probe timed out and still has not returned. Starting another would stack
      // connections on a member that is already struggling; count the round as failed instead,
      // so a member whose probes hang still goes unhealthy.
      this.#next(member, schedule);
      this.#deps.onResult(member, { ok: false, reason: `previous probe still running after ${timeout} ms` });
      return;
    }
    const token = {};
    schedule.running = token;
    let decided = false;
    const decide = (result: ProbeResult): void => {
      if (decided || !schedule.active) return;
      decided = true;
      timeoutTimer.cancel();
      this.#next(member, schedule);
      this.#deps.onResult(member, result);
    };
    // The timeout runs on the injected clock, so tests can expire a probe without waiting.
    const timeoutTimer = this.#deps.clock.setTimeout(() => decide({ ok: false, reason: `probe timed out after ${timeout} ms` }), timeout);
    schedule.timer = timeoutTimer;
    let answer: Promise<ProbeResult>;
    try {
      answer = this.#deps.probe(member, timeout, path);
    } catch (err) {
      answer = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    answer.then(
      (result) => {
        if (schedule.running === token) schedule.running = undefined;
        decide(result);
      },
      (err: unknown) => {
        if (schedule.running === token) schedule.running = undefined;
        decide({ ok: false, reason: errorMessage(err) });
      },
    );
  }

  // Scheduled before the result is reported, so that a throwing observer cannot stop the probes.
  #next(member: Member, schedule: Schedule): void {
    if (schedule.active) schedule.timer = this.#deps.clock.setTimeout(() => this.#run(member, schedule), this.settings.interval);
  }
}
