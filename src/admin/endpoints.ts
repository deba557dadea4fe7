import type { Clock } from '../lib/clock.ts';
import type { Config } from '../config/load.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import type { Pool } from '../pool/pool.ts';
import type { ReloadStatus } from '../runtime-files.ts';
import type { AdminAnswer, AdminCall, AdminPoolView } from './api.ts';
import { createCaAdminApi, type ExternalCaView } from './ca-api.ts';
import { allow, notFound, onlyParams } from './call.ts';
import { createConfigApi } from './config-api.ts';
import { openApiDocument } from './openapi.ts';
import { createStateApi, type ListenerLike } from './state-api.ts';

// The admin API's collections beyond pools and reports, by their first segment after
// /admin/v1: state, listeners, routes, ca, config, reload and the OpenAPI document. Each lives in
// its own file; this one only wires them to what the composition root provides.

export type RuntimeDeps = {
  ca?: CertificateAuthority | undefined;
  /** With an external CA (`ca.enabled: false`), for GET /admin/v1/ca. */
  externalCa?: ExternalCaView | undefined;
  config?: (() => Config) | undefined;
  listeners?: (() => readonly ListenerLike[]) | undefined;
  gatewayState?: (() => 'running' | 'stopping' | 'error') | undefined;
  reload?: (() => Promise<ReloadStatus>) | undefined;
  startedAt?: number | undefined;
};
type Handler = (call: AdminCall) => Promise<AdminAnswer>;

export function createRuntimeEndpoints(deps: RuntimeDeps & { pools: () => ReadonlyMap<string, Pool>; clock: Clock }, poolView: (pool: Pool) => AdminPoolView): Record<string, Handler> {
  const config = deps.config;
  const openApi: Handler = (call) => {
    if (call.segments.length !== 3) throw notFound(call);
    allow(call, ['GET']);
    onlyParams(call, []);
    return Promise.resolve({ status: 200, body: openApiDocument });
  };
  const handlers: Record<string, Handler> = { 'openapi.json': openApi, ca: createCaAdminApi({ ca: deps.ca, external: deps.externalCa, clock: deps.clock }) };
  if (config) {
    const state = createStateApi({
      config,
      listeners: deps.listeners ?? (() => []),
      pools: deps.pools,
      poolView,
      gatewayState: deps.gatewayState ?? (() => 'running'),
      clock: deps.clock,
      startedAt: deps.startedAt ?? deps.clock.now(),
    });
    const configApi = createConfigApi({ config, reload: deps.reload });
    Object.assign(handlers, { state, listeners: state, routes: state, config: configApi, reload: configApi });
  }
  return handlers;
}
