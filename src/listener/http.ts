import type { IncomingHttpHeaders } from 'node:http';
import type { RingmasterError } from '../lib/errors.ts';
import type { Peer } from './peer.ts';

// The small request/response shapes the built-in services answer with. Services are plain
// functions of a request, so they are tested without sockets as well as through the listener.

export type ServiceRequest = {
  method: string;
  path: string;
  segments: string[];
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  peer: Peer;
  /** Reads the body, refusing it (RM_BODY_TOO_LARGE) past `limit` bytes. */
  body(limit: number): Promise<Buffer>;
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
  return text(err.status, `${err.message}\n`, { 'x-ringmaster-error': err.code });
}
