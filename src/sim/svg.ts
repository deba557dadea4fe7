// Small inline SVG charts for the fleet report: line charts over time and bar charts on a linear
// or logarithmic x axis. Plain strings with no script and no external reference, so the report
// is one file that opens anywhere, offline.

export type Point = readonly [number, number];
export type Series = { name: string; color: string; points: readonly Point[] };
export type Bar = { x0: number; x1: number; y: number };
export type Axis = { label: string; format: (v: number) => string; min?: number; max?: number; log?: boolean; /** Counts: ticks on whole numbers only. */ integer?: boolean };
export type ChartSpec = { title: string; x: Axis; y: Axis; width?: number; height?: number; markers?: { x: number; label: string }[] };

export const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

const margin = { left: 60, right: 32, top: 44, bottom: 42 };
const num = (v: number): string => (Math.round(v * 10) / 10).toString();

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5, minStep = 0): number[] {
  if (!(max > min)) return [min];
  const raw = Math.max(minStep, (max - min) / count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

type Scale = { at: (v: number) => number; ticks: number[]; min: number; max: number };

function scale(axis: Axis, values: number[], from: number, to: number): Scale {
  const finite = values.filter((v) => Number.isFinite(v) && (!axis.log || v > 0));
  let min = axis.min ?? (axis.log ? Math.min(...finite) : Math.min(0, ...finite));
  let max = axis.max ?? Math.max(...finite);
  if (!Number.isFinite(min)) min = axis.log ? 1 : 0;
  if (!Number.isFinite(max) || max <= min) max = axis.log ? min * 10 : min + 1;
  if (axis.log) {
    const lo = Math.floor(Math.log10(min));
    const hi = Math.ceil(Math.log10(max));
    const span = Math.max(1, hi - lo);
    const ticks = Array.from({ length: span + 1 }, (_, i) => 10 ** (lo + i));
    return { at: (v) => from + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / span) * (to - from), ticks, min: 10 ** lo, max: 10 ** (lo + span) };
  }
  if (axis.integer) max = Math.max(max, min + 1);
  const ticks = niceTicks(min, max, 5, axis.integer ? 1 : 0);
  // Without a fixed top, the axis ends on the first tick at or above the largest value.
  const last = ticks[ticks.length - 1] ?? max;
  if (axis.max === undefined && ticks.length > 1 && last < max) ticks.push(Number((last + (ticks[1]! - ticks[0]!)).toPrecision(12)));
  if (axis.max === undefined) max = Math.max(max, ticks[ticks.length - 1] ?? max);
  return { at: (v) => from + ((v - min) / (max - min)) * (to - from), ticks: ticks.filter((t) => t >= min && t <= max), min, max };
}

function frame(spec: ChartSpec, x: Scale, y: Scale, body: string, legend: Series[]): string {
  const w = spec.width ?? 720;
  const h = spec.height ?? 260;
  const out: string[] = [`<svg class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeHtml(spec.title)}">`];
  out.push(`<text x="${margin.left}" y="18" class="title">${escapeHtml(spec.title)}</text>`);
  for (const t of y.ticks) {
    const py = num(y.at(t));
    out.push(`<line x1="${margin.left}" x2="${w - margin.right}" y1="${py}" y2="${py}" class="grid"/><text x="${margin.left - 6}" y="${py}" class="ytick">${escapeHtml(spec.y.format(t))}</text>`);
  }
  for (const t of x.ticks) {
    const px = num(x.at(t));
    out.push(`<line x1="${px}" x2="${px}" y1="${h - margin.bottom}" y2="${h - margin.bottom + 4}" class="axis"/><text x="${px}" y="${h - margin.bottom + 16}" class="xtick">${escapeHtml(spec.x.format(t))}</text>`);
  }
  out.push(`<line x1="${margin.left}" x2="${w - margin.right}" y1="${h - margin.bottom}" y2="${h - margin.bottom}" class="axis"/>`);
  out.push(`<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${h - margin.bottom}" class="axis"/>`);
  out.push(`<text x="${(margin.left + w - margin.right) / 2}" y="${h - 6}" class="xlabel">${escapeHtml(spec.x.label)}</text>`);
  out.push(`<text x="14" y="${(margin.top + h - margin.bottom) / 2}" class="ylabel" transform="rotate(-90 14 ${(margin.top + h - margin.bottom) / 2})">${escapeHtml(spec.y.label)}</text>`);
  out.push(body);
  for (const [i, m] of (spec.markers ?? []).entries()) {
    if (m.x < x.min || m.x > x.max) continue;
    const px = num(x.at(m.x));
    // Labels inside the plot, beside their line, clear of the legend above, staggered so that close ones stay readable.
    out.push(`<line x1="${px}" x2="${px}" y1="${margin.top}" y2="${h - margin.bottom}" class="marker"/><text x="${num(x.at(m.x) + 3)}" y="${margin.top + 10 + (i % 3) * 12}" class="mlabel">${escapeHtml(m.label)}</text>`);
  }
  let lx = margin.left;
  for (const s of legend) {
    out.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="35" class="legend">${escapeHtml(s.name)}</text>`);
    lx += 24 + s.name.length * 7;
  }
  out.push('</svg>');
  return out.join('');
}

function bounds(spec: ChartSpec): { w: number; h: number } {
  return { w: spec.width ?? 720, h: spec.height ?? 260 };
}

export function lineChart(spec: ChartSpec, series: readonly Series[]): string {
  const { w, h } = bounds(spec);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const x = scale(spec.x, xs, margin.left, w - margin.right);
  const y = scale(spec.y, ys, h - margin.bottom, margin.top);
  const body = xs.length === 0
    ? `<text x="${w / 2}" y="${h / 2}" class="empty">no data</text>`
    : series.map((s) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${s.points.map((p) => `${num(x.at(p[0]))},${num(y.at(Math.min(y.max, p[1])))}`).join(' ')}"/>`).join('');
  return frame(spec, x, y, body, series.length > 1 ? [...series] : []);
}

export function barChart(spec: ChartSpec, bars: readonly Bar[], color = palette[0]!): string {
  const { w, h } = bounds(spec);
  const x = scale(spec.x, bars.flatMap((b) => [b.x0, b.x1]), margin.left, w - margin.right);
  const y = scale(spec.y, bars.map((b) => b.y), h - margin.bottom, margin.top);
  const base = y.at(Math.max(0, y.min));
  const body = bars.length === 0
    ? `<text x="${w / 2}" y="${h / 2}" class="empty">no data</text>`
    : bars.map((b) => {
      const x0 = x.at(b.x0);
      const top = y.at(b.y);
      return `<rect x="${num(x0)}" y="${num(top)}" width="${num(Math.max(1, x.at(b.x1) - x0 - 1))}" height="${num(Math.max(0, base - top))}" fill="${color}"/>`;
    }).join('');
  return frame(spec, x, y, body, []);
}
