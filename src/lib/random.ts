import { randomBytes } from 'node:crypto';

// Randomness is injected so that tests can be repeated exactly.
export type Random = {
  /** A float in [0, 1). */
  next(): number;
  bytes(n: number): Buffer;
};

export const systemRandom: Random = {
  next: () => Math.random(),
  bytes: (n) => randomBytes(n),
};

/** Deterministic generator (mulberry32) for tests and reproducible simulations. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
  };
}
