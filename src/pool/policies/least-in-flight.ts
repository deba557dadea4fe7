import type { Candidate, Policy, PolicyDeps } from './policy.ts';

// The default: a compile takes seconds and holds one JRuby instance, so the member with the
// fewest requests running (relative to its weight) is the one most likely to have a free JRuby.

/**
 * Compares load relative to weight (inFlight / weight) without dividing, so equal ratios such
 * as 1/3 and 2/6 compare as exactly equal. Negative when `a` is less loaded.
 */
export function compareLoad(a: Candidate, b: Candidate): number {
  return a.inFlight * b.weight - b.inFlight * a.weight;
}

export function createLeastInFlight(deps: PolicyDeps): Policy {
  return {
    kind: 'least-in-flight',
    pick(candidates) {
      let best: (typeof candidates)[number] | undefined;
      let ties = 0;
      for (const c of candidates) {
        const cmp = best === undefined ? -1 : compareLoad(c, best);
        if (cmp < 0) {
          best = c;
          ties = 1;
        } else if (cmp === 0) {
          // Reservoir sampling: each of the tied members ends up chosen with equal chance, so an
          // idle fleet is not filled from the first member in config order.
          ties++;
          if (deps.random.next() * ties < 1) best = c;
        }
      }
      return best;
    },
  };
}
