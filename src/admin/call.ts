import { RingmasterError } from '../lib/errors.ts';
import type { AdminCall } from './api.ts';

// Small checks the admin API's endpoint files share: methods, query parameters and JSON bodies
// are checked strictly, so a typo is refused with RM_ADMIN_BAD_REQUEST instead of ignored.

export function allow(call: AdminCall, methods: readonly string[]): void {
  if (!methods.includes(call.method)) {
    throw new RingmasterError('RM_METHOD_NOT_ALLOWED', `${call.method} is not allowed on /${call.segments.join('/')} (allowed: ${methods.join(', ')})`, { details: { allow: methods.join(', ') } });
  }
}

export function notFound(call: AdminCall): RingmasterError {
  return new RingmasterError('RM_NOT_FOUND', `no admin endpoint at /${call.segments.join('/')}`);
}

/** Refuses query parameters other than `allowed`, and any given twice. */
export function onlyParams(call: AdminCall, allowed: readonly string[]): URLSearchParams {
  const q = call.query ?? new URLSearchParams();
  const unknown = [...new Set(q.keys())].filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
  for (const k of allowed) if (q.getAll(k).length > 1) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `query parameter ${k} is given more than once`);
  return q;
}

export type FieldCheck = (value: unknown) => string | undefined;

/**
 * The JSON body as an object with only the known fields, each checked; no body is `{}`. Every
 * problem is named at once.
 */
export async function objectBody(call: AdminCall, fields: Record<string, FieldCheck>): Promise<Record<string, unknown>> {
  const input = await call.json();
  if (input === undefined) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', 'the request body must be a JSON object');
  const body = input as Record<string, unknown>;
  const problems: string[] = [];
  for (const [k, v] of Object.entries(body)) {
    const check = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!check) problems.push(`${k}: unknown field (allowed: ${Object.keys(fields).join(', ') || 'none'})`);
    else {
      const problem = check(v);
      if (problem) problems.push(`${k}: ${problem}`);
    }
  }
  if (problems.length > 0) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `invalid request body: ${problems.join('; ')}`);
  return body;
}

export const isBoolean: FieldCheck = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
export const isText: FieldCheck = (v) => (typeof v === 'string' && v !== '' ? undefined : 'must be a non-empty string');
