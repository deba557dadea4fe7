// Building the page from data without HTML strings: every value is set as text, never parsed as
// markup, so a certname or a log line cannot inject anything.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const text = (s) => document.createTextNode(String(s));

export function table(headers, rows, attrs = {}) {
  return h('table', attrs, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows));
}

export function card(label, value, attrs = {}) {
  return h('div', { class: 'card', ...attrs }, h('div', { class: 'card-value' }, value), h('div', { class: 'card-label' }, label));
}

export function badge(value, kind = value) {
  return h('span', { class: `badge b-${kind}` }, value);
}

export const section = (title, ...children) => h('section', {}, h('h2', {}, title), ...children);

export function ago(iso) {
  if (!iso) return '–';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.max(0, s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export const time = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
export const ms = (v) => (v === null || v === undefined ? '–' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);
export const nodeLink = (node) => h('a', { href: `#/nodes/${encodeURIComponent(node)}` }, node);
export const reportLink = (id, label = `#${id}`) => h('a', { href: `#/reports/${id}` }, label);

/** A message above the page, e.g. the outcome of a button; replaced by the next one. */
export function flash(message, kind = 'ok') {
  const el = document.getElementById('flash');
  el.replaceChildren(h('p', { class: `flash ${kind}`, 'data-testid': 'flash' }, message));
}
