import type { ParsedConfig } from '../config/schema.ts';
import { compileRoute, type Route, type RouteConfig, type RouteInput } from './route.ts';

// The ordered route table: the operator's routes first, then (unless turned off) the defaults
// that make ringmaster a drop-in `server` for agents.

export const defaultRouteConfigs: RouteConfig[] = [
  {
    name: 'ca',
    match: { path: '/puppet-ca/' },
    to: { service: 'ca' },
    timeouts: { responseHead: 60_000 },
    limits: { maxBodyBytes: 1024 * 1024, maxHeaderBytes: undefined },
  },
  {
    name: 'status',
    match: { pathPattern: '^/status/v1/simple(/[^/]*)?$', methods: ['GET', 'HEAD'] },
    to: { service: 'status' },
    timeouts: { responseHead: 10_000 },
    limits: { maxBodyBytes: 0, maxHeaderBytes: undefined },
  },
  {
    name: 'puppet',
    match: { path: '/puppet/' },
    to: { pool: 'compilers' },
    timeouts: { responseHead: 600_000 },
    limits: { maxBodyBytes: 256 * 1024 * 1024, maxHeaderBytes: undefined },
  },
];

/** The default routes; with an external CA (`caPool`), `/puppet-ca/` goes to its pool instead of the built-in CA. */
export function defaultRoutesFor(caPool: string | undefined): RouteConfig[] {
  if (caPool === undefined) return defaultRouteConfigs;
  return defaultRouteConfigs.map((r) => (r.name === 'ca' ? { ...r, to: { pool: caPool } } : r));
}

/** Where the CA's default route goes: undefined for the built-in CA, else the external CA's pool. */
export function caPoolOf(config: Pick<ParsedConfig, 'ca'>): string | undefined {
  return config.ca.enabled ? undefined : config.ca.external?.pool;
}

export type RouteResult = { route: Route; pool: string | undefined };

export class Router {
  readonly routes: readonly Route[];

  constructor(config: Pick<ParsedConfig, 'routes' | 'defaultRoutes'> & { caPool?: string | undefined }) {
    const configs = [...config.routes, ...(config.defaultRoutes ? defaultRoutesFor(config.caPool) : [])];
    this.routes = configs.map((c, i) => compileRoute(c, i));
  }

  match(input: RouteInput): RouteResult | undefined {
    for (const route of this.routes) {
      if (route.matches(input)) return { route, pool: route.poolFor(input) };
    }
    return undefined;
  }

  /** Pools some route can send to (targets and canaries), for status and reload checks. */
  poolNames(): Set<string> {
    const names = new Set<string>();
    for (const r of this.routes) if (r.target.kind === 'pool') names.add(r.target.pool);
    return names;
  }
}
