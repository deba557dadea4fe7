import type { Member } from './member.ts';

// Where a compile finishes first: on a member with a free slot now, or on a faster member once
// one of its running compiles is done. The least-time policy alone only chooses among members
// with a free slot, so when the fast compilers are busy a compile goes to a slow (or cold,
// restarted) one and takes its long time there, which is where the p99 comes from. A plan is
// built for one pass over the queue: each waiter in turn takes the member where it is expected
// to finish soonest, and when that member is busy the waiter claims its next free slot and keeps
// waiting, so the waiters behind it see that slot as taken and may be better off on the slower
// member. With members of equal speed nothing ever waits while a slot is free.

/** A member as the plan sees it: its compile time, free slots, and when its busy slots free up. */
type Lane = {
  member: Member;
  /** Moving average compile time, or the pool's average for a member without one yet. */
  ms: number;
  free: number;
  /** Expected time until each busy slot frees up, in ms from now (claims push these out). */
  busy: number[];
  /** Compiles running plus granted in this pass, and usable slots, to spread equal members. */
  load: number;
  slots: number;
};

/** Finishing within this share of the soonest counts as soon. */
const nearShare = 1.1;

export type LaneInput = { member: Member; slots: number | undefined };

/**
 * The expected time left of a compile that has run `elapsedMs` on a member averaging `ms`. Past
 * the average it is not about to end: compile times have a long tail, so the longer one has run,
 * the longer it is likely to go on.
 */
export function expectedLeft(ms: number, elapsedMs: number): number {
  return elapsedMs < ms ? ms - elapsedMs : elapsedMs / 2;
}

export class FinishFirstPlan {
  #lanes: Lane[];

  /** `inputs`: the eligible members of one tier (full ones included), with their usable slots. */
  constructor(inputs: readonly LaneInput[], now: number) {
    let known = 0;
    let sum = 0;
    for (const { member } of inputs) {
      if (member.compileMs !== undefined) {
        known++;
        sum += member.compileMs;
      }
    }
    const fallback = known > 0 ? sum / known : 1;
    this.#lanes = inputs.map(({ member, slots }) => {
      const ms = member.compileMs ?? fallback;
      const busy = member.compileStarts.map((t) => (Number.isNaN(t) ? ms : expectedLeft(ms, now - t)));
      const usable = slots ?? Infinity;
      return { member, ms, free: Math.max(0, usable - member.compiles), busy, load: member.compiles, slots: slots ?? member.weight };
    });
  }

  /**
   * The member for the next compile in line (not one of `exclude`), or 'wait' when it is
   * expected to finish sooner by waiting for a busy member (whose next slot it then claims), or
   * undefined when no member can take it at all. `pick` breaks ties among free members.
   */
  next(exclude: ReadonlySet<string> | undefined, pick: (tied: Member[]) => Member): Member | 'wait' | undefined {
    const options: { lane: Lane; finish: number }[] = [];
    let soonest: { lane: Lane; finish: number } | undefined;
    for (const lane of this.#lanes) {
      if (exclude?.has(lane.member.name)) continue;
      const finish = lane.free > 0 ? lane.ms : lane.busy.length > 0 ? Math.min(...lane.busy) + lane.ms : Infinity;
      if (finish === Infinity) continue;
      const option = { lane, finish };
      options.push(option);
      if (!soonest || finish < soonest.finish) soonest = option;
    }
    if (!soonest) return undefined;
    // Members within a tenth of the soonest finish count as equally fast: moving averages of
    // equal compilers differ a little, and a free one of them is better than waiting.
    const near = soonest.finish * nearShare;
    let low = Infinity;
    let lightest: Lane[] = [];
    for (const { lane, finish } of options) {
      if (lane.free === 0 || finish > near) continue;
      const share = (lane.load + 1) / lane.slots;
      if (share < low) {
        low = share;
        lightest = [lane];
      } else if (share === low) lightest.push(lane);
    }
    if (lightest.length > 0) {
      const member = lightest.length === 1 ? lightest[0]!.member : pick(lightest.map((l) => l.member));
      const lane = lightest.find((l) => l.member === member) ?? lightest[0]!;
      lane.free--;
      lane.load++;
      lane.busy.push(lane.ms);
      return lane.member;
    }
    // Claim the busy member's soonest slot: this compile will hold it for another `ms`.
    const busy = soonest.lane.busy;
    const i = busy.indexOf(Math.min(...busy));
    busy[i] = busy[i]! + soonest.lane.ms;
    return 'wait';
  }

  /** Whether some member has a free slot that the plan chose not to use (so a later look may). */
  get holdsFreeSlots(): boolean {
    return this.#lanes.some((l) => l.free > 0);
  }

  /** The shortest compile time among the members, to pace a later look. */
  get shortestMs(): number {
    return Math.min(...this.#lanes.map((l) => l.ms));
  }
}
