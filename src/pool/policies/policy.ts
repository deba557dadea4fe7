import type { Random } from '../../lib/random.ts';
import { createConsistentHash } from './consistent-hash.ts';
import { createLeastInFlight } from './least-in-flight.ts';
import { createPowerOfTwo } from './power-of-two.ts';
import { createRoundRobin } from './round-robin.ts';
import { createWeightedRoundRobin } from './weighted-round-robin.ts';

// A policy only chooses among members the pool has already found eligible (healthy, not
// drained, not ejected, not full, lowest tier). Keeping eligibility out of the policies means
// every policy sees the same notion of "available" and none re-implements health bookkeeping.

/** What a policy needs to know of a member. `weight` is positive. */
export type Candidate = { readonly name: string; readonly weight: number; readonly inFlight: number };

/** `key` is the agent's certname when known. */
export type PickContext = { key?: string | undefined };

export type PolicyKind = 'least-in-flight' | 'round-robin' | 'weighted-round-robin' | 'power-of-two' | 'consistent-hash';

export const policyKinds: readonly PolicyKind[] = ['least-in-flight', 'round-robin', 'weighted-round-robin', 'power-of-two', 'consistent-hash'];

export type Policy = {
  readonly kind: PolicyKind;
  /**
   * Returns one of `candidates` (the same object), or undefined when there are none. The set may
   * differ from call to call; state is kept by member name.
   */
  pick<C extends Candidate>(candidates: readonly C[], ctx: PickContext): C | undefined;
};

export type PolicyDeps = { random: Random };

export function createPolicy(kind: PolicyKind, deps: PolicyDeps): Policy {
  switch (kind) {
    case 'least-in-flight':
      return createLeastInFlight(deps);
    case 'round-robin':
      return createRoundRobin();
    case 'weighted-round-robin':
      return createWeightedRoundRobin();
    case 'power-of-two':
      return createPowerOfTwo(deps);
    case 'consistent-hash':
      return createConsistentHash(deps);
  }
}
