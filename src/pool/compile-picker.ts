import type { Random } from '../lib/random.ts';
import { effectiveSlots, hasFreeSlot, type CapacitySpec, type WarmReference } from './capacity.ts';
import { FinishFirstPlan } from './finish-first.ts';
import { eligible, ineligibleReason, type Member } from './member.ts';
import type { Policy } from './policies/policy.ts';
import type { CompileContext } from './pool.ts';

// Which member each compile in line goes to, in one pass over the pool's queue: with least-time
// a finish-first plan (a compile may wait for a faster member while a slower one has a free
// slot), with the other policies any free slot the policy picks.

/** One call per compile, in queue order; undefined = it waits. */
export type CompilePicker = ((ctx: CompileContext) => Member | undefined) & {
  /** Whether a free slot was left unused (the compiles chose to wait for faster members). */
  holdsFreeSlots?: () => boolean;
  /** The shortest compile time among the members, to pace a later look. */
  shortestMs?: () => number;
};

export type PickerState = { members: readonly Member[]; capacity: CapacitySpec; policy: Policy; random: Random };

export function compilePicker(state: PickerState, now: number): CompilePicker {
  const { members, capacity, policy, random } = state;
  const warm = warmReference(members, capacity, now);
  const plain = (ctx: CompileContext): Member | undefined => {
    const tier = lowestTier(members, (m) => ctx.exclude?.has(m.name) !== true && eligible(m, now) && hasFreeSlot(m, capacity, now, warm));
    if (tier.length === 0) return undefined;
    const views = tier.map((member) => ({ member, name: member.name, weight: member.weight, inFlight: member.inFlight, compiles: member.compiles, compileSlots: effectiveSlots(member, capacity, now, warm), compileMs: member.compileMs }));
    return policy.pick(views, { key: ctx.key, compile: true })?.member;
  };
  if (policy.kind !== 'least-time') return plain;
  // The tier compiles use: the lowest with a free slot (its full members included, since a
  // compile may wait for one of them), else the lowest one can wait in.
  const free = lowestTier(members, (m) => eligible(m, now) && hasFreeSlot(m, capacity, now, warm));
  const priority = free[0]?.priority;
  const tier = lowestTier(members, (m) => eligibleIgnoringFull(m, now) && (priority === undefined || m.priority === priority));
  const plan = new FinishFirstPlan(tier.map((member) => ({ member, slots: effectiveSlots(member, capacity, now, warm) })), now);
  const tie = (tied: Member[]): Member => tied[Math.floor(random.next() * tied.length)] ?? tied[0]!;
  const picker = (ctx: CompileContext): Member | undefined => {
    const choice = plan.next(ctx.exclude, tie);
    if (choice === 'wait') return undefined;
    // A retry that excludes the whole planned tier may still go to another tier.
    return choice ?? plain(ctx);
  };
  return Object.assign(picker, { holdsFreeSlots: () => plan.holdsFreeSlots, shortestMs: () => plan.shortestMs });
}

/** The eligible members that are not ramping up, for judging those that are. */
export function warmReference(members: readonly Member[], capacity: CapacitySpec, now: number): WarmReference {
  let count = 0;
  let known = 0;
  let sum = 0;
  for (const m of members) {
    if (!eligibleIgnoringFull(m, now)) continue;
    if (m.readySince !== undefined && capacity.slowStart > 0 && now - m.readySince < capacity.slowStart) continue;
    count++;
    if (m.compileMs !== undefined) {
      known++;
      sum += m.compileMs;
    }
  }
  return { members: count, compileMs: known > 0 ? sum / known : undefined };
}

/** Eligible, or not only because it is full: it will take requests again once one finishes. */
export function eligibleIgnoringFull(m: Member, now: number): boolean {
  const reason = ineligibleReason(m, now);
  return reason === undefined || reason === 'full';
}

/** The members that pass `ok` in the lowest priority tier that has any (SRV semantics). */
export function lowestTier(members: readonly Member[], ok: (m: Member) => boolean): Member[] {
  let tier = Infinity;
  let out: Member[] = [];
  for (const m of members) {
    if (!ok(m)) continue;
    if (m.priority < tier) {
      tier = m.priority;
      out = [m];
    } else if (m.priority === tier) {
      out.push(m);
    }
  }
  return out;
}
