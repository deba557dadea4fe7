import { access, constants } from 'node:fs/promises';
import type { Clock } from '../lib/clock.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { Config } from '../config/load.ts';
import type { Gateway } from '../gateway/gateway.ts';
import type { TlsMaterial } from '../listener/listener.ts';
import { writeAdminEndpoint } from '../runtime-files.ts';
import { createAdminApi } from './api.ts';
import { createAdminAuth, tokenFileOf } from './auth.ts';
import type { RuntimeMembers } from './runtime-members.ts';
import type { ReportStore } from '../reports/store.ts';
import { AdminServer } from './server.ts';
import type { RuntimeDeps } from './endpoints.ts';
import { createDashboard } from './dashboard/files.ts';

// Starts the admin API for the composition root. A port that cannot be bound is logged as an
// error and the rest of ringmaster runs on: agents' runs matter more than the operator's API, and
// `ringmaster member` then says the admin API is unavailable.

export type AdminStartDeps = {
  config: Config;
  tls: TlsMaterial;
  isRevoked: (serial: bigint) => boolean;
  gateway: Gateway;
  members: RuntimeMembers;
  /** The reports store, when reports are enabled and it opened. */
  reports?: ReportStore | undefined;
  clock: Clock;
  log: Log;
  /** The CA, listeners, running config and reload for /admin/v1/state, /ca, /config and /reload. */
  runtime?: RuntimeDeps | undefined;
  /** The Prometheus exposition for GET /metrics. */
  metrics?: (() => Promise<{ contentType: string; body: string }>) | undefined;
};

export async function startAdmin(deps: AdminStartDeps): Promise<AdminServer | undefined> {
  const { config, log } = deps;
  const tokenFile = tokenFileOf(config);
  if (tokenFile) {
    await access(tokenFile, constants.R_OK).catch((err: unknown) => log.warn({ tokenFile, err: errorMessage(err) }, 'admin.tokenFile cannot be read; bearer tokens are refused until it can'));
  }
  const server = new AdminServer({
    address: config.admin.address,
    port: config.admin.port,
    tls: deps.tls,
    isRevoked: deps.isRevoked,
    auth: createAdminAuth({ ownCertname: config.server.certname, allow: config.admin.allow, tokenFile }, log),
    api: createAdminApi({ pools: () => deps.gateway.pools(), members: deps.members, clock: deps.clock, reports: deps.reports, gatewayState: () => deps.gateway.state(), ...deps.runtime }),
    dashboard: createDashboard(),
    metrics: deps.metrics,
    log,
  });
  let port: number;
  let address: string;
  try {
    ({ port, address } = await server.listen());
  } catch (err) {
    log.error({ code: 'RM_ADMIN_UNAVAILABLE', address: config.admin.address, port: config.admin.port, err: errorMessage(err) }, 'the admin API cannot listen; running without it');
    await server.close(0).catch(() => undefined);
    return undefined;
  }
  log.info({ address, port }, 'admin API listening');
  try {
    await writeAdminEndpoint(config.stateDir, { pid: process.pid, address, port });
  } catch (err) {
    log.error({ code: 'RM_STATE_DIR', err: errorMessage(err) }, 'cannot record the admin API port; `ringmaster member` will not find it');
  }
  return server;
}
