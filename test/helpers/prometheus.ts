// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it throws
// on anything Prometheus would refuse or that a scrape should never contain (a sample before its
// TYPE, a family split in two, a duplicate series, bad names or escapes, histogram buckets that
// are not cumulative or whose +Inf bucket differs from _count).

export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Family = { name: string; type: string; help: string | undefined; samples: Sample[] };
export type Exposition = Map<string, Family>;

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Exposition {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families: Exposition = new Map();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name = '', rest = ''] = m;
      if (!metricName.test(name)) throw new Error(`bad metric name in ${where}`);
      const family = open(name, where);
      if (kind === 'TYPE') {
        if (!types.has(rest)) throw new Error(`unknown type in ${where}`);
        if (family.type !== 'untyped' || family.samples.length > 0) throw new Error(`TYPE after samples or twice in ${where}`);
        family.type = rest;
      } else {
        if (family.help !== undefined) throw new Error(`HELP twice in ${where}`);
        family.help = unescape(rest, false, where);
      }
      return;
    }
    const sample = parseSample(line, where);
    const family = open(familyOf(sample.name, families), where);
    if (family.type === 'untyped' && family.name !== sample.name) throw new Error(`sample without its TYPE in ${where}`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series in ${where}`);
    seen.add(key);
    family.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;

  function open(name: string, where: string): Family {
    if (current?.name === name) return current;
    if (closed.has(name) || families.has(name)) throw new Error(`metric family ${name} is split in ${where}`);
    if (current) closed.add(current.name);
    current = { name, type: 'untyped', help: undefined, samples: [] };
    families.set(name, current);
    return current;
  }
}

/** The family a sample belongs to: `x_bucket`, `x_sum`, `x_count` belong to histogram `x`. */
function familyOf(sampleName: string, families: Exposition): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const base = sampleName.slice(0, -suffix.length);
    const f = families.get(base);
    if (f && (f.type === 'histogram' || f.type === 'summary')) return base;
  }
  return sampleName;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (!m) throw new Error(`not a sample: ${where}`);
  const [, name = '', labelText, valueText = ''] = m;
  const labels: Record<string, string> = {};
  if (labelText !== undefined) {
    let rest = labelText.slice(1, -1);
    while (rest.length > 0) {
      const l = /^([^=]+)="((?:[^"\\]|\\.)*)"(,|$)/.exec(rest);
      if (!l) throw new Error(`bad labels in ${where}`);
      const [whole, key = '', raw = ''] = l;
      if (!labelName.test(key)) throw new Error(`bad label name ${key} in ${where}`);
      if (key in labels) throw new Error(`label ${key} twice in ${where}`);
      labels[key] = unescape(raw, true, where);
      rest = rest.slice(whole.length);
    }
  }
  return { name, labels, value: parseValue(valueText, where) };
}

/** As Prometheus reads values (Go's ParseFloat): Inf and NaN in any case (prom-client writes "Nan"). */
function parseValue(text: string, where: string): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value in ${where}`);
  return Number(text);
}

function unescape(raw: string, quotes: boolean, where: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    if (c === '"' && quotes) return '"';
    throw new Error(`bad escape \\${c} in ${where}`);
  });
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(le, f.name), s.value]);
    } else if (s.name === `${f.name}_count`) g.count = s.value;
    else if (s.name !== `${f.name}_sum`) throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    for (let i = 1; i < g.buckets.length; i++) {
      const [le, n] = g.buckets[i]!;
      const [prevLe, prevN] = g.buckets[i - 1]!;
      if (le <= prevLe || n < prevN) throw new Error(`${f.name}${key}: buckets not increasing and cumulative`);
    }
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${f.name}${key}: the +Inf bucket is not _count`);
  }
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
export function sampleSum(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return samples(e, name, labels).reduce((n, s) => n + s.value, 0);
}

/** The samples named `name` whose labels include `labels`. */
export function samples(e: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  const family = e.get(familyOf(name, e));
  if (!family) return [];
  return family.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
