import type { Policy } from './policy.ts';

// Plain rotation in name order, ignoring weights and load. The position is remembered as the
// last name picked rather than an index, so a member joining, leaving or being skipped does not
// make the rotation jump over or repeat the others.

export function createRoundRobin(): Policy {
  let last: string | undefined;
  return {
    kind: 'round-robin',
    pick(candidates) {
      let first: (typeof candidates)[number] | undefined;
      let next: (typeof candidates)[number] | undefined;
      for (const c of candidates) {
        if (first === undefined || c.name < first.name) first = c;
        if (last !== undefined && c.name > last && (next === undefined || c.name < next.name)) next = c;
      }
      const chosen = next ?? first;
      if (chosen !== undefined) last = chosen.name;
      return chosen;
    },
  };
}
