import { getReports } from '../api.js';
import { ago, badge, h, ms, nodeLink, reportLink, section, table, time } from '../dom.js';
import { lines } from '../charts.js';

// Nodes by their last report, and one node's run history: when, how it ended, how long it took,
// and which compiler served the catalog of each run.

const unavailable = () => h('p', { class: 'notice' }, 'Reports are not available (reports.enabled is false, or the store could not be opened).');

export async function nodesPage(main) {
  const answer = await getReports('/admin/v1/nodes?limit=1000');
  main.append(h('h1', {}, 'Nodes'));
  if (!answer) return void main.append(unavailable());
  const rows = answer.nodes.map((n) =>
    h(
      'tr',
      { 'data-testid': `node-${n.node}` },
      h('td', {}, nodeLink(n.node)),
      h('td', {}, badge(n.last.status)),
      h('td', {}, ago(n.last.receivedAt)),
      h('td', {}, n.last.environment),
      h('td', {}, n.last.compiler ?? '–'),
      h('td', {}, n.runs),
      h('td', {}, n.failed),
    ),
  );
  main.append(rows.length ? table(['node', 'last status', 'last run', 'environment', 'compiler', 'runs stored', 'failed'], rows, { 'data-testid': 'nodes' }) : h('p', { class: 'muted' }, 'No reports stored yet.'));
  if (answer.next) main.append(h('p', { class: 'muted' }, 'More nodes than shown; use `ringmaster reports nodes` for all.'));
  return 15_000;
}

export async function nodePage(main, node) {
  const answer = await getReports(`/admin/v1/reports?node=${encodeURIComponent(node)}&limit=200`);
  main.append(h('h1', {}, node));
  if (!answer) return void main.append(unavailable());
  const reports = answer.reports;
  if (reports.length === 0) return void main.append(h('p', { class: 'muted' }, 'No reports stored for this node.'));
  const timed = reports.filter((r) => r.durationMs !== null).reverse();
  if (timed.length > 1) {
    main.append(section('Run duration', lines([{ name: 'run time', points: timed.map((r) => [Date.parse(r.receivedAt), r.durationMs / 1000, `s-${r.status}`]), cls: 'c0' }], `Run duration of ${node}`, { unit: ' s' })));
  }
  const rows = reports.map((r) =>
    h(
      'tr',
      { 'data-testid': `run-${r.id}` },
      h('td', {}, reportLink(r.id, time(r.receivedAt))),
      h('td', {}, badge(r.status)),
      h('td', {}, r.environment),
      h('td', { 'data-testid': `compiler-${r.id}` }, r.compiler ?? '–'),
      h('td', {}, ms(r.durationMs)),
      h('td', {}, r.changes),
      h('td', {}, r.resources.failed),
      h('td', { class: 'mono small' }, r.configurationVersion ?? '–'),
    ),
  );
  main.append(section('Run history', table(['received', 'status', 'environment', 'compiler', 'duration', 'changes', 'failed', 'config version'], rows, { 'data-testid': 'runs' })));
  return 15_000;
}
