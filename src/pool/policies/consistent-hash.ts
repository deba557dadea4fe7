import { createHash } from 'node:crypto';
import type { Policy, PolicyDeps } from './policy.ts';
import { createLeastInFlight } from './least-in-flight.ts';

// Keeps each certname on one member, so a compiler's caches (environment, facts) stay warm for
// the agents it already knows. Weighted rendezvous hashing: every member gets a score for the
// key and the highest wins. A member joining takes only the keys it now wins (about 1/n); a
// member leaving or turning ineligible hands its keys to their second choice and nobody else's
// move. SHA-1 is used for its spread and because it gives the same answer in every process and
// on every gateway, not for security.

/** A stable uniform value in (0, 1) for one key and member name. */
export function hashUnit(key: string, name: string): number {
  const digest = createHash('sha1').update(key).update('\0').update(name).digest();
  // 52 bits, so that adding the half (which keeps the value off 0 and 1) is still exact.
  const high = digest.readUInt32BE(0) >>> 12;
  const low = digest.readUInt32BE(4);
  return (high * 2 ** 32 + low + 0.5) / 2 ** 52;
}

/**
 * The weighted rendezvous score (Schindelhauer and Schomaker): -weight / ln(u). Each member wins
 * a key with probability weight / total weight.
 */
export function rendezvousScore(key: string, name: string, weight: number): number {
  return -weight / Math.log(hashUnit(key, name));
}

export function createConsistentHash(deps: PolicyDeps): Policy {
  // Without a certname (anonymous requests) there is nothing to keep sticky.
  const fallback = createLeastInFlight(deps);
  return {
    kind: 'consistent-hash',
    pick(candidates, ctx) {
      const key = ctx.key;
      if (key === undefined || key === '') return fallback.pick(candidates, ctx);
      let best: (typeof candidates)[number] | undefined;
      let bestScore = -Infinity;
      for (const c of candidates) {
        const score = rendezvousScore(key, c.name, c.weight);
        // Name order settles exact ties, so the answer does not depend on candidate order.
        if (score > bestScore || (score === bestScore && best !== undefined && c.name < best.name)) {
          best = c;
          bestScore = score;
        }
      }
      return best;
    },
  };
}
