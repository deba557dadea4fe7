import type { Random } from '../lib/random.ts';
import type { Member } from './member.ts';

// Compile capacity: how many catalog compiles a member may run at once. A puppetserver compiles
// one catalog per JRuby instance; more compiles sent to it only wait inside it (and past its
// `max-queued-requests`, fail). ringmaster counts the compiles it sent to each member and holds
// the rest in its own queue, where it can send each one to whichever member frees up first.

export type CapacitySpec = {
  /** Default compile slots of a member that neither sets nor reports its own; undefined = not limited. */
  compileSlots?: number | undefined;
  /** Read each member's JRuby count from puppetserver's jruby-metrics status with the health probe. */
  discover: boolean;
  /** Compiles that may wait in ringmaster's queue; one more is answered 503. */
  maxQueue: number;
  /** How long a compile may wait for a slot before it is answered 503. */
  queueTimeout: number;
  /** A member that came back or was added ramps from one slot to all of them over this time (ending early once its compiles are as fast as the warm members'); 0 = off. */
  slowStart: number;
  /** The Retry-After of an overload 503 is drawn uniformly from this range (seconds), so a herd comes back spread out. */
  retryAfter: { min: number; max: number };
  /** JRubies of each member kept free of compiles for its other requests (pluginsync, files, node, reports); a member keeps at least one compile slot. */
  reserve?: number | undefined;
};

export const defaultCapacity: CapacitySpec = {
  discover: true,
  maxQueue: 1000,
  queueTimeout: 60_000,
  slowStart: 60_000,
  retryAfter: { min: 10, max: 120 },
};

/** Weight of the newest compile time in a member's moving average. */
export const compileTimeAlpha = 0.2;

/** The member's JRubies: its own setting, else what it reported, else the pool's default. */
export function jrubiesOf(member: Member, capacity: CapacitySpec): number | undefined {
  return member.spec.compileSlots ?? member.reportedSlots ?? capacity.compileSlots;
}

/**
 * The member's full compile slots: its JRubies less `capacity.reserve`, never below one. On
 * puppetserver every request borrows a JRuby, so a member whose JRubies all compile makes its
 * pluginsync, file and report requests wait behind compiles of seconds; the reserve keeps some
 * for them, at the price of compile capacity.
 */
export function slotsOf(member: Member, capacity: CapacitySpec): number | undefined {
  const jrubies = jrubiesOf(member, capacity);
  return jrubies === undefined ? undefined : Math.max(1, jrubies - (capacity.reserve ?? 0));
}

/**
 * What the warm members of a pool (those not ramping up) are like: how many are eligible, and
 * their average compile time when known. A ramping member is judged against them.
 */
export type WarmReference = { members: number; compileMs: number | undefined };

/** A ramping member whose compile time is within this share of the warm members' is warm. */
export const warmShare = 1.25;

/**
 * Slots usable now. During slow start: one until the member has a compile time of its own (it
 * proves itself on one compile), then a share growing linearly with time since it came back,
 * never below one. With no warm member to send compiles to instead, holding slots back would
 * only make compiles wait, so a ramping member then has all of them.
 */
export function effectiveSlots(member: Member, capacity: CapacitySpec, now: number, warm?: WarmReference): number | undefined {
  const slots = slotsOf(member, capacity);
  if (slots === undefined) return undefined;
  const since = member.readySince;
  if (since === undefined || capacity.slowStart <= 0) return slots;
  const share = (now - since) / capacity.slowStart;
  if (share >= 1 || warm?.members === 0) return slots;
  if (member.compileMs === undefined) return 1;
  return Math.max(1, Math.floor(slots * Math.max(0, share)));
}

/** Whether a ramping member's compile times show it warm: as fast as the warm members, or nearly. */
export function isWarm(member: Member, warm: WarmReference): boolean {
  return member.compileMs !== undefined && warm.compileMs !== undefined && member.compileMs <= warm.compileMs * warmShare;
}

/** When the member's next slot opens during slow start; undefined when it has all of them, or waits for a compile time. */
export function nextSlotAt(member: Member, capacity: CapacitySpec, now: number, warm?: WarmReference): number | undefined {
  const slots = slotsOf(member, capacity);
  const since = member.readySince;
  if (slots === undefined || since === undefined || capacity.slowStart <= 0 || member.compileMs === undefined) return undefined;
  const current = effectiveSlots(member, capacity, now, warm) ?? slots;
  if (current >= slots) return undefined;
  return since + Math.ceil((capacity.slowStart * (current + 1)) / slots);
}

/** Whether the member may start one more compile now (by ringmaster's own count). */
export function hasFreeSlot(member: Member, capacity: CapacitySpec, now: number, warm?: WarmReference): boolean {
  const slots = effectiveSlots(member, capacity, now, warm);
  return slots === undefined || member.compiles < slots;
}

/** A Retry-After for an overload 503, spread over the configured range. */
export function jitteredRetryAfter(capacity: CapacitySpec, random: Random): number {
  const { min, max } = capacity.retryAfter;
  return min + Math.floor(random.next() * (Math.max(min, max) - min + 1));
}
