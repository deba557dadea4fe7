import type { Command } from 'commander';
import { isRingmasterError, RingmasterError } from '../../lib/errors.ts';
import { isReportStatus, type ReportStatus } from '../../reports/parse.ts';
import { SqliteReportStore } from '../../reports/sqlite-store.ts';
import type { ReportSummary, StoredReport } from '../../reports/store.ts';
import { nodeView, parseTimeParam, reportDetailView, reportView, type ReportDetailView } from '../../reports/view.ts';
import { addStateOptions, configFrom, exitCodes, type GlobalOptions } from '../common.ts';

// `ringmaster reports …`: the stored reports, read straight from <stateDir>/reports.sqlite
// (read-only, beside a running server: WAL lets both at once), so it needs neither the server nor
// the admin API. `--json` prints the admin API's shapes.

type ListOpts = GlobalOptions & { node?: string; status?: string; environment?: string; since?: string; until?: string; limit?: string; cursor?: string; json?: boolean };
type ShowOpts = GlobalOptions & { json?: boolean; body?: boolean };
type NodesOpts = GlobalOptions & { status?: string; limit?: string; cursor?: string; json?: boolean };

/** The store, or undefined when nothing has been stored yet. */
async function openStore(opts: GlobalOptions): Promise<SqliteReportStore | undefined> {
  const config = await configFrom(opts);
  try {
    return await SqliteReportStore.openIn(config.stateDir, { readOnly: true });
  } catch (err) {
    if (isRingmasterError(err, 'RM_REPORTS_UNAVAILABLE')) return undefined;
    throw err;
  }
}

function usage(flag: string, message: string): RingmasterError {
  return new RingmasterError('RM_CLI_USAGE', `${flag}: ${message}`);
}

function statusOption(value: string | undefined): ReportStatus | undefined {
  if (value === undefined || isReportStatus(value)) return value;
  throw usage('--status', `"${value}" is not changed, unchanged or failed`);
}

function limitOption(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw usage('--limit', `"${value}" is not a whole number from 1 to 1000`);
  return n;
}

function timeOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTimeParam(flag, value, Date.now());
  } catch (err) {
    throw usage(flag, (err as Error).message.replace(/^--\w+: /, ''));
  }
}

const when = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace('T', ' ');
const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`);

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

export function formatReportList(reports: ReportSummary[], next: string | null): string {
  if (reports.length === 0) return 'No reports match.';
  const rows = [['ID', 'RECEIVED', 'NODE', 'ENVIRONMENT', 'STATUS', 'CHANGES', 'FAILED', 'TIME', 'COMPILER']];
  for (const r of reports) {
    rows.push([String(r.id), when(r.receivedAt), r.node, r.environment, r.noop ? `${r.status} (noop)` : r.status, String(r.changes), String(r.resources.failed), seconds(r.durationMs), r.compiler ?? '-']);
  }
  const out = table(rows);
  if (next !== null) out.push(`(more: --cursor ${next})`);
  return out.join('\n');
}

export function formatReport(r: ReportDetailView): string {
  const res = r.resources;
  const timings = Object.entries(r.timings).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v.toFixed(2)}s`);
  const out = [
    `report ${r.id}: ${r.node}, environment ${r.environment}, ${r.status}${r.noop ? ' (noop)' : ''}`,
    `  received     ${r.receivedAt} (run started ${r.runAt} by the agent's clock, took ${seconds(r.durationMs)})`,
    `  compiler     ${r.compiler ?? 'unknown'}${r.cachedCatalogStatus && r.cachedCatalogStatus !== 'not_used' ? ` (cached catalog: ${r.cachedCatalogStatus})` : ''}`,
    `  puppet       ${r.puppetVersion ?? 'unknown'}, report format ${r.reportFormat}, configuration version ${r.configurationVersion ?? '-'}`,
    `  transaction  ${r.transactionUuid ?? '-'}, catalog ${r.catalogUuid ?? '-'}`,
    `  resources    ${res.total} total, ${res.changed} changed, ${res.failed} failed, ${res.skipped} skipped, ${res.outOfSync} out of sync${res.failedToRestart > 0 ? `, ${res.failedToRestart} failed to restart` : ''}`,
    `  events       ${r.events.total} total, ${r.events.success} success, ${r.events.failure} failure, ${r.events.noop} noop`,
    `  timings      ${timings.length > 0 ? timings.join(', ') : '-'}`,
  ];
  if (r.failedResources.length > 0) {
    out.push('failed resources:');
    for (const f of r.failedResources) {
      out.push(`  ${f.resource}${f.file ? ` (${f.file}${f.line === null ? '' : `:${f.line}`})` : ''}`);
      if (f.message) out.push(`    ${f.message}`);
    }
    if (res.failed > r.failedResources.length) out.push(`  … and ${res.failed - r.failedResources.length} more`);
  }
  if (r.logs.length > 0) {
    out.push('log:');
    for (const l of r.logs) out.push(`  ${l.level.padEnd(7)} ${l.source === 'Puppet' || l.source === '' ? '' : `${l.source}: `}${l.message.replace(/\n/g, '\n          ')}`);
  }
  return out.join('\n');
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function registerReports(program: Command): void {
  const reports = program.command('reports').description('the reports agents sent, from the reports store in the state directory');

  addStateOptions(reports.command('list'))
    .description('reports, newest first')
    .option('--node <certname>', 'only this node')
    .option('--status <status>', 'only changed, unchanged or failed runs')
    .option('--environment <name>', 'only this environment')
    .option('--since <time>', 'received since: a duration ago (90m, 2d) or an ISO 8601 time')
    .option('--until <time>', 'received before: a duration ago or an ISO 8601 time')
    .option('--limit <n>', 'at most this many (1-1000)', '50')
    .option('--cursor <cursor>', 'continue where a previous list stopped')
    .option('--json', 'print the admin API JSON')
    .action(async (opts: ListOpts) => {
      const query = {
        node: opts.node, status: statusOption(opts.status), environment: opts.environment, since: timeOption('--since', opts.since),
        until: timeOption('--until', opts.until), limit: limitOption(opts.limit, 50), cursor: opts.cursor,
      };
      const store = await openStore(opts);
      const page = store ? await store.list(query).finally(() => store.close()) : { items: [], next: null };
      if (opts.json) print(JSON.stringify({ reports: page.items.map(reportView), next: page.next }, null, 2));
      else print(store ? formatReportList(page.items, page.next) : 'No reports stored yet.');
      process.exitCode = exitCodes.ok;
    });

  addStateOptions(reports.command('show <id>'))
    .description('one report: summary, failed resources with their messages, log lines')
    .option('--json', 'print the admin API JSON')
    .option('--body', 'print the report exactly as the agent sent it (JSON)')
    .action(async (id: string, opts: ShowOpts) => {
      if (!/^[1-9]\d{0,15}$/.test(id)) throw usage('id', `"${id}" is not a report id (a number from \`ringmaster reports list\`)`);
      const store = await openStore(opts);
      let report: StoredReport | undefined;
      if (store) report = await store.get(Number(id)).finally(() => store.close());
      if (!report) throw new RingmasterError('RM_NOT_FOUND', `no report with id ${id}${store ? ' (it may have been deleted by retention)' : ': no reports stored yet'}`);
      if (opts.body) process.stdout.write(report.body.toString('utf8').replace(/\n?$/, '\n'));
      else if (opts.json) print(JSON.stringify({ report: reportDetailView(report) }, null, 2));
      else print(formatReport(reportDetailView(report)));
    });

  addStateOptions(reports.command('nodes'))
    .description('each node with its last run and its stored runs by status')
    .option('--status <status>', 'only nodes whose last run is changed, unchanged or failed')
    .option('--limit <n>', 'at most this many (1-1000)', '1000')
    .option('--cursor <cursor>', 'continue where a previous list stopped')
    .option('--json', 'print the admin API JSON')
    .action(async (opts: NodesOpts) => {
      const query = { status: statusOption(opts.status), limit: limitOption(opts.limit, 1000), cursor: opts.cursor };
      const store = await openStore(opts);
      const page = store ? await store.nodes(query).finally(() => store.close()) : { items: [], next: null };
      if (opts.json) {
        print(JSON.stringify({ nodes: page.items.map(nodeView), next: page.next }, null, 2));
        return;
      }
      if (page.items.length === 0) return print(store ? 'No nodes match.' : 'No reports stored yet.');
      const rows = [['NODE', 'LAST RUN', 'STATUS', 'ENVIRONMENT', 'COMPILER', 'RUNS', 'CHANGED', 'UNCHANGED', 'FAILED']];
      for (const n of page.items) {
        rows.push([n.node, when(n.last.receivedAt), n.last.status, n.last.environment, n.last.compiler ?? '-', String(n.runs), String(n.changed), String(n.unchanged), String(n.failed)]);
      }
      print([...table(rows), ...(page.next === null ? [] : [`(more: --cursor ${page.next})`])].join('\n'));
    });
}
