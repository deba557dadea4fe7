// Durations in configuration and on the command line: "30s", "5m", "6h", "90d", "5y", "1y2d", or a
// number of seconds. Years are 365 days, as puppetserver's ca-ttl parser counts them.

const unitSeconds: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
const partPattern = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;

/** Parses a duration into milliseconds, or returns undefined when the text is not one. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text * 1000 : undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (trimmed === '') return undefined;
  partPattern.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = partPattern.exec(trimmed); m; m = partPattern.exec(trimmed)) {
    total += Number(m[1]) * (unitSeconds[m[2] ?? ''] ?? Number.NaN) * 1000;
    consumed = partPattern.lastIndex;
  }
  if (consumed !== trimmed.length || !Number.isFinite(total)) return undefined;
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  const units: [string, number][] = [['y', 31536000000], ['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
  let rest = ms;
  let out = '';
  for (const [u, size] of units) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${u}`;
      rest %= size;
    }
  }
  return out === '' ? `${ms}ms` : rest > 0 ? `${out}${rest}ms` : out;
}
