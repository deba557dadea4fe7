import type { Policy, PolicyDeps } from './policy.ts';
import { compareLoad } from './least-in-flight.ts';

// Power of two random choices: nearly as even as least-in-flight, but several gateways sharing
// one fleet do not all pile onto the same least-loaded member at once.

export function createPowerOfTwo(deps: PolicyDeps): Policy {
  return {
    kind: 'power-of-two',
    pick(candidates) {
      const n = candidates.length;
      if (n <= 1) return candidates[0];
      const i = Math.floor(deps.random.next() * n);
      let j = Math.floor(deps.random.next() * (n - 1));
      if (j >= i) j++;
      const a = candidates[i];
      const b = candidates[j];
      if (a === undefined || b === undefined) return a ?? b;
      return compareLoad(b, a) < 0 ? b : a;
    },
  };
}
