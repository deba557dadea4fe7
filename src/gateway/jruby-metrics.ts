// puppetserver's JRuby pool, as its status service reports it at level=debug (allowed without a
// certificate by the default auth.conf): `status.experimental.metrics["num-jrubies"]` is the
// number of JRuby instances, i.e. how many catalogs it compiles at once.

export const jrubyMetricsPath = '/status/v1/services/jruby-metrics?level=debug';

/** The JRuby count in a jruby-metrics status body, or undefined when it is not one. */
export function jrubyCount(body: string): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const n = dig(parsed, ['status', 'experimental', 'metrics', 'num-jrubies']);
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1000 ? n : undefined;
}

function dig(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const key of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
