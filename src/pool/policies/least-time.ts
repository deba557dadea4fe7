import type { Candidate, Policy, PolicyDeps } from './policy.ts';
import { compareLoad } from './least-in-flight.ts';

// For catalog compiles: send each one where it is expected to finish first. A member's expected
// time is its moving average compile time scaled by how full its slots are, so a compiler twice
// as fast takes about twice the compiles without anyone setting weights, and a cold (restarted)
// one takes fewer until its times come down. A member with no compile time yet is assumed to be
// as fast as the average of the others, so a new member gets tried. Other requests (node, file
// metadata, reports) take milliseconds and go to the least loaded member, as in least-in-flight,
// among those with a JRuby free by ringmaster's count when there are any (on puppetserver they
// borrow one too, so on a member whose JRubies all compile they would wait for seconds). The pool
// decides, beyond this policy, whether a compile is better off waiting (finish-first.ts).

/** Expected relative finish time of one more compile on `c`. */
function expected(c: Candidate, fallbackMs: number): number {
  const ms = c.compileMs ?? fallbackMs;
  const slots = c.compileSlots ?? c.weight;
  const running = c.compiles ?? c.inFlight;
  return ((running + 1) / slots) * ms;
}

/** Negative when `a` has a compile slot free by ringmaster's count and `b` has none. */
function compareFree(a: Candidate, b: Candidate): number {
  const free = (c: Candidate) => (c.compileSlots === undefined || c.compiles === undefined || c.compiles < c.compileSlots ? 1 : 0);
  return free(b) - free(a);
}

export function createLeastTime(deps: PolicyDeps): Policy {
  return {
    kind: 'least-time',
    pick(candidates, ctx) {
      let known = 0;
      let sum = 0;
      for (const c of candidates) {
        if (c.compileMs !== undefined) {
          known++;
          sum += c.compileMs;
        }
      }
      const fallback = known > 0 ? sum / known : 1;
      let best: (typeof candidates)[number] | undefined;
      let bestScore = Infinity;
      let ties = 0;
      for (const c of candidates) {
        if (!ctx.compile) {
          const cmp = best === undefined ? -1 : compareFree(c, best) || compareLoad(c, best);
          if (cmp < 0) {
            best = c;
            ties = 1;
          } else if (cmp === 0 && deps.random.next() * ++ties < 1) {
            best = c;
          }
          continue;
        }
        const score = expected(c, fallback);
        if (score < bestScore) {
          best = c;
          bestScore = score;
          ties = 1;
        } else if (score === bestScore && deps.random.next() * ++ties < 1) {
          best = c;
        }
      }
      return best;
    },
  };
}
