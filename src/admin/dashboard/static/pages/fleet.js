import { get, getReports } from '../api.js';
import { ago, badge, card, h, ms, nodeLink, reportLink, section, table } from '../dom.js';
import { lines, stackedBars } from '../charts.js';

// Fleet overview: nodes seen and their last status, runs per minute, failures, runs over the last
// hour, how long runs take, and the pools at a glance.

export async function fleetPage(main) {
  const [{ state }, statsAnswer, failedAnswer, recentAnswer] = await Promise.all([
    get('/admin/v1/state'),
    getReports('/admin/v1/reports/stats?window=1h&bucket=1m'),
    getReports('/admin/v1/reports?status=failed&limit=10'),
    getReports('/admin/v1/reports?since=1h&limit=500'),
  ]);
  main.append(h('h1', {}, 'Fleet'));

  const pools = state.pools;
  const poolCards = pools.map((p) =>
    card(`pool ${p.name}`, h('span', {}, badge(p.status), ` ${p.eligible}/${p.members.length}`), { 'data-testid': `pool-card-${p.name}` }),
  );
  if (!statsAnswer) {
    main.append(h('div', { class: 'cards' }, poolCards), h('p', { class: 'notice' }, 'Reports are not available (reports.enabled is false, or the store could not be opened).'));
    return 10_000;
  }
  const stats = statsAnswer.stats;
  const nodes = stats.nodes.changed + stats.nodes.unchanged + stats.nodes.failed;
  const runs = stats.window.changed + stats.window.unchanged + stats.window.failed;
  const minutes = Math.max(1, (Date.parse(stats.until) - Date.parse(stats.since)) / 60_000);
  main.append(
    h(
      'div',
      { class: 'cards' },
      card('nodes seen', nodes, { 'data-testid': 'nodes-seen' }),
      card('last run changed', stats.nodes.changed, { class: 'card k-changed', 'data-testid': 'last-changed' }),
      card('last run unchanged', stats.nodes.unchanged, { class: 'card k-unchanged', 'data-testid': 'last-unchanged' }),
      card('last run failed', stats.nodes.failed, { class: 'card k-failed', 'data-testid': 'last-failed' }),
      card('runs per minute (1 h)', (runs / minutes).toFixed(2), { 'data-testid': 'runs-per-minute' }),
      card('failed runs (1 h)', stats.window.failed, { 'data-testid': 'failures' }),
      ...poolCards,
    ),
  );
  main.append(section('Runs over the last hour', stackedBars(stats.buckets, ['changed', 'unchanged', 'failed'], 'Runs per minute by status')));

  const recent = recentAnswer?.reports ?? [];
  const timed = recent.filter((r) => r.durationMs !== null).reverse();
  if (timed.length > 0) {
    const points = timed.map((r) => [Date.parse(r.receivedAt), r.durationMs / 1000, `s-${r.status}`]);
    main.append(section('Run duration (agent-reported total), last hour', lines([{ name: 'run time', points, cls: 'c0' }], 'Run duration over time', { unit: ' s' })));
  }

  const failed = failedAnswer?.reports ?? [];
  main.append(
    section(
      'Recent failures',
      failed.length === 0
        ? h('p', { class: 'muted' }, 'No failed runs stored.')
        : table(
          ['when', 'node', 'environment', 'compiler', 'failed resources', 'report'],
          failed.map((r) => h('tr', {}, h('td', {}, ago(r.receivedAt)), h('td', {}, nodeLink(r.node)), h('td', {}, r.environment), h('td', {}, r.compiler ?? '–'), h('td', {}, r.resources.failed), h('td', {}, reportLink(r.id)))),
          { 'data-testid': 'recent-failures' },
        ),
    ),
  );
  main.append(h('p', { class: 'muted' }, `${stats.stored} reports stored · median run ${ms(median(timed.map((r) => r.durationMs)))}`));
  return 10_000;
}

function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
