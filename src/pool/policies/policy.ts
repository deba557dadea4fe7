import type { Random } from '../../lib/random.ts';
import { createConsistentHash } from './consistent-hash.ts';
import { createLeastInFlight } from './least-in-flight.ts';
import { createLeastTime } from './least-time.ts';
import { createPowerOfTwo } from './power-of-two.ts';
import { createRoundRobin } from './round-robin.ts';
import { createWeightedRoundRobin } from './weighted-round-robin.ts';

// A policy only chooses among members the pool has already found eligible (healthy, not
// drained, not ejected, not full, lowest tier). Keeping eligibility out of the policies means
// every policy sees the same notion of "available" and none re-implements health bookkeeping.

/**
 * What a policy needs to know of a member. `weight` is positive. The compile figures (compiles
 * running, usable compile slots, moving average compile time in ms) are there when known.
 */
export type Candidate = {
  readonly name: string;
  readonly weight: number;
  readonly inFlight: number;
  readonly compiles?: number;
  readonly compileSlots?: number | undefined;
  readonly compileMs?: number | undefined;
};

/** `key` is the agent's certname when known; `compile` marks a catalog compile. */
export type PickContext = { key?: string | undefined; compile?: boolean };

export type PolicyKind = 'least-in-flight' | 'least-time' | 'round-robin' | 'weighted-round-robin' | 'power-of-two' | 'consistent-hash';

export const policyKinds: readonly PolicyKind[] = ['least-in-flight', 'least-time', 'round-robin', 'weighted-round-robin', 'power-of-two', 'consistent-hash'];

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
    case 'least-time':
      return createLeastTime(deps);
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
