import type { AddressInfo } from 'node:net';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { Log } from '../observability/log.ts';
import type { Pool } from '../pool/pool.ts';
import type { Config } from '../config/load.ts';
import { pemBlocks } from '../ca/x509.ts';
import { httpsStatusProbe } from './probe.ts';
import { LiveHealth, type HostProbe } from './health.ts';
import { DnsResponder, type DnsStats } from './responder.ts';
import { allHosts, compileZones, snapshot, type DnsConfig, type Fallback, type ZoneSnapshot } from './zone.ts';

// The DNS responder as ringmaster runs it: zones from the config, target health from probes and
// the gateway's pools, and the answers rebuilt whenever health changes (and every second, for
// what changes without an event: this instance's own state, pools added by a reload).

export type DnsServiceDeps = {
  clock: Clock;
  log: Log;
  probe: HostProbe;
  pools: () => ReadonlyMap<string, Pool>;
  selfRunning: () => boolean;
  /** Port of ringmaster's first listener: the SRV port of `check: self` hosts without one. */
  selfPort: number | undefined;
};

export type DnsService = {
  address: AddressInfo;
  responder: DnsResponder;
  health: LiveHealth;
  stats(): DnsStats;
  /** The records as they are answered now. */
  zones(): readonly ZoneSnapshot[];
  /** Rebuilds the answers from current health at once (the timer does it every second). */
  refresh(): void;
  close(): Promise<void>;
};

const REFRESH_MS = 1000;

export async function startDns(config: DnsConfig, deps: DnsServiceDeps): Promise<DnsService> {
  const { clock, log } = deps;
  const compiled = compileZones(config, deps.selfPort);
  const health = new LiveHealth(allHosts(compiled), config.healthCheck, { clock, log, probe: deps.probe, pools: deps.pools, selfRunning: deps.selfRunning });
  let current: readonly ZoneSnapshot[] = [];
  let fallbacks = new Map<string, Fallback>();
  const responder = new DnsResponder(config, { clock, log, zones: () => current });

  const refresh = (): void => {
    current = compiled.map((z) => snapshot(z, health));
    const next = new Map<string, Fallback>(current.flatMap((z) => z.fallbacks.map((f): [string, Fallback] => [`${f.type} ${f.name}`, f])));
    for (const [key, f] of next) {
      if (!fallbacks.has(key)) log.warn({ name: f.name, type: f.type, targets: f.targets }, 'every target of this name is unhealthy; answering with all of them');
    }
    for (const [key, f] of fallbacks) if (!next.has(key)) log.info({ name: f.name, type: f.type }, 'this name has healthy targets again; answering with those only');
    fallbacks = next;
    responder.setFallbackNames(next.size);
  };

  health.start();
  refresh();
  const offHealth = health.onChange(refresh);
  let timer: TimerHandle | undefined;
  const tick = (): void => {
    health.watchPools();
    refresh();
    timer = clock.setTimeout(tick, REFRESH_MS);
  };
  timer = clock.setTimeout(tick, REFRESH_MS);

  let address: AddressInfo;
  try {
    address = await responder.listen();
  } catch (err) {
    timer.cancel();
    offHealth();
    health.stop();
    throw err;
  }
  log.info({ address: address.address, port: address.port, zones: compiled.map((z) => z.apex) }, 'DNS responder listening');
  return {
    address,
    responder,
    health,
    stats: () => responder.stats(),
    zones: () => current,
    refresh,
    async close() {
      timer?.cancel();
      offHealth();
      health.stop();
      await responder.close();
    },
  };
}

export type AppDnsDeps = {
  clock: Clock;
  log: Log;
  gateway: { pools(): ReadonlyMap<string, Pool>; state(): string };
  caBundlePem: string;
  listenerPort: number | undefined;
};

/** The responder as the composition root starts it; undefined when `dns.enabled` is false. */
export async function startDnsForApp(config: Config, deps: AppDnsDeps): Promise<DnsService | undefined> {
  if (!config.dns.enabled) return undefined;
  return startDns(config.dns, {
    clock: deps.clock,
    log: deps.log,
    probe: httpsStatusProbe({ ca: pemBlocks(deps.caBundlePem, 'CERTIFICATE'), verify: config.dns.healthCheck.verify }),
    pools: () => deps.gateway.pools(),
    selfRunning: () => deps.gateway.state() === 'running',
    selfPort: deps.listenerPort,
  });
}
