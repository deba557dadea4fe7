import { RingmasterError } from '../lib/errors.ts';
import type { Random } from '../lib/random.ts';
import { logNormalDraw, logNormalFromMeanP99, type LogNormal } from './distributions.ts';

// What a simulated agent does between receiving its catalog and sending its report: the apply.
// A real apply takes several times the compile (packages, services, execs), and asks the server
// for the metadata of every `file` whose source is puppet:///…, at whatever point of the run the
// resource comes up. Behind an L4 balancer that keeps the run's connection (and the compiler it
// was sent to) open through the apply, which is why the apply matters to compile scheduling.

export type ApplyOptions = {
  /** Time the apply itself works, log-normal like compiles; a mean of 0 is no apply (requests back to back). */
  meanMs: number;
  p99Ms: number;
};

export type ApplyPlan = {
  /** The apply's own work, without the time its requests wait for answers. */
  workMs: number;
  /** For each sourced file, how much of the work is done when its metadata is asked for; ascending. */
  fileAtMs: number[];
};

/** The log-normal of the apply time, or undefined when there is no apply; refuses impossible shapes. */
export function applyDistribution(o: ApplyOptions | undefined, what = 'apply'): LogNormal | undefined {
  if (o === undefined || o.meanMs === 0) return undefined;
  if (!Number.isFinite(o.meanMs) || o.meanMs < 0) throw new RingmasterError('RM_CONFIG_INVALID', `${what} mean must be 0 (none) or a positive number of milliseconds, not ${o.meanMs}`);
  return logNormalFromMeanP99(o.meanMs, o.p99Ms, what);
}

/**
 * One run's apply. Without `sourcedFiles`, 2 or 3 files at random (what the simulated agents
 * always did); without an apply, every file at 0, so they follow the catalog back to back.
 */
export function planApply(d: LogNormal | undefined, sourcedFiles: number | undefined, random: Random): ApplyPlan {
  const files = sourcedFiles ?? 2 + Math.floor(random.next() * 2);
  if (d === undefined) return { workMs: 0, fileAtMs: Array.from({ length: files }, () => 0) };
  const workMs = Math.round(logNormalDraw(d, random));
  const fileAtMs = Array.from({ length: files }, () => Math.floor(random.next() * workMs)).sort((a, b) => a - b);
  return { workMs, fileAtMs };
}
