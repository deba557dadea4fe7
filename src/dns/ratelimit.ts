import type { Clock } from '../lib/clock.ts';
import { addressBytes } from './wire.ts';

// Response rate limiting per source, so the responder cannot be used to reflect and amplify
// traffic toward a forged source address: a token bucket per address (per /64 for IPv6, where
// one host holds a whole prefix), refilled on the injected clock. Over the limit, queries are
// dropped, but every `slip`th gets a minimal truncated answer, no larger than the query, so a
// real client behind a busy address retries over TCP (as BIND's RRL does).

export type RateLimitSettings = { perSecond: number; burst: number; slip: number; maxSources: number };
export type Verdict = 'pass' | 'slip' | 'drop';

type Bucket = { tokens: number; at: number; limited: number };

export class RateLimiter {
  #settings: RateLimitSettings;
  #clock: Clock;
  #buckets = new Map<string, Bucket>();

  constructor(settings: RateLimitSettings, clock: Clock) {
    this.#settings = settings;
    this.#clock = clock;
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  check(address: string): Verdict {
    const { perSecond, burst, slip, maxSources } = this.#settings;
    if (perSecond <= 0) return 'pass';
    const key = address.includes(':') ? addressBytes(address).subarray(0, 8).toString('hex') : address;
    const now = this.#clock.now();
    let b = this.#buckets.get(key);
    if (b) {
      // Re-inserted so that the map stays in order of last use and the oldest is forgotten first.
      this.#buckets.delete(key);
      b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * perSecond) / 1000);
      b.at = now;
    } else {
      b = { tokens: burst, at: now, limited: 0 };
    }
    this.#buckets.set(key, b);
    if (this.#buckets.size > maxSources) {
      const oldest = this.#buckets.keys().next();
      if (!oldest.done) this.#buckets.delete(oldest.value);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'pass';
    }
    b.limited++;
    return slip > 0 && b.limited % slip === 0 ? 'slip' : 'drop';
  }
}
