import { ApiError, get, post } from '../api.js';
import { badge, flash, h, ms, table } from '../dom.js';
import { lines, loadBars } from '../charts.js';

// Pools and members, live (every 2 s): health, in flight against capacity, compile slots, queue,
// status and problems, with drain and enable. The load and compile-time plots are sampled by this
// page while it is open (the last 5 minutes).

const history = new Map(); // `${pool}/${member}` -> [[t, inFlight, compileMs]]
const keepMs = 5 * 60_000;

function sample(pools) {
  const now = Date.now();
  for (const p of pools) {
    for (const m of p.members) {
      const k = `${p.name}/${m.name}`;
      const points = history.get(k) ?? [];
      points.push([now, m.inFlight, m.compileMs]);
      while (points.length > 0 && points[0][0] < now - keepMs) points.shift();
      history.set(k, points);
    }
  }
}

export async function poolsPage(main) {
  const { state } = await get('/admin/v1/state');
  sample(state.pools);
  main.append(h('h1', {}, 'Pools'));
  if (state.pools.length === 0) main.append(h('p', { class: 'muted' }, 'No pools are configured.'));
  for (const p of state.pools) main.append(pool(p));
  return 2000;
}

function pool(p) {
  const head = h(
    'h2',
    {},
    `${p.name} `,
    badge(p.status),
    h('span', { class: 'muted' }, ` ${p.policy} · ${p.eligible} of ${p.members.length} eligible · ${p.queued} queued${p.queued ? `, oldest ${ms(p.oldestWaitMs)}` : ''}`),
  );
  const problems = p.problems.length ? h('ul', { class: 'problems', 'data-testid': `problems-${p.name}` }, p.problems.map((x) => h('li', {}, x))) : null;
  const rows = p.members.map((m) => member(p.name, m));
  const members = table(['member', 'url', 'health', 'state', 'in flight', 'compiles', 'compile time', 'source', ''], rows, { 'data-testid': `members-${p.name}` });
  const load = loadBars(p.members.map((m) => ({ label: m.name, value: m.inFlight, capacity: m.maxInFlight ?? m.usableSlots })), `Load of pool ${p.name}`);
  const series = (i, name) => p.members.map((m) => ({ name: `${m.name}${name}`, points: (history.get(`${p.name}/${m.name}`) ?? []).filter((x) => x[i] !== null).map((x) => [x[0], x[i]]) }));
  const charts = [h('h3', {}, 'Member load now'), load];
  const inFlight = series(1, '');
  if (inFlight.some((s) => s.points.length > 1)) charts.push(h('h3', {}, 'In flight, since this page was opened'), lines(inFlight, `In flight per member of ${p.name}`));
  const compile = series(2, '');
  if (compile.some((s) => s.points.length > 1)) charts.push(h('h3', {}, 'Compile time (moving average)'), lines(compile, `Compile time per member of ${p.name}`, { unit: ' ms' }));
  return h('section', { class: 'pool', 'data-testid': `pool-${p.name}` }, head, problems, members, h('div', { class: 'charts' }, charts));
}

function member(poolName, m) {
  const state = m.draining ? badge('draining') : m.eligible ? badge('eligible', 'ok') : badge(m.reason ?? 'not eligible', 'down');
  const action = m.draining
    ? h('button', { type: 'button', 'data-testid': `enable-${poolName}-${m.name}`, onclick: () => act(poolName, m.name, 'enable') }, 'Enable')
    : h('button', { type: 'button', class: 'warn', 'data-testid': `drain-${poolName}-${m.name}`, onclick: () => act(poolName, m.name, 'drain') }, 'Drain');
  const slots = m.compileSlots === null ? `${m.compiles}` : `${m.compiles} / ${m.usableSlots ?? m.compileSlots}`;
  return h(
    'tr',
    { 'data-testid': `member-${poolName}-${m.name}`, 'data-draining': String(m.draining) },
    h('td', {}, m.name),
    h('td', { class: 'mono' }, m.url),
    h('td', {}, badge(m.health, m.health === 'healthy' ? 'ok' : m.health === 'unhealthy' ? 'down' : 'unknown'), m.lastProbeError ? h('div', { class: 'muted small' }, m.lastProbeError) : null),
    h('td', {}, state),
    h('td', { 'data-testid': `inflight-${poolName}-${m.name}` }, `${m.inFlight}${m.maxInFlight !== null ? ` / ${m.maxInFlight}` : ''}`),
    h('td', {}, slots),
    h('td', {}, ms(m.compileMs)),
    h('td', {}, m.source ?? '–'),
    h('td', {}, action),
  );
}

async function act(poolName, memberName, action) {
  const path = `/admin/v1/pools/${encodeURIComponent(poolName)}/members/${encodeURIComponent(memberName)}/${action}`;
  try {
    const r = await post(path, action === 'drain' ? { wait: false } : undefined);
    flash(action === 'drain' ? `${memberName} is draining${r.idle ? ' and idle' : `; ${r.member?.inFlight ?? 0} request(s) still in flight`}` : `${memberName} is enabled`);
  } catch (err) {
    flash(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err), 'error');
  }
  window.dispatchEvent(new Event('rm-refresh'));
}
