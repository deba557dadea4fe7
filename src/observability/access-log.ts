import { createAccessSink, type AccessSink, type DestinationStream } from './log.ts';
import type { RequestRecord } from './request.ts';

// One line per agent request. What goes in is an allowlist of the record's fields, never the
// request's headers (Authorization, X-Client-Cert, cookies), query string (autosign and API
// tokens travel in queries) or body: a secret cannot reach the log by a field being added to a
// request somewhere else.

export type AccessLogSettings = { enabled: boolean; destination: string; format: 'json' | 'text' };
export type AccessLog = { write(r: RequestRecord): void; reopen(): void; close(): Promise<void> };

const maxPathLength = 1024;

/** The JSON line's fields, in a fixed order; absent values are null so every key is always there. */
export function accessFields(r: RequestRecord): Record<string, unknown> {
  return {
    time: new Date(r.time).toISOString(),
    listener: r.listener,
    certname: r.certname ?? null,
    client: r.client ?? null,
    method: r.method,
    path: clip(r.path),
    environment: r.environment ?? null,
    endpoint: r.endpoint,
    route: r.route ?? null,
    pool: r.pool ?? null,
    member: r.member ?? null,
    status: r.status,
    bytes: r.bytes,
    durationMs: round(r.durationMs),
    upstreamMs: r.upstreamMs === undefined ? null : round(r.upstreamMs),
    queueMs: r.queueMs === undefined ? null : round(r.queueMs),
    retries: r.retries,
    code: r.code ?? null,
    completed: r.completed,
  };
}

/**
 * A web server's access line: client, certname, time, request, status and bytes as in the
 * combined format, then key=value pairs; `-` for what is unknown.
 */
export function accessText(r: RequestRecord): string {
  const dash = (v: string | number | undefined) => (v === undefined ? '-' : String(v));
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${round(v)}ms`);
  return [
    dash(r.client), dash(r.certname), `[${new Date(r.time).toISOString()}]`, JSON.stringify(`${r.method} ${clip(r.path)}`), r.status, r.bytes,
    `duration=${ms(r.durationMs)}`, `route=${dash(r.route)}`, `pool=${dash(r.pool)}`, `member=${dash(r.member)}`, `upstream=${ms(r.upstreamMs)}`,
    `queue=${ms(r.queueMs)}`, `retries=${r.retries}`, `code=${dash(r.code)}`, `env=${dash(r.environment)}`, ...(r.completed ? [] : ['incomplete']),
  ].join(' ');
}

export function openAccessLog(settings: AccessLogSettings, destination?: DestinationStream): AccessLog | undefined {
  if (!settings.enabled) return undefined;
  const sink: AccessSink = createAccessSink(destination ?? (settings.destination === 'stdout' ? 'stdout' : { file: settings.destination }));
  return {
    write: settings.format === 'json' ? (r) => sink.json(accessFields(r)) : (r) => sink.line(accessText(r)),
    reopen: () => sink.reopen(),
    close: () => sink.close(),
  };
}

function clip(path: string): string {
  return path.length > maxPathLength ? `${path.slice(0, maxPathLength)}…` : path;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
