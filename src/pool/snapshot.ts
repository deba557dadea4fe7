import type { PolicyKind } from './policies/policy.ts';
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
};

export type PoolSnapshot = {
  name: string;
  policy: PolicyKind;
  /** How many members may take a request now. */
  eligible: number;
  members: MemberSnapshot[];
};

export function snapshotMember(member: Member, now: number): MemberSnapshot {
  const reason = ineligibleReason(member, now) ?? null;
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
  };
}

export function snapshotPool(name: string, spec: { policy: PolicyKind }, members: readonly Member[], now: number): PoolSnapshot {
  const snapshots = members.map((m) => snapshotMember(m, now));
  return { name, policy: spec.policy, eligible: snapshots.filter((m) => m.eligible).length, members: snapshots };
}
