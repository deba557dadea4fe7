import type { IncomingHttpHeaders } from 'node:http';
import type { RingmasterError } from '../lib/errors.ts';
import type { RequestTrace } from '../observability/request.ts';
import type { QueryParams } from './path.ts';
import type { Peer } from './peer.ts';
import type { AgentRequest } from './agent-http.ts';
import type { AgentResponse } from './agent-response.ts';

// The small request/response shapes the built-in services answer with. Services are plain
// functions of a request, so they are tested without sockets as well as through the listener.

export type ServiceRequest = {
  method: string;
  path: string;
  readonly segments: string[];
  query: QueryParams;
  headers: IncomingHttpHeaders;
  peer: Peer;
  /** Reads the body, refusing it (RM_BODY_TOO_LARGE) past `limit` bytes. */
  body(limit: number): Promise<Buffer>;
  /** The request line's target as received (path and query), forwarded unchanged. */
  rawTarget: string;
  /** The connection-level objects, for the proxy that streams both ways. */
  raw: { req: AgentRequest; res: AgentResponse };
  /** True once the listener is draining: answers should close their connections. */
  draining: () => boolean;
  /** Where the request went, for the metrics and the access log; filled in by the gateway. */
  trace?: RequestTrace | undefined;
};

export type ServiceResponse = {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
};

export function text(status: number, body: string, headers: Record<string, string> = {}): ServiceResponse {
  return { status, headers: { 'content-type': 'text/plain', ...headers }, body };
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): ServiceResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

/** Error answers carry the stable code in a header so agent logs and scripts can match on it. */
export function errorResponse(err: RingmasterError): ServiceResponse {
  const headers: Record<string, string> = { 'x-ringmaster-error': err.code };
  // Puppet agents (5.3 and later) wait for Retry-After on a 503 and try again; without it they give up.
  const retryAfter = err.details?.retryAfter;
  if (typeof retryAfter === 'number') headers['retry-after'] = String(Math.max(1, Math.round(retryAfter)));
  return text(err.status, `${err.message}\n`, headers);
}
