import type { Policy } from './policy.ts';

// Smooth weighted round-robin, as nginx does it: each pick adds every member's weight to its
// running score, takes the highest, and takes the total weight off the winner. Weights 5,1,1
// give a,a,b,a,c,a,a instead of a burst of five a's.
//
// nginx keeps a member's score while it is unavailable. Here the set can change on every call
// (a retry excludes the member just tried, a full member drops out for a moment), so a member
// absent from a call loses its score, and whenever the set changes the scores are re-centred to
// sum to zero: a member that joins or comes back starts at the average, neither owed a burst of
// picks nor made to wait behind the others.

export function createWeightedRoundRobin(): Policy {
  const scores = new Map<string, number>();
  return {
    kind: 'weighted-round-robin',
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      let changed = scores.size !== candidates.length;
      let sum = 0;
      for (const c of candidates) {
        const score = scores.get(c.name);
        if (score === undefined) changed = true;
        sum += score ?? 0;
      }
      if (changed) {
        const seen = new Map<string, number>();
        const shift = sum / candidates.length;
        for (const c of candidates) seen.set(c.name, (scores.get(c.name) ?? 0) - shift);
        scores.clear();
        for (const [name, score] of seen) scores.set(name, score);
      }
      let total = 0;
      let best: (typeof candidates)[number] | undefined;
      let bestScore = -Infinity;
      for (const c of candidates) {
        const score = (scores.get(c.name) ?? 0) + c.weight;
        scores.set(c.name, score);
        total += c.weight;
        if (score > bestScore) {
          best = c;
          bestScore = score;
        }
      }
      if (best !== undefined) scores.set(best.name, bestScore - total);
      return best;
    },
  };
}
