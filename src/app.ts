import { watch, type FSWatcher } from 'node:fs';
import type { Clock, TimerHandle } from './lib/clock.ts';
import { errorMessage, RingmasterError } from './lib/errors.ts';
import type { Log } from './observability/log.ts';
import type { Config } from './config/load.ts';
import { CertificateAuthority, type CaConfig } from './ca/authority.ts';
import { createCaApi } from './ca/http-api.ts';
import { pemBlocks } from './ca/x509.ts';
import { Listener, type TlsMaterial } from './listener/listener.ts';
import { statusSimple, isStatusSimple } from './listener/status.ts';
import { errorResponse, type ServiceRequest, type ServiceResponse } from './listener/http.ts';

// The composition root: it opens (or creates) the CA, issues ringmaster's own certificate, starts
// the listeners, and keeps the listeners' CRL in step with the CA directory, whichever process
// (this one or `ringmaster ca revoke`) wrote it.

export type App = {
  ca: CertificateAuthority;
  listeners: Listener[];
  created: boolean;
  close(deadlineMs?: number): Promise<void>;
};

export function caConfigOf(config: Config): CaConfig {
  return { ...config.ca, stateDir: config.stateDir, serverCertname: config.server.certname };
}

export async function startApp(config: Config, deps: { clock: Clock; log: Log }): Promise<App> {
  const { log, clock } = deps;
  if (!config.ca.enabled) throw new RingmasterError('RM_CONFIG_INVALID', 'ca.enabled: false needs an external CA, which is not supported yet');
  const { ca, created } = await CertificateAuthority.openOrCreate(caConfigOf(config), { clock, log: log.child({ component: 'ca' }) });
  await ca.renewCrlIfDue();
  const serverCert = await ca.ensureServerCert(config.server.certname, config.server.dnsAltNames);
  const material = (): TlsMaterial => ({
    key: serverCert.keyPem,
    cert: `${serverCert.certPem.trim()}\n${ca.caBundlePem}`,
    ca: pemBlocks(ca.caBundlePem, 'CERTIFICATE'),
    crl: pemBlocks(ca.crlPem, 'X509 CRL'),
  });

  let state: 'running' | 'stopping' = 'running';
  const caApi = createCaApi(ca);
  const dispatch = async (req: ServiceRequest): Promise<ServiceResponse> => {
    if (req.segments[0] === 'puppet-ca') return caApi(req);
    if (isStatusSimple(req) && (req.method === 'GET' || req.method === 'HEAD')) return statusSimple(req, () => state);
    return errorResponse(new RingmasterError('RM_NOT_FOUND', `Not Found: ${req.path}`));
  };

  const listeners = config.listeners.map(
    (l) => new Listener({
      name: l.name, address: l.address, port: l.port, requestHeaderTimeoutMs: l.requestHeaderTimeout, keepAliveTimeoutMs: l.keepAliveTimeout,
      tls: material(), dispatch, isRevoked: (s) => ca.isRevoked(s), log: log.child({ component: 'listener', listener: l.name }),
    }),
  );
  ca.onChange(() => {
    for (const l of listeners) l.updateTls(material());
    log.info({ nextUpdate: ca.crlNextUpdate?.toISOString() }, 'CRL reloaded into the listeners');
  });
  for (const l of listeners) {
    const a = await l.listen();
    log.info({ listener: l.name, address: a.address, port: a.port }, 'listening');
  }

  // A revocation by the CLI lands in ca_crl.pem; notice it at once (watch) or within a second (poll).
  let watcher: FSWatcher | undefined;
  const refresh = () => {
    ca.refresh().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'cannot reload the CRL; keeping the previous one'));
  };
  try {
    watcher = watch(config.ca.dir, { persistent: false }, (_event, file) => {
      if (file === 'ca_crl.pem') refresh();
    });
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'cannot watch the CA directory; relying on polling');
  }
  let pollTimer: TimerHandle | undefined;
  const poll = () => {
    refresh();
    pollTimer = clock.setTimeout(poll, 1000);
  };
  pollTimer = clock.setTimeout(poll, 1000);
  let crlTimer: TimerHandle | undefined;
  const renewCrl = () => {
    ca.renewCrlIfDue().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'CRL renewal failed; will retry'));
    crlTimer = clock.setTimeout(renewCrl, config.ca.crl.checkInterval);
  };
  crlTimer = clock.setTimeout(renewCrl, config.ca.crl.checkInterval);

  return {
    ca,
    listeners,
    created,
    async close(deadlineMs = 10_000) {
      state = 'stopping';
      watcher?.close();
      pollTimer?.cancel();
      crlTimer?.cancel();
      await Promise.all(listeners.map((l) => l.close(deadlineMs)));
    },
  };
}
