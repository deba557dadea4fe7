import type { PolicyKind } from './policies/policy.ts';
import { effectiveSlots, slotsOf, type CapacitySpec, type WarmReference } from './capacity.ts';
import { ineligibleReason, type HealthState, type IneligibleReason, type Member } from './member.ts';

// The pool as the status endpoint, the admin API and `ringmaster status` show it. Plain JSON:
// absent values are null rather than undefined so that every key is always present.

export type MemberSnapshot = {
  name: string;
  url: string;
  priority: number;
  weight: number;
  maxInFlight: number | null;
  inFlight: number;
  draining: boolean;
  /** 'unknown' until the first probe, and always when active checks are off. */
  health: HealthState;
  activeChecks: boolean;
  lastProbeError: string | null;
  /** Epoch ms while ejected; null otherwise. */
  ejectedUntil: number | null;
  /** Back from an ejection; the next failed request ejects again at once. */
  probation: boolean;
  eligible: boolean;
  reason: IneligibleReason | null;
  /** Catalog compiles running on it by ringmaster's count. */
  compiles: number;
  /** Its compile slots (null = not limited), the share usable now during slow start, and where the number comes from. */
  compileSlots: number | null;
  usableSlots: number | null;
  slotsFrom: 'member' | 'reported' | 'pool' | null;
  /** Moving average compile time, ms. */
  compileMs: number | null;
  /** Epoch ms when its slow-start ramp ends, while it ramps. */
  rampUntil: number | null;
};

export type PoolSnapshot = {
  name: string;
  policy: PolicyKind;
  /** How many members may take a request now. */
  eligible: number;
  /** Compiles waiting for a slot, and how long the oldest has waited (ms). */
  queued: number;
  oldestWaitMs: number;
  members: MemberSnapshot[];
};

export function snapshotMember(member: Member, now: number, capacity: CapacitySpec, warm?: WarmReference): MemberSnapshot {
  const reason = ineligibleReason(member, now) ?? null;
  const slots = slotsOf(member, capacity);
  const rampUntil = member.readySince === undefined || capacity.slowStart <= 0 ? undefined : member.readySince + capacity.slowStart;
  return {
    name: member.name,
    url: member.url,
    priority: member.priority,
    weight: member.weight,
    maxInFlight: member.maxInFlight ?? null,
    inFlight: member.inFlight,
    draining: member.draining,
    health: member.health,
    activeChecks: member.activeChecks,
    lastProbeError: member.lastProbeError ?? null,
    ejectedUntil: member.isEjected(now) ? (member.ejectedUntil ?? null) : null,
    probation: member.onProbation(now),
    eligible: reason === null,
    reason,
    compiles: member.compiles,
    compileSlots: slots ?? null,
    usableSlots: effectiveSlots(member, capacity, now, warm) ?? null,
    slotsFrom: member.spec.compileSlots !== undefined ? 'member' : member.reportedSlots !== undefined ? 'reported' : slots !== undefined ? 'pool' : null,
    compileMs: member.compileMs === undefined ? null : Math.round(member.compileMs),
    rampUntil: rampUntil !== undefined && rampUntil > now && slots !== undefined ? rampUntil : null,
  };
}

export function snapshotPool(name: string, spec: { policy: PolicyKind; capacity: CapacitySpec }, members: readonly Member[], now: number, queue: { queued: number; oldestWaitMs: number }, warm?: WarmReference): PoolSnapshot {
  const snapshots = members.map((m) => snapshotMember(m, now, spec.capacity, warm));
  return { name, policy: spec.policy, eligible: snapshots.filter((m) => m.eligible).length, ...queue, members: snapshots };
}
