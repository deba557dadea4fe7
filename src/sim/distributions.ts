import { RingmasterError } from '../lib/errors.ts';
import type { Random } from '../lib/random.ts';

// The shapes a simulated compiler draws its times from. Compile times of a real fleet are skewed
// to the right (most nodes compile in about the mean, a few large ones take many times longer), so
// they are log-normal, set from the two figures operators know: the mean and the p99.

/** z of the 99th percentile of the standard normal distribution. */
const z99 = 2.3263478740408408;

export type LogNormal = { mu: number; sigma: number };

/**
 * The log-normal whose mean and 99th percentile are the given ones. With
 * mean = exp(mu + sigma²/2) and p99 = exp(mu + z·sigma), sigma solves sigma²/2 − z·sigma + ln(p99/mean) = 0;
 * the smaller root is the one whose p99 lies above its mean. No log-normal has a p99 above
 * exp(z²/2) ≈ 14.97 times its mean, and none a p99 below its mean.
 */
export function logNormalFromMeanP99(meanMs: number, p99Ms: number, what = 'compile'): LogNormal {
  if (!(meanMs > 0) || !Number.isFinite(meanMs)) throw new RingmasterError('RM_CONFIG_INVALID', `${what} mean must be a positive number of milliseconds, not ${meanMs}`);
  if (!(p99Ms >= meanMs) || !Number.isFinite(p99Ms)) throw new RingmasterError('RM_CONFIG_INVALID', `${what} p99 (${p99Ms} ms) must be at least the mean (${meanMs} ms)`);
  const ratio = Math.log(p99Ms / meanMs);
  const disc = z99 * z99 - 2 * ratio;
  if (disc < 0) {
    throw new RingmasterError('RM_CONFIG_INVALID', `${what} p99 (${p99Ms} ms) cannot exceed ${(Math.exp((z99 * z99) / 2)).toFixed(1)} times the mean (${meanMs} ms) for a log-normal distribution`);
  }
  const sigma = z99 - Math.sqrt(disc);
  return { mu: Math.log(meanMs) - (sigma * sigma) / 2, sigma };
}

/** One standard normal draw (Box–Muller); 1 − next() keeps the logarithm away from 0. */
export function normalDraw(random: Random): number {
  const u1 = 1 - random.next();
  const u2 = random.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

export function logNormalDraw(d: LogNormal, random: Random): number {
  return Math.exp(d.mu + d.sigma * normalDraw(random));
}

/** The 99th percentile of a log-normal, for reports and tests. */
export function logNormalP99(d: LogNormal): number {
  return Math.exp(d.mu + z99 * d.sigma);
}

export type Warmup = {
  /** Compile times are multiplied by this right after start (a cold JVM); 1 means no warm-up. */
  factor: number;
  /** Time after which compile times are back to normal. */
  periodMs: number;
  /** linear: straight down to 1 at periodMs; exponential: fast at first (e^(−5t/period)), exactly 1 at periodMs. */
  shape: 'linear' | 'exponential';
};

export const noWarmup: Warmup = { factor: 1, periodMs: 0, shape: 'linear' };

/** The multiplier `sinceStartMs` after the compiler became ready. */
export function warmupFactor(w: Warmup, sinceStartMs: number): number {
  if (w.factor <= 1 || w.periodMs <= 0 || sinceStartMs >= w.periodMs) return 1;
  const t = Math.max(0, sinceStartMs) / w.periodMs;
  const left = w.shape === 'linear' ? 1 - t : Math.exp(-5 * t);
  return 1 + (w.factor - 1) * left;
}
