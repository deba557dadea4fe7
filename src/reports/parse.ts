import { RingmasterError } from '../lib/errors.ts';

// Reads the JSON report an agent PUTs to /puppet/v3/report/<certname> (Puppet::Transaction::Report
// #to_data_hash: report_format 10 for Puppet 6, 12 for Puppet 7/8 and OpenVox 8) into the summary
// ringmaster keeps per run. Only what identifies a run (host, environment, status, time,
// report_format) is required; everything else is read when present, since a run whose catalog
// failed sends no resource statuses and may lack metrics.

export const reportStatuses = ['changed', 'unchanged', 'failed'] as const;
export type ReportStatus = (typeof reportStatuses)[number];
export const isReportStatus = (v: unknown): v is ReportStatus => typeof v === 'string' && (reportStatuses as readonly string[]).includes(v);

/** The `resources` metric (Puppet::Resource::Status::STATES plus total). */
export type ResourceCounts = {
  total: number; changed: number; failed: number; failedToRestart: number; outOfSync: number;
  skipped: number; restarted: number; scheduled: number; correctiveChange: number;
};
/** The `events` metric: events by status. */
export type EventCounts = { total: number; success: number; failure: number; noop: number; audit: number };

/** A resource that failed, with the message of its failing event (Puppet always adds one). */
export type FailedResource = {
  resource: string;
  type: string;
  title: string;
  file: string | null;
  line: number | null;
  message: string | null;
};

export type ReportLog = { level: string; message: string; source: string; time: string | null; file: string | null; line: number | null };

export type ParsedReport = {
  /** The certname the report was PUT for (the verified identity), else the report's `host`. */
  node: string;
  environment: string;
  status: ReportStatus;
  noop: boolean;
  noopPending: boolean;
  correctiveChange: boolean;
  transactionCompleted: boolean | null;
  /** When the run started, by the agent's clock (ms since the epoch). */
  runAt: number;
  /** `time` metric `total` in ms; null when the report has none. */
  durationMs: number | null;
  configurationVersion: string | null;
  transactionUuid: string | null;
  catalogUuid: string | null;
  codeId: string | null;
  cachedCatalogStatus: string | null;
  serverUsed: string | null;
  puppetVersion: string | null;
  reportFormat: number;
  /** `changes` metric `total`. */
  changes: number;
  resources: ResourceCounts;
  events: EventCounts;
  /** The `time` metric as the report gives it: seconds by resource type and phase (config_retrieval, total, ...). */
  timings: Record<string, number>;
  /** At most `maxFailedResources`; `resources.failed` has the full count. */
  failedResources: FailedResource[];
};

export const maxFailedResources = 100;
const maxMessageChars = 2000;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(message: string): RingmasterError {
  return new RingmasterError('RM_REPORT_INVALID', `not a Puppet report: ${message}`);
}

export function parseReportJson(body: Buffer | string): Json {
  let data: unknown;
  try {
    data = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw invalid(`the body is not JSON (${(err as Error).message})`);
  }
  if (!isObject(data)) throw invalid('the body is not a JSON object');
  return data;
}

export type ParseContext = {
  /** The certname from the URL; it names the node even when the body's `host` differs. */
  certname?: string;
  /** The `environment` query parameter, used when the body has none. */
  environment?: string;
};

export function parseReport(body: Buffer | string, context: ParseContext = {}): ParsedReport {
  return summarize(parseReportJson(body), context);
}

export function summarize(data: Json, context: ParseContext = {}): ParsedReport {
  const host = data.host;
  if (typeof host !== 'string' || host === '') throw invalid('"host" must be a non-empty string');
  const environment = typeof data.environment === 'string' && data.environment !== '' ? data.environment : context.environment;
  if (environment === undefined || environment === '') throw invalid('"environment" must be a non-empty string');
  if (!isReportStatus(data.status)) throw invalid(`"status" must be one of ${reportStatuses.join(', ')}`);
  const format = typeof data.report_format === 'string' ? Number(data.report_format) : data.report_format;
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 1) throw invalid('"report_format" must be a positive integer');
  const runAt = typeof data.time === 'string' ? Date.parse(data.time) : Number.NaN;
  if (!Number.isFinite(runAt)) throw invalid('"time" must be an ISO 8601 time');
  if (data.metrics !== undefined && data.metrics !== null && !isObject(data.metrics)) throw invalid('"metrics" must be an object');
  const statuses = data.resource_statuses ?? {};
  if (!isObject(statuses)) throw invalid('"resource_statuses" must be an object');

  const metrics = isObject(data.metrics) ? data.metrics : {};
  const resourceValues = metricValues(metrics.resources);
  const eventValues = metricValues(metrics.events);
  const timings = metricValues(metrics.time);
  const total = timings.total;
  return {
    node: context.certname ?? host,
    environment,
    status: data.status,
    noop: data.noop === true,
    noopPending: data.noop_pending === true,
    correctiveChange: data.corrective_change === true,
    transactionCompleted: typeof data.transaction_completed === 'boolean' ? data.transaction_completed : null,
    runAt,
    durationMs: total === undefined ? null : Math.round(total * 1000),
    configurationVersion: typeof data.configuration_version === 'number' ? String(data.configuration_version) : text(data.configuration_version),
    transactionUuid: text(data.transaction_uuid),
    catalogUuid: text(data.catalog_uuid),
    codeId: text(data.code_id),
    cachedCatalogStatus: text(data.cached_catalog_status),
    serverUsed: text(data.server_used) ?? text(data.master_used),
    puppetVersion: text(data.puppet_version),
    reportFormat: format,
    changes: metricValues(metrics.changes).total ?? 0,
    resources: resourceValues.total === undefined ? countResources(statuses) : {
      total: resourceValues.total,
      changed: resourceValues.changed ?? 0,
      failed: resourceValues.failed ?? 0,
      failedToRestart: resourceValues.failed_to_restart ?? 0,
      outOfSync: resourceValues.out_of_sync ?? 0,
      skipped: resourceValues.skipped ?? 0,
      restarted: resourceValues.restarted ?? 0,
      scheduled: resourceValues.scheduled ?? 0,
      correctiveChange: resourceValues.corrective_change ?? 0,
    },
    events: {
      total: eventValues.total ?? 0,
      success: eventValues.success ?? 0,
      failure: eventValues.failure ?? 0,
      noop: eventValues.noop ?? 0,
      audit: eventValues.audit ?? 0,
    },
    timings,
    failedResources: failedResources(statuses),
  };
}

/** The log lines of a stored body, for drill-down; a body that cannot be read gives none. */
export function reportLogs(data: Json): ReportLog[] {
  if (!Array.isArray(data.logs)) return [];
  return data.logs.filter(isObject).map((l) => ({
    level: text(l.level) ?? 'notice',
    message: text(l.message) ?? '',
    source: text(l.source) ?? '',
    time: text(l.time),
    file: text(l.file),
    line: lineOf(l.line),
  }));
}

/** A metric's `values`, `[[name, label, value], ...]`, as name -> value; anything else is skipped. */
function metricValues(metric: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isObject(metric) || !Array.isArray(metric.values)) return out;
  for (const entry of metric.values) {
    if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[2] === 'number' && Number.isFinite(entry[2])) out[entry[0]] = entry[2];
  }
  return out;
}

function countResources(statuses: Json): ResourceCounts {
  const counts: ResourceCounts = { total: 0, changed: 0, failed: 0, failedToRestart: 0, outOfSync: 0, skipped: 0, restarted: 0, scheduled: 0, correctiveChange: 0 };
  for (const s of Object.values(statuses)) {
    if (!isObject(s)) continue;
    counts.total++;
    if (s.changed === true) counts.changed++;
    if (s.failed === true) counts.failed++;
    if (s.failed_to_restart === true) counts.failedToRestart++;
    if (s.out_of_sync === true) counts.outOfSync++;
    if (s.skipped === true) counts.skipped++;
    if (s.corrective_change === true) counts.correctiveChange++;
  }
  return counts;
}

function failedResources(statuses: Json): FailedResource[] {
  const out: FailedResource[] = [];
  for (const [key, s] of Object.entries(statuses)) {
    if (out.length >= maxFailedResources) break;
    if (!isObject(s) || (s.failed !== true && s.failed_to_restart !== true)) continue;
    const events = Array.isArray(s.events) ? s.events.filter(isObject) : [];
    const failing = events.find((e) => e.status === 'failure');
    const message = text(failing?.message);
    out.push({
      resource: text(s.resource) ?? key,
      type: text(s.resource_type) ?? key.replace(/\[.*$/s, ''),
      title: text(s.title) ?? key.replace(/^[^[]*\[|\]$/g, ''),
      file: text(s.file),
      line: lineOf(s.line),
      message: message === null ? null : message.length > maxMessageChars ? `${message.slice(0, maxMessageChars)}…` : message,
    });
  }
  return out;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function lineOf(v: unknown): number | null {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) ? n : null;
}
