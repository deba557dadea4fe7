import type { ManualClock } from '../lib/clock.ts';
import { createLog, type Log, type LogOptions } from '../observability/log.ts';
import type { Probe } from './health.ts';
import type { MemberSpec, ProbeResult } from './member.ts';
import type { PoolSpec } from './pool.ts';
import { defaultCapacity } from './capacity.ts';

// Helpers for the pool's tests (and for tests of code that uses pools): specs with defaults, a
// probe whose answers the test scripts, and a log that keeps its lines.

export function memberSpec(name: string, extra: Partial<MemberSpec> = {}): MemberSpec {
  return { name, url: `http://${name}.example.com:8140`, weight: 1, priority: 0, drain: false, ...extra };
}

type Overrides = {
  members?: MemberSpec[];
  policy?: PoolSpec['policy'];
  active?: Partial<PoolSpec['healthCheck']['active']>;
  passive?: Partial<PoolSpec['healthCheck']['passive']>;
  capacity?: Partial<PoolSpec['capacity']>;
};

export function poolSpec(overrides: Overrides = {}): PoolSpec {
  return {
    name: 'compilers',
    members: overrides.members ?? [memberSpec('a'), memberSpec('b')],
    policy: overrides.policy ?? 'round-robin',
    healthCheck: {
      active: { enabled: true, path: '/status/v1/simple', interval: 5000, timeout: 2000, rise: 2, fall: 2, ...overrides.active },
      passive: { enabled: true, failures: 1, statuses: [502, 504], coolOff: 30_000, ...overrides.passive },
    },
    capacity: { ...defaultCapacity, ...overrides.capacity },
  };
}

/** What a scripted probe does: answer, throw, or hang until the test settles it. */
export type ProbeScript = ProbeResult | 'hang' | Error;

export const up: ProbeResult = { ok: true };
export const down: ProbeResult = { ok: false, reason: 'connection refused' };

/** A probe that answers per member as the test sets it (default: up), and records each call. */
export class ScriptedProbe {
  readonly calls: { member: string; timeoutMs: number; path: string }[] = [];
  #scripts = new Map<string, ProbeScript>();
  #hanging = new Map<string, ((result: ProbeResult) => void)[]>();

  readonly probe: Probe = (member, timeoutMs, path) => {
    this.calls.push({ member: member.name, timeoutMs, path });
    const script = this.#scripts.get(member.name) ?? up;
    if (script instanceof Error) return Promise.reject(script);
    if (script === 'hang') {
      return new Promise((resolve) => {
        const list = this.#hanging.get(member.name) ?? [];
        list.push(resolve);
        this.#hanging.set(member.name, list);
      });
    }
    return Promise.resolve(script);
  };

  /** Every later probe of `member` does this. */
  set(member: string, script: ProbeScript): void {
    this.#scripts.set(member, script);
  }

  /** Answers the hanging probes of `member`. */
  settle(member: string, result: ProbeResult): void {
    for (const resolve of this.#hanging.get(member) ?? []) resolve(result);
    this.#hanging.delete(member);
  }

  callsOf(member: string): number {
    return this.calls.filter((c) => c.member === member).length;
  }
}

/** Lets promise callbacks (probe answers) run; time itself only moves with the ManualClock. */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Moves the clock `ms` forward in `step`s, letting probe answers arrive after each: ManualClock
 * fires timers synchronously, so one big advance would expire every probe before it answers.
 */
export async function advance(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(Math.min(step, ms - done));
    await settled();
  }
}

/** A log at info level whose records the test can read. */
export function recordingLog(): { log: Log; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const destination: NonNullable<LogOptions['destination']> = { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) };
  return { log: createLog({ level: 'info', format: 'json', destination }), records };
}
