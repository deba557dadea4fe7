// Hand-written SVG charts: stacked bars (runs over time by status), lines (latency, load over
// time) and horizontal bars (member load against capacity). Colours come from classes in
// style.css; every mark has a <title> so hovering tells the number.

const ns = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

const title = (t) => s('title', {}, document.createTextNode(t));
const label = (x, y, t, anchor = 'start', cls = 'axis') => s('text', { x, y, 'text-anchor': anchor, class: cls }, document.createTextNode(t));

function frame(width, height, name) {
  return s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': name, class: 'chart' }, title(name));
}

const clock = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** buckets: [{start, changed, unchanged, failed}]; keys stacked bottom-up. */
export function stackedBars(buckets, keys, name, { width = 960, height = 200 } = {}) {
  const svg = frame(width, height, name);
  const pad = { l: 36, r: 8, t: 8, b: 22 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const max = Math.max(1, ...buckets.map((b) => keys.reduce((n, k) => n + b[k], 0)));
  const bw = buckets.length ? w / buckets.length : w;
  svg.append(s('line', { x1: pad.l, y1: pad.t + hgt, x2: pad.l + w, y2: pad.t + hgt, class: 'axis-line' }));
  svg.append(label(pad.l - 4, pad.t + 10, String(max), 'end'), label(pad.l - 4, pad.t + hgt, '0', 'end'));
  buckets.forEach((b, i) => {
    let y = pad.t + hgt;
    const total = keys.reduce((n, k) => n + b[k], 0);
    for (const k of keys) {
      const bh = (b[k] / max) * hgt;
      if (bh <= 0) continue;
      y -= bh;
      svg.append(s('rect', { x: pad.l + i * bw + 0.5, y, width: Math.max(1, bw - 1), height: bh, class: `s-${k}` }, title(`${clock(b.start)}: ${b[k]} ${k} of ${total}`)));
    }
  });
  if (buckets.length) {
    svg.append(label(pad.l, height - 6, clock(buckets[0].start)), label(pad.l + w, height - 6, clock(buckets[buckets.length - 1].start), 'end'));
  }
  return legend(svg, keys);
}

/** series: [{name, points: [[t, v]], cls?}]; t in ms. */
export function lines(series, name, { width = 960, height = 200, unit = '' } = {}) {
  const svg = frame(width, height, name);
  const pad = { l: 48, r: 8, t: 8, b: 22 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const all = series.flatMap((x) => x.points);
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]));
  const max = Math.max(0, ...all.map((p) => p[1])) || 1;
  const x = (t) => pad.l + (t1 > t0 ? ((t - t0) / (t1 - t0)) * w : w);
  const y = (v) => pad.t + hgt - (v / max) * hgt;
  svg.append(s('line', { x1: pad.l, y1: pad.t + hgt, x2: pad.l + w, y2: pad.t + hgt, class: 'axis-line' }));
  svg.append(label(pad.l - 4, pad.t + 10, `${fmt(max)}${unit}`, 'end'), label(pad.l - 4, pad.t + hgt, `0${unit}`, 'end'));
  series.forEach((ser, i) => {
    const cls = ser.cls ?? `c${i % 6}`;
    if (ser.points.length > 1) svg.append(s('polyline', { points: ser.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '), class: `line ${cls}` }));
    for (const [t, v, cl] of ser.points) svg.append(s('circle', { cx: x(t), cy: y(v), r: 2.5, class: `dot ${cl ?? cls}` }, title(`${ser.name} ${clock(t)}: ${fmt(v)}${unit}`)));
  });
  if (all.length) svg.append(label(pad.l, height - 6, clock(t0)), label(pad.l + w, height - 6, clock(t1), 'end'));
  return legend(svg, series.map((ser, i) => ({ name: ser.name, cls: ser.cls ?? `c${i % 6}` })));
}

/** items: [{label, value, capacity}]: in-flight against capacity (null = unlimited). */
export function loadBars(items, name, { width = 960 } = {}) {
  const row = 22;
  const height = Math.max(1, items.length) * row + 8;
  const svg = frame(width, height, name);
  const l = 140;
  const w = width - l - 60;
  const max = Math.max(1, ...items.map((i) => Math.max(i.value, i.capacity ?? 0)));
  items.forEach((it, i) => {
    const y = 4 + i * row;
    svg.append(label(l - 6, y + 14, it.label, 'end', 'axis name'));
    if (it.capacity !== null) svg.append(s('rect', { x: l, y: y + 3, width: (it.capacity / max) * w, height: row - 8, class: 'capacity' }, title(`${it.label}: capacity ${it.capacity}`)));
    const full = it.capacity !== null && it.value >= it.capacity;
    svg.append(s('rect', { x: l, y: y + 3, width: Math.max(it.value > 0 ? 2 : 0, (it.value / max) * w), height: row - 8, class: full ? 'load full' : 'load' }, title(`${it.label}: ${it.value} in flight${it.capacity !== null ? ` of ${it.capacity}` : ''}`)));
    svg.append(label(l + w + 6, y + 14, `${it.value}${it.capacity !== null ? `/${it.capacity}` : ''}`, 'start', 'axis'));
  });
  return svg;
}

function legend(svg, entries) {
  const box = document.createElement('figure');
  box.className = 'chart-box';
  box.append(svg);
  const cap = document.createElement('figcaption');
  for (const e of entries) {
    const name = typeof e === 'string' ? e : e.name;
    const cls = typeof e === 'string' ? `s-${e}` : e.cls;
    const sw = s('svg', { width: 10, height: 10, class: 'swatch' }, s('rect', { width: 10, height: 10, class: cls }));
    const item = document.createElement('span');
    item.append(sw, document.createTextNode(` ${name}`));
    cap.append(item);
  }
  box.append(cap);
  return box;
}

const fmt = (v) => (v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, ''));
