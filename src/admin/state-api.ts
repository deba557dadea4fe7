import type { AddressInfo } from 'node:net';
import type { Clock } from '../lib/clock.ts';
import type { Config } from '../config/load.ts';
import { caPoolOf, defaultRoutesFor } from '../router/router.ts';
import type { RouteConfig } from '../router/route.ts';
import type { Pool } from '../pool/pool.ts';
import type { AdminAnswer, AdminCall, AdminMemberView, AdminPoolView } from './api.ts';
import { allow, notFound, onlyParams } from './call.ts';

// What the process is doing now, in one answer for the dashboard and monitoring: its listeners,
// the route table in match order, and every pool with a verdict (`status`) and the reasons for it
// in words (`problems`), next to the numbers they come from.

export type ListenerLike = { readonly name: string; address(): AddressInfo | null; readonly draining: boolean };
export type StateApiDeps = {
  config: () => Config;
  listeners: () => readonly ListenerLike[];
  pools: () => ReadonlyMap<string, Pool>;
  poolView: (pool: Pool) => AdminPoolView;
  gatewayState: () => 'running' | 'stopping' | 'error';
  clock: Clock;
  startedAt: number;
};

export type PoolStatus = 'ok' | 'degraded' | 'down' | 'empty';
export type PoolState = AdminPoolView & { status: PoolStatus; problems: string[] };

export function createStateApi(deps: StateApiDeps): (call: AdminCall) => Promise<AdminAnswer> {
  const listeners = () => {
    const configured = new Map(deps.config().listeners.map((l) => [l.name, l]));
    return deps.listeners().map((l) => {
      const bound = l.address();
      const c = configured.get(l.name);
      return { name: l.name, address: bound?.address ?? c?.address ?? null, port: bound?.port ?? null, configuredPort: c?.port ?? null, listening: bound !== null, draining: l.draining };
    });
  };
  const routes = () => {
    const config = deps.config();
    const own = config.routes.map((r, i) => routeView(r, i, 'config'));
    const defaults = config.defaultRoutes ? defaultRoutesFor(caPoolOf(config)).map((r, i) => routeView(r, own.length + i, 'default')) : [];
    return [...own, ...defaults];
  };
  const pools = () => [...deps.pools().values()].map((p) => poolState(deps.poolView(p), deps.clock.now()));

  return (call) => {
    const [, , collection, ...extra] = call.segments;
    if (extra.length > 0) throw notFound(call);
    allow(call, ['GET']);
    onlyParams(call, []);
    const now = deps.clock.now();
    if (collection === 'listeners') return Promise.resolve({ status: 200, body: { listeners: listeners() } });
    if (collection === 'routes') return Promise.resolve({ status: 200, body: { routes: routes() } });
    return Promise.resolve({
      status: 200,
      body: {
        state: {
          now: new Date(now).toISOString(),
          startedAt: new Date(deps.startedAt).toISOString(),
          uptimeMs: Math.max(0, now - deps.startedAt),
          pid: process.pid,
          certname: deps.config().server.certname,
          gateway: deps.gatewayState(),
          listeners: listeners(),
          routes: routes(),
          pools: pools(),
        },
      },
    });
  };
}

function routeView(r: RouteConfig, index: number, source: 'config' | 'default') {
  const to = 'pool' in r.to ? { pool: r.to.pool } : { service: r.to.service };
  return { index, name: r.name ?? `route${index}`, source, match: r.match, to, canary: r.canary ?? null, timeouts: r.timeouts, limits: { maxBodyBytes: r.limits.maxBodyBytes, maxHeaderBytes: r.limits.maxHeaderBytes ?? null } };
}

/** The pool's verdict: down when nothing can take a request, degraded when a member that should could not. */
export function poolState(view: AdminPoolView, now: number): PoolState {
  const problems: string[] = [];
  for (const m of view.members) {
    const p = memberProblem(m, now);
    if (p) problems.push(`${m.name}: ${p}`);
  }
  if (view.queued > 0) problems.push(`${view.queued} request(s) queued for a compile slot, the oldest for ${(view.oldestWaitMs / 1000).toFixed(1)} s`);
  let status: PoolStatus;
  if (view.members.length === 0) {
    status = 'empty';
    problems.unshift('the pool has no members');
  } else if (view.eligible === 0) {
    status = 'down';
    problems.unshift('no member can take a request');
  } else status = problems.length > 0 ? 'degraded' : 'ok';
  return { ...view, status, problems };
}

function memberProblem(m: AdminMemberView, now: number): string | undefined {
  if (m.draining) return undefined;
  if (m.health === 'unhealthy') return `unhealthy${m.lastProbeError ? ` (${m.lastProbeError})` : ''}`;
  if (m.ejectedUntil !== null) return `ejected after failed requests for another ${Math.max(0, Math.ceil((m.ejectedUntil - now) / 1000))} s`;
  if (m.reason !== null && m.reason !== 'full') return `not eligible: ${m.reason}`;
  if (m.reason === 'full') return `full: ${m.inFlight} in flight${m.maxInFlight !== null ? ` of ${m.maxInFlight}` : ''}`;
  return undefined;
}
