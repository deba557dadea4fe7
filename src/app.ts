import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Clock, TimerHandle } from './lib/clock.ts';
import { systemRandom, type Random } from './lib/random.ts';
import { errorMessage, RingmasterError } from './lib/errors.ts';
import type { Log } from './observability/log.ts';
import type { Config } from './config/load.ts';
import type { CertificateAuthority, CaConfig } from './ca/authority.ts';
import { openTrust, type Trust } from './ca/trust.ts';
import { createCaApi } from './ca/http-api.ts';
import { pemBlocks } from './ca/x509.ts';
import { Listener, type TlsMaterial } from './listener/listener.ts';
import { Gateway } from './gateway/gateway.ts';
import type { GatewayConfig, PoolConfig } from './gateway/config.ts';
import type { UpstreamTls } from './upstream/connections.ts';
import { RuntimeMembers } from './admin/runtime-members.ts';
import { startAdmin } from './admin/start.ts';
import type { AdminServer } from './admin/server.ts';
import { removeAdminEndpoint, type ReloadStatus } from './runtime-files.ts';
import { caPoolOf } from './router/router.ts';
import { openReports, type Reports } from './reports/service.ts';
import { startDnsForApp, type DnsService } from './dns/service.ts';
import { startObservability } from './observability/service.ts';
import { compileCache, gcMode, mallocInUse, newSpaceCommittedMb, newSpaceMb, pretenuring, saveCompileCache } from './lib/allocator.ts';

// The composition root: it opens (or creates) the CA, issues ringmaster's own certificate, starts
// the listeners, and keeps the listeners' CRL in step with the CA directory, whichever process
// (this one or `ringmaster ca revoke`) wrote it. With an external CA (`ca.enabled: false`) it gets
// its certificate and the CRL from that CA's pool instead. The gateway always runs the file's pools
// with the run-time member changes (admin API, `<stateDir>/members.json`) laid over them.

export type App = {
  /** The built-in CA; reading it with an external CA throws RM_CA_EXTERNAL. */
  readonly ca: CertificateAuthority;
  readonly trust: Trust;
  listeners: Listener[];
  gateway: Gateway;
  created: boolean;
  /** Where the admin API listens; undefined when it is disabled or could not listen. */
  adminAddress: AddressInfo | undefined;
  /** The reports store, capture and retention; undefined when reports.enabled is false or the store could not be opened (logged). */
  reports: Reports | undefined;
  /** The DNS responder (its `stats()` are for metrics); undefined when dns.enabled is false. */
  dns: DnsService | undefined;
  /** Applies changed routes and pools; other sections need a restart and are reported, not applied. */
  reload(next: Config): { applied: ReturnType<Gateway['reload']>; needsRestart: string[] };
  close(deadlineMs?: number): Promise<void>;
};

/** Top-level sections a reload applies; a change anywhere else is reported as needing a restart. */
const reloadable = new Set(['pools', 'routes', 'defaultRoutes', 'shutdown', 'configFile']);

export function gatewayConfigOf(config: Config): GatewayConfig {
  return { pools: config.pools, routes: config.routes, defaultRoutes: config.defaultRoutes, caPool: caPoolOf(config) };
}

/** The built-in CA's settings; with an external CA (`ca.enabled: false`) there is none: RM_CA_EXTERNAL. */
export function caConfigOf(config: Config): CaConfig {
  if (!config.ca.enabled) throw new RingmasterError('RM_CA_EXTERNAL', 'the CA is external (ca.enabled: false): manage certificates on it (e.g. puppetserver ca), not with ringmaster');
  return { ...config.ca, stateDir: config.stateDir, serverCertname: config.server.certname };
}

/** `reload`: the serve process's reload (re-read the file, App.reload, record the outcome), for POST /admin/v1/reload. */
export async function startApp(config: Config, deps: { clock: Clock; log: Log; random?: Random; reload?: () => Promise<ReloadStatus> }): Promise<App> {
  const { log, clock } = deps;
  const opened = await openTrust(config, () => caConfigOf(config), { clock, log: log.child({ component: 'ca' }) });
  const { trust } = opened;
  const ca = opened.kind === 'internal' ? opened.ca : undefined;
  const created = opened.kind === 'internal' && opened.created;
  const outside = opened.kind === 'external' ? opened : undefined;
  const material = (): TlsMaterial => ({
    key: trust.serverCert.keyPem,
    cert: `${trust.serverCert.certPem.trim()}\n${trust.caBundlePem}`,
    ca: pemBlocks(trust.caBundlePem, 'CERTIFICATE'),
    crl: pemBlocks(trust.crlPem, 'X509 CRL'),
  });
  const serverCert = trust.serverCert;

  const upstreamTls = (p: PoolConfig): UpstreamTls => ({
    verify: p.upstreamTls.verify,
    ca: p.upstreamTls.ca ? pemBlocks(readFileSync(p.upstreamTls.ca, 'utf8'), 'CERTIFICATE') : pemBlocks(trust.caBundlePem, 'CERTIFICATE'),
    serverName: p.upstreamTls.serverName,
    client: p.upstreamTls.clientCert ? { cert: serverCert.certPem, key: serverCert.keyPem } : undefined,
  });
  const members = await RuntimeMembers.open(config.stateDir, log.child({ component: 'admin' }));
  const reports = await openReports(config, { clock, log: log.child({ component: 'reports' }) });
  const gateway = new Gateway(members.effective(gatewayConfigOf(config)), {
    clock, random: deps.random ?? systemRandom, log: log.child({ component: 'gateway' }), services: { ca: ca && createCaApi(ca) }, upstreamTls,
    reports: reports && { forward: config.reports.forward, capture: (r) => reports.capture.capture(r), noteCatalog: (c, m, t) => reports.capture.noteCatalog(c, m, t) },
  });
  gateway.start();
  members.attach(gateway);
  const dispatch = (req: Parameters<Gateway['handle']>[0]) => gateway.handle(req);
  // The DNS responder starts after the listeners; a scrape before that shows no DNS metrics.
  const started: { dns?: DnsService | undefined } = {};
  const observability = startObservability(config, { pools: () => gateway.pools(), ca, crl: outside?.ca, reports: () => reports, dns: () => started.dns, listeners: () => listeners }, { clock, log: log.child({ component: 'metrics' }) });

  const listeners = config.listeners.map(
    (l) => new Listener({
      name: l.name, address: l.address, port: l.port, requestHeaderTimeoutMs: l.requestHeaderTimeout, keepAliveTimeoutMs: l.keepAliveTimeout, parkIdleAfterMs: l.parkIdleAfter, parkAboveConnections: l.parkAboveConnections,
      maxHeaderBytes: l.maxHeaderBytes, tls: material(), dispatch, isRevoked: (s) => trust.isRevoked(s), log: log.child({ component: 'listener', listener: l.name }),
      observer: observability.observer,
    }),
  );
  let current = config;
  // Before the agents' listeners, so that once "listening" is logged the admin port is known too.
  const admin: AdminServer | undefined = config.admin.enabled
    ? await startAdmin({
      config, tls: material(), isRevoked: (s) => trust.isRevoked(s), gateway, members, reports: reports?.store, clock, log: log.child({ component: 'admin' }),
      runtime: { ca, externalCa: outside && { pool: outside.pool, summary: () => outside.ca.summary }, config: () => current, listeners: () => listeners, reload: deps.reload, startedAt: clock.now() },
      metrics: () => observability.scrape(),
    })
    : undefined;
  trust.onChange(() => {
    admin?.updateTls(material());
    for (const l of listeners) l.updateTls(material());
    log.info({ nextUpdate: trust.crlNextUpdate?.toISOString() }, 'CRL reloaded into the listeners');
  });
  // Every module the service needs is loaded by now: written before the first `listening` line,
  // so the next start finds them even if this process is killed.
  saveCompileCache();
  try {
    for (const l of listeners) {
      const a = await l.listen();
      log.info({ listener: l.name, address: a.address, port: a.port, allocator: mallocInUse(), gc: gcMode(), pretenuring: pretenuring(), newSpaceMb: newSpaceMb(), newSpaceCommittedMb: newSpaceCommittedMb(), compileCache: compileCache() }, 'listening');
    }
  } catch (err) {
    // A failed start must not leave the admin API holding the process open.
    if (admin) await admin.close(0);
    await outside?.close();
    await removeAdminEndpoint(config.stateDir, process.pid).catch(() => undefined);
    throw err;
  }

  // After the listeners: SRV answers for this instance name the port its first listener got.
  const dns = await startDnsForApp(config, { clock, log: log.child({ component: 'dns' }), gateway, caBundlePem: trust.caBundlePem, listenerPort: listeners[0]?.address().port }).catch(async (err: unknown) => {
    await Promise.all(listeners.map((l) => l.close(0)));
    if (admin) await admin.close(0);
    await removeAdminEndpoint(config.stateDir, process.pid).catch(() => undefined);
    await gateway.stop();
    await outside?.close();
    throw err;
  });
  started.dns = dns;

  // A revocation by the CLI lands in ca_crl.pem; notice it at once (watch) or within a second (poll).
  // An external CA's CRL is fetched from its pool instead.
  let watcher: FSWatcher | undefined;
  let pollTimer: TimerHandle | undefined;
  let crlTimer: TimerHandle | undefined;
  if (ca) {
    const internal = ca;
    const refresh = () => {
      internal.refresh().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'cannot reload the CRL; keeping the previous one'));
    };
    try {
      watcher = watch(config.ca.dir, { persistent: false }, (_event, file) => {
        if (file === 'ca_crl.pem') refresh();
      });
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'cannot watch the CA directory; relying on polling');
    }
    const poll = () => {
      refresh();
      pollTimer = clock.setTimeout(poll, 1000);
    };
    pollTimer = clock.setTimeout(poll, 1000);
    const renewCrl = () => {
      internal.renewCrlIfDue().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'CRL renewal failed; will retry'));
      crlTimer = clock.setTimeout(renewCrl, config.ca.crl.checkInterval);
    };
    crlTimer = clock.setTimeout(renewCrl, config.ca.crl.checkInterval);
  }
  outside?.ca.start();

  return {
    get ca(): CertificateAuthority {
      if (!ca) throw new RingmasterError('RM_CA_EXTERNAL', 'the CA is external (ca.enabled: false); ringmaster runs no CA of its own');
      return ca;
    },
    trust,
    listeners,
    gateway,
    created,
    adminAddress: admin?.address(),
    reports,
    dns,
    reload(next) {
      const needsRestart = Object.keys({ ...current, ...next }).filter(
        (k) => !reloadable.has(k) && JSON.stringify((current as Record<string, unknown>)[k]) !== JSON.stringify((next as Record<string, unknown>)[k]),
      );
      const applied = gateway.reload(members.effective(gatewayConfigOf(next)));
      observability.reopen();
      current = { ...next, ...Object.fromEntries(needsRestart.map((k) => [k, (current as Record<string, unknown>)[k]])) };
      return { applied, needsRestart };
    },
    async close(deadlineMs = 10_000) {
      gateway.beginStop();
      // DNS keeps answering while the listeners drain, without this instance (now "stopping").
      dns?.refresh();
      watcher?.close();
      pollTimer?.cancel();
      crlTimer?.cancel();
      outside?.ca.stop();
      if (admin) {
        await admin.close(Math.min(deadlineMs, 2000));
        await removeAdminEndpoint(config.stateDir, process.pid).catch(() => undefined);
      }
      await Promise.all(listeners.map((l) => l.close(deadlineMs)));
      await observability.close();
      await reports?.close();
      await dns?.close();
      await gateway.stop();
      await outside?.close();
      await members.settled();
    },
  };
}
