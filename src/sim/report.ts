import { formatDuration } from '../lib/duration.ts';
import type { FleetResult, FleetSample } from './fleet-result.ts';
import { describePlan } from './plan.ts';
import { barChart, escapeHtml, lineChart, palette, type Point, type Series } from './svg.ts';

// The fleet report: one self-contained HTML page (inline CSS and SVG, nothing fetched) that an
// operator can mail or attach to a ticket: the key figures, the capacity plan, latency, per-member
// utilisation, queues and failures over time, and the tables behind them.

const maxPoints = 600;

export function formatMs(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return formatDuration(Math.round(ms / 1000) * 1000);
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
const seconds = (ms: number): string => `${Math.round(ms / 100) / 10}s`;
/** Tick labels of the latency axis, whose ticks are powers of ten. */
const tickMs = (ms: number): string => (ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`);

/** At most `maxPoints` points per series: consecutive samples merged by `merge`. */
function thin<T extends { t: number }>(samples: readonly T[], value: (s: T) => number, merge: (vs: number[]) => number): Point[] {
  const per = Math.max(1, Math.ceil(samples.length / maxPoints));
  const out: Point[] = [];
  for (let i = 0; i < samples.length; i += per) {
    const group = samples.slice(i, i + per);
    out.push([group[group.length - 1]!.t, merge(group.map(value))]);
  }
  return out;
}

const mean = (vs: number[]): number => vs.reduce((a, b) => a + b, 0) / Math.max(1, vs.length);
const max = (vs: number[]): number => Math.max(0, ...vs);
const sum = (vs: number[]): number => vs.reduce((a, b) => a + b, 0);

/** Each sample with how much a cumulative count grew since the previous one. */
function deltas(samples: readonly FleetSample[], value: (s: FleetSample) => number): { t: number; delta: number }[] {
  return samples.map((s, i) => ({ t: s.t, delta: value(s) - (i === 0 ? 0 : value(samples[i - 1]!)) }));
}

function table(head: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number, tag: string) => `<${tag}${typeof v === 'number' ? ' class="n"' : ''}>${escapeHtml(String(v))}</${tag}>`;
  return `<table><thead><tr>${head.map((h) => cell(h, 'th')).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v) => cell(v, 'td')).join('')}</tr>`).join('')}</tbody></table>`;
}

function charts(r: FleetResult): string[] {
  const timeAxis = { label: 'time since start', format: seconds, min: 0 };
  const markers = r.events.map((e) => ({ x: e.t, label: e.name }));
  const names = r.members.map((m) => m.name);
  const histogram = r.catalog.histogram.map((b) => ({ x0: b.leMs / 10 ** 0.1, x1: b.leMs, y: b.count }));
  const latencyMarkers = ([['p50', r.catalog.p50Ms], ['p90', r.catalog.p90Ms], ['p99', r.catalog.p99Ms]] as const)
    .flatMap(([label, v]) => (v === null ? [] : [{ x: v, label }]));
  const util: Series[] = names.map((name, i) => ({ name, color: palette[i % palette.length]!, points: thin(r.samples, (s) => (s.util[i] ?? 0) * 100, mean) }));
  const queues: Series[] = [
    { name: `${r.parameters.frontDoor} queue`, color: palette[0]!, points: thin(r.samples, (s) => s.doorQueued, max) },
    ...names.map((name, i) => ({ name: `${name} waiting for a JRuby`, color: palette[(i + 1) % palette.length]!, points: thin(r.samples, (s) => s.queued[i] ?? 0, max) })),
  ];
  const failed = deltas(r.samples, (s) => s.failed);
  const waits = deltas(r.samples, (s) => s.retryAfterWaits);
  const trouble: Series[] = [
    { name: 'failed runs', color: palette[3]!, points: thin(failed, (s) => s.delta, sum) },
    { name: 'Retry-After waits', color: palette[1]!, points: thin(waits, (s) => s.delta, sum) },
    { name: 'runs in progress', color: palette[7]!, points: thin(r.samples, (s) => s.running, max) },
  ];
  return [
    barChart({ title: `Catalog latency (${r.catalog.count} catalogs)`, x: { label: 'latency (log scale)', format: tickMs, log: true }, y: { label: 'catalogs', format: (v) => String(v), integer: true }, markers: latencyMarkers }, histogram),
    lineChart({ title: 'JRuby utilisation per member', x: timeAxis, y: { label: 'busy slots %', format: (v) => `${v}%`, min: 0, max: 100 }, markers }, util),
    lineChart({ title: 'Queue depth', x: timeAxis, y: { label: 'requests', format: (v) => String(v), min: 0, integer: true }, markers }, queues),
    lineChart({ title: 'Failures, Retry-After waits and runs in progress', x: timeAxis, y: { label: 'count per sample', format: (v) => String(v), min: 0, integer: true }, markers }, trouble),
  ];
}

const css = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:980px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 16px}.plan{background:#f4f7fb;border-left:4px solid #1f77b4;padding:8px 12px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}.bad b{color:#d62728}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;margin:12px 0;max-width:100%;height:auto}
svg .title{font-weight:600;font-size:13px}svg .grid{stroke:#eee}svg .axis{stroke:#999}
svg .xtick{font-size:11px;text-anchor:middle;fill:#555}svg .ytick{font-size:11px;text-anchor:end;dominant-baseline:middle;fill:#555}
svg .xlabel,svg .ylabel{font-size:11px;text-anchor:middle;fill:#555}svg .legend{font-size:11px;fill:#333}
svg .marker{stroke:#d62728;stroke-dasharray:4 3}svg .mlabel{font-size:10px;fill:#d62728}svg .empty{fill:#999;text-anchor:middle}
`;

export function renderFleetReport(r: FleetResult): string {
  const p = r.parameters;
  const card = (label: string, value: string, bad = false) => `<div class="card${bad ? ' bad' : ''}"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`;
  const cards = [
    card('runs ok', String(r.runs.ok)),
    card('runs failed', String(r.runs.failed), r.runs.failed > 0),
    card('catalog p50', formatMs(r.catalog.p50Ms)),
    card('catalog p90', formatMs(r.catalog.p90Ms)),
    card('catalog p99', formatMs(r.catalog.p99Ms)),
    card('catalog max', formatMs(r.catalog.maxMs)),
    card('first runs all served after', formatMs(r.herdDrainMs)),
    card('Retry-After waits', `${r.retryAfter.waits} (${formatMs(r.retryAfter.waitMs)})`, r.retryAfter.waits > 0),
  ].join('');
  const used = `This run: ${p.compilers} compiler${p.compilers === 1 ? '' : 's'} of ${p.slots} JRubies; measured utilisation ${pct(mean(r.members.map((m) => m.utilisation)))}.`;
  const members = table(
    ['member', 'port', 'speed', 'slots', 'catalogs compiled', 'catalogs to agents', 'utilisation', 'most busy', '503 sent', 'restarts'],
    r.members.map((m) => [m.name, m.port, m.speed, m.slots, m.catalogs, m.catalogsServed, pct(m.utilisation), m.maxBusy, m.rejected, m.restarts]),
  );
  const reasons = Object.entries(r.runs.failureReasons).sort((a, b) => b[1] - a[1]);
  const summary = table(['figure', 'value'], [
    ['runs completed / ok / failed', `${r.runs.completed} / ${r.runs.ok} / ${r.runs.failed}`],
    ['agents whose first run finished', `${r.runs.agentsWithFirstRun} of ${p.agents}`],
    ['catalog latency mean / p50 / p90 / p99 / max', [r.catalog.meanMs, r.catalog.p50Ms, r.catalog.p90Ms, r.catalog.p99Ms, r.catalog.maxMs].map(formatMs).join(' / ')],
    ['catalog latency with Retry-After waits p50 / p99 / max', [r.catalogWithWaits.p50Ms, r.catalogWithWaits.p99Ms, r.catalogWithWaits.maxMs].map(formatMs).join(' / ')],
    ['pluginsync latency p50 / p99 / max', [r.pluginsync.p50Ms, r.pluginsync.p99Ms, r.pluginsync.maxMs].map(formatMs).join(' / ')],
    ['run start to catalog (pluginsync, facts, catalog) p50 / p99 / max', [r.toCatalog.p50Ms, r.toCatalog.p99Ms, r.toCatalog.maxMs].map(formatMs).join(' / ')],
    ['runs that waited for Retry-After', r.retryAfter.runsAffected],
    ['run duration p50 / p99 / max (runs ok)', [r.runDuration.p50Ms, r.runDuration.p99Ms, r.runDuration.maxMs].map(formatMs).join(' / ')],
    ['runs longer than the run interval (next run late)', r.runs.longerThanInterval],
    ...(r.apply.count === 0 ? [] : [['apply with its file requests p50 / p99 / max', [r.apply.p50Ms, r.apply.p99Ms, r.apply.maxMs].map(formatMs).join(' / ')]]),
    ['connections per run mean / max', `${r.connectionsPerRun.mean ?? '–'} / ${r.connectionsPerRun.max ?? '–'}`],
    ['elapsed', formatMs(r.elapsedMs)],
  ]);
  const params = table(['parameter', 'value'], [
    ['front door', p.frontDoor],
    ['agents (certificates)', `${p.agents} (${p.identities})`],
    ['compilers × JRubies', `${p.compilers} × ${p.slots}`],
    ['compile time mean / p99 (log-normal)', `${formatMs(p.compile.meanMs)} / ${formatMs(p.compile.p99Ms)}`],
    ['other requests hold a JRuby', formatMs(p.requestMs)],
    ['compiler speed factors', p.speeds.join(', ')],
    ['warm-up', p.warmup.factor > 1 ? `×${p.warmup.factor} decaying (${p.warmup.shape}) over ${formatMs(p.warmup.periodMs)}${p.startWarm ? ', after restarts only (compilers start warm)' : ', after every start'}` : 'none'],
    ['compilers\u2019 idle timeout (Jetty)', p.compilerIdleTimeoutMs > 0 ? formatMs(p.compilerIdleTimeoutMs) : 'none'],
    ['apply mean / p99 (log-normal)', p.apply.meanMs > 0 ? `${formatMs(p.apply.meanMs)} / ${formatMs(p.apply.p99Ms)}` : 'none (report right after the catalog)'],
    ['file_metadata requests per run', p.sourcedFiles ?? '2 or 3'],
    ['agents\u2019 http_keepalive_timeout', formatMs(p.keepAliveMs)],
    ['run interval / splay', `${formatMs(p.intervalMs)} / ${formatMs(p.splayMs)}`],
    ['duration (+ drain)', `${formatMs(p.durationMs)} (+ ${formatMs(p.drainMs)})`],
    ['max-queued-requests / max-retry-delay', `${p.maxQueuedRequests === 0 ? 'no limit' : p.maxQueuedRequests} / ${p.maxRetryDelayS} s`],
    ['agents\u2019 longest Retry-After wait', formatMs(p.maxRetryAfterMs)],
    ['seed', p.seed],
  ]);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>Fleet simulation: ${escapeHtml(p.frontDoor)}, ${p.agents} agents, ${p.compilers} compilers</title><style>${css}</style></head><body>`,
    `<h1>Fleet simulation through ${escapeHtml(p.frontDoor)}</h1>`,
    `<p class="sub">${escapeHtml(r.startedAt)}: ${p.agents} agents every ${escapeHtml(formatMs(p.intervalMs))} (splay ${escapeHtml(formatMs(p.splayMs))}) for ${escapeHtml(formatMs(p.durationMs))}, ${p.compilers} simulated compilers of ${p.slots} JRubies.</p>`,
    `<div class="cards">${cards}</div>`,
    '<h2>Capacity</h2>',
    `<p class="plan">${escapeHtml(describePlan(r.plan))}<br>${escapeHtml(used)}</p>`,
    '<h2>Charts</h2>',
    ...charts(r),
    '<h2>Summary</h2>', summary,
    '<h2>Members</h2>', members,
    '<h2>Failures</h2>', reasons.length === 0 ? '<p>No run failed.</p>' : table(['reason', 'runs'], reasons),
    ...(r.events.length === 0 ? [] : ['<h2>Scenario</h2>', table(['at', 'event'], r.events.map((e) => [formatMs(e.t), e.name]))]),
    '<h2>Parameters</h2>', params,
    '</body></html>',
    '',
  ].join('\n');
}
