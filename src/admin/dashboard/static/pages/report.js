import { get } from '../api.js';
import { badge, h, ms, nodeLink, section, table, time } from '../dom.js';

// One run: its summary, the resources that failed with their messages, and the error log lines.

export async function reportPage(main, id) {
  const { report: r } = await get(`/admin/v1/reports/${encodeURIComponent(id)}`);
  main.append(
    h('h1', {}, 'Report ', h('span', { class: 'muted' }, `#${r.id}`), ' ', badge(r.status)),
    h(
      'dl',
      { class: 'facts', 'data-testid': 'report-facts' },
      fact('node', nodeLink(r.node)),
      fact('environment', r.environment),
      fact('compiler', r.compiler ?? '–'),
      fact('received', time(r.receivedAt)),
      fact('run started', time(r.runAt)),
      fact('duration', ms(r.durationMs)),
      fact('puppet', r.puppetVersion ?? '–'),
      fact('configuration version', r.configurationVersion ?? '–'),
      fact('resources', `${r.resources.total} total, ${r.resources.changed} changed, ${r.resources.failed} failed, ${r.resources.skipped} skipped`),
      fact('noop', r.noop ? 'yes' : 'no'),
    ),
  );
  const failed = r.failedResources;
  main.append(
    section(
      `Failed resources (${r.resources.failed})`,
      failed.length === 0
        ? h('p', { class: 'muted' }, 'None.')
        : table(['resource', 'where', 'message'], failed.map((f) => h('tr', {}, h('td', { class: 'mono' }, f.resource), h('td', { class: 'mono small' }, f.file ? `${f.file}:${f.line ?? '?'}` : '–'), h('td', {}, f.message ?? '–'))), { 'data-testid': 'failed-resources' }),
    ),
  );
  const errors = r.logs.filter((l) => ['err', 'alert', 'emerg', 'crit', 'warning'].includes(l.level));
  if (errors.length) main.append(section('Errors and warnings in the log', table(['level', 'source', 'message'], errors.map((l) => h('tr', {}, h('td', {}, l.level), h('td', { class: 'mono small' }, l.source), h('td', {}, l.message))))));
}

const fact = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
