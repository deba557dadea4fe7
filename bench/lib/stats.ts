// Latency summaries for the benchmarks.

/** Nearest-rank percentile of an ascending array; NaN for an empty one. */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedAsc.length);
  return sortedAsc[Math.min(sortedAsc.length, Math.max(1, rank)) - 1]!;
}

export type LatencySummary = { count: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number; meanMs: number };

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    meanMs: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Milliseconds on the system's monotonic clock, the same in every process (for times compared across processes). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
