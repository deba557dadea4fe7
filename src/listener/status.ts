import type { ServiceRequest, ServiceResponse } from './http.ts';

// /status/v1/simple as trapperkeeper-status answers it. Agents with server_list probe
// /status/v1/simple/server (then /master), so those must answer 200 while ringmaster serves.

const services = new Set(['server', 'master', 'ca', 'status-service']);

export function statusSimple(req: ServiceRequest, state: () => 'running' | 'stopping'): ServiceResponse {
  const [, , , service, ...rest] = req.segments; // ['status','v1','simple', service?]
  const headers = { 'content-type': 'text/plain; charset=utf-8' };
  if (rest.length > 0 || (service !== undefined && service !== '' && !services.has(service))) {
    return { status: 404, headers, body: `not found: ${service ?? ''}` };
  }
  const s = state();
  return { status: s === 'running' ? 200 : 503, headers, body: s };
}

export function isStatusSimple(req: ServiceRequest): boolean {
  return req.segments[0] === 'status' && req.segments[1] === 'v1' && req.segments[2] === 'simple';
}
