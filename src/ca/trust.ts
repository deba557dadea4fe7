import type { Clock } from '../lib/clock.ts';
import type { Log } from '../observability/log.ts';
import type { Config } from '../config/load.ts';
import { CertificateAuthority, type CaConfig } from './authority.ts';
import { ExternalCa } from './external.ts';
import { caFetchOver } from './external-fetch.ts';

// What the listeners trust and present: the built-in CA with the server certificate it issues
// ringmaster, or an external CA (`ca.enabled: false`) reached through its pool.

export type Trust = {
  readonly caBundlePem: string;
  readonly crlPem: string;
  readonly crlNextUpdate: Date | undefined;
  readonly serverCert: { certPem: string; keyPem: string };
  isRevoked(serial: bigint): boolean;
  onChange(fn: () => void): () => void;
};

/** The built-in CA (and whether it was just created), or the external one with its CRL refresh to start and its connections to close. */
export type OpenedTrust =
  | { kind: 'internal'; trust: Trust; ca: CertificateAuthority; created: boolean }
  | { kind: 'external'; trust: Trust; ca: ExternalCa; pool: string; close: () => Promise<void> };

export async function openTrust(config: Config, caConfig: () => CaConfig, deps: { clock: Clock; log: Log }): Promise<OpenedTrust> {
  const external = config.ca.external;
  if (config.ca.enabled || !external) {
    const { ca, created } = await CertificateAuthority.openOrCreate(caConfig(), deps);
    await ca.renewCrlIfDue();
    const serverCert = await ca.ensureServerCert(config.server.certname, config.server.dnsAltNames);
    const trust: Trust = {
      get caBundlePem() { return ca.caBundlePem; },
      get crlPem() { return ca.crlPem; },
      get crlNextUpdate() { return ca.crlNextUpdate; },
      serverCert,
      isRevoked: (s) => ca.isRevoked(s),
      onChange: (fn) => ca.onChange(fn),
    };
    return { kind: 'internal', trust, ca, created };
  }
  const fetch = caFetchOver(config.pools[external.pool]!, external.caFile);
  try {
    const ca = await ExternalCa.open(
      { caFile: external.caFile, crlRefreshMs: external.crlRefresh, waitForCertMs: external.waitForCert, certname: config.server.certname, dnsAltNames: config.server.dnsAltNames, keyLength: config.ca.keyLength, stateDir: config.stateDir },
      { ...deps, fetch: fetch.fetch },
    );
    return { kind: 'external', trust: ca, ca, pool: external.pool, close: fetch.close };
  } catch (err) {
    await fetch.close();
    throw err;
  }
}
