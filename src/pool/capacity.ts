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
  /** A member that came back or was added ramps from one slot to all of them over this time; 0 = off. */
  slowStart: number;
  /** The Retry-After of an overload 503 is drawn uniformly from this range (seconds), so a herd comes back spread out. */
  retryAfter: { min: number; max: number };
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

/** The member's full compile slots: its own setting, else what it reported, else the pool's default. */
export function slotsOf(member: Member, capacity: CapacitySpec): number | undefined {
  return member.spec.compileSlots ?? member.reportedSlots ?? capacity.compileSlots;
}

/**
 * Slots usable now: during slow start a share growing linearly with time since the member came
 * back, never below one (a member with no slot would never prove itself).
 */
export function effectiveSlots(member: Member, capacity: CapacitySpec, now: number): number | undefined {
  const slots = slotsOf(member, capacity);
  if (slots === undefined) return undefined;
  const since = member.readySince;
  if (since === undefined || capacity.slowStart <= 0) return slots;
  const share = (now - since) / capacity.slowStart;
  if (share >= 1) return slots;
  return Math.max(1, Math.floor(slots * Math.max(0, share)));
}

/** When the member's next slot opens during slow start; undefined when it has all of them. */
export function nextSlotAt(member: Member, capacity: CapacitySpec, now: number): number | undefined {
  const slots = slotsOf(member, capacity);
  const since = member.readySince;
  if (slots === undefined || since === undefined || capacity.slowStart <= 0) return undefined;
  const current = effectiveSlots(member, capacity, now) ?? slots;
  if (current >= slots) return undefined;
  return since + Math.ceil((capacity.slowStart * (current + 1)) / slots);
}

/** Whether the member may start one more compile now (by ringmaster's own count). */
export function hasFreeSlot(member: Member, capacity: CapacitySpec, now: number): boolean {
  const slots = effectiveSlots(member, capacity, now);
  return slots === undefined || member.compiles < slots;
}

/** A Retry-After for an overload 503, spread over the configured range. */
export function jitteredRetryAfter(capacity: CapacitySpec, random: Random): number {
  const { min, max } = capacity.retryAfter;
  return min + Math.floor(random.next() * (Math.max(min, max) - min + 1));
}
