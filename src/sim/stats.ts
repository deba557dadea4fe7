// Summaries of measured latencies: nearest-rank percentiles over the exact values, and a
// histogram with logarithmic buckets, which keeps a fleet's result small whatever its size and
// shows compile times from milliseconds to minutes on one axis.

export type LatencySummary = { count: number; meanMs: number | null; p50Ms: number | null; p90Ms: number | null; p99Ms: number | null; maxMs: number | null };
/** Values above the previous bucket's `leMs` and at most this one's. */
export type HistogramBucket = { leMs: number; count: number };

/** The nearest-rank q-quantile (0 < q ≤ 1) of ascending values. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarise(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? null : sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return {
    count: sorted.length,
    meanMs: mean === null ? null : Math.round(mean * 10) / 10,
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.length === 0 ? null : sorted[sorted.length - 1]!,
  };
}

/** Bucket bounds 10^(k/perDecade) ms, rounded to 3 significant digits; empty buckets left out. */
export function logHistogram(values: readonly number[], perDecade = 10): HistogramBucket[] {
  const counts = new Map<number, number>();
  for (const v of values) {
    const k = v <= 1 ? 0 : Math.ceil(Math.log10(v) * perDecade - 1e-9);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([k, count]) => ({ leMs: Number((10 ** (k / perDecade)).toPrecision(3)), count }));
}
