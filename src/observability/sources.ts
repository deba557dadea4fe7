import type { Clock } from '../lib/clock.ts';
import { errorMessage } from '../lib/errors.ts';
import type { Log } from './log.ts';
import type { PoolSnapshot } from '../pool/snapshot.ts';
import type { InventoryEntry } from '../ca/inventory.ts';
import { countExpiringSoon } from '../ca/expiry.ts';
import type { StatusCounts } from '../reports/store.ts';
import type { DnsStats } from '../dns/responder.ts';
import type { StateReading } from './metrics.ts';

// Reads the live objects for a scrape. What costs a file or a query (the CA inventory, the CSR
// directory, the reports store) is read at most once per `cacheMs` on the injected clock, so a
// scrape every few seconds, or several Prometheus servers, cost no more than one a minute. A part
// that cannot be read is left out of that scrape and counted, never failing the scrape.

export type CaSource = {
  readonly signedCount: number;
  readonly crlThisUpdate: Date;
  readonly crlNextUpdate: Date | undefined;
  readonly signingCert: { notAfter: Date };
  isRevoked(serial: bigint): boolean;
  inventory(): Promise<InventoryEntry[]>;
  pendingNames(): Promise<string[]>;
  readonly store: { listSigned(): Promise<string[]> };
};

export type ReportsSource = {
  capture: { captured: number; invalid: number; failed: number; dropped: number; queued: number };
  store: { stats(q: { since: number; until: number; bucketMs?: number }): Promise<{ nodes: StatusCounts; stored: number }> };
};

export type StateSources = {
  pools: () => ReadonlyMap<string, { snapshot(): PoolSnapshot }>;
  ca?: CaSource | undefined;
  /** With an external CA (no `ca`): the CRL the listeners use, for its age and expiry. */
  crl?: { readonly crlThisUpdate: Date | undefined; readonly crlNextUpdate: Date | undefined; readonly crlRefreshFailures: number } | undefined;
  reports?: () => ReportsSource | undefined;
  dns?: () => { stats(): DnsStats } | undefined;
  listeners?: () => readonly { readonly name: string; stats(): { connections: number; parked: number; parkedTotal: number } }[];
};

const DAY = 86_400_000;
export const expiringWithinMs = 30 * DAY;
export const slowCacheMs = 60_000;
export const pendingCacheMs = 10_000;

export function stateReader(sources: StateSources, deps: { clock: Clock; log: Log }): () => Promise<StateReading> {
  const { clock, log } = deps;
  const ca = sources.ca;
  const expiring = ca
    ? cached(clock, slowCacheMs, async () => {
        const [inventory, signed] = await Promise.all([ca.inventory(), ca.store.listSigned()]);
        return countExpiringSoon({ inventory, signed, isRevoked: (s) => ca.isRevoked(s), now: clock.now(), withinMs: expiringWithinMs });
      })
    : undefined;
  const pending = ca ? cached(clock, pendingCacheMs, async () => (await ca.pendingNames()).length) : undefined;
  const reportStats = new WeakMap<object, () => Promise<{ nodes: StatusCounts; stored: number }>>();
  const statsOf = (r: ReportsSource) => {
    let f = reportStats.get(r.store);
    if (!f) {
      f = cached(clock, slowCacheMs, async () => {
        const now = clock.now();
        const s = await r.store.stats({ since: now - 3600_000, until: now, bucketMs: 3600_000 });
        return { nodes: s.nodes, stored: s.stored };
      });
      reportStats.set(r.store, f);
    }
    return f;
  };

  return async () => {
    const errors: string[] = [];
    const attempt = async <T>(source: string, f: (() => Promise<T>) | undefined): Promise<T | undefined> => {
      if (!f) return undefined;
      try {
        return await f();
      } catch (err) {
        errors.push(source);
        log.debug({ source, err: errorMessage(err) }, 'metrics: cannot read this source for the scrape');
        return undefined;
      }
    };
    const pools = [...sources.pools().values()].map((p) => p.snapshot());
    const reports = sources.reports?.();
    const [expiringSoon, pendingCount, stats] = await Promise.all([attempt('ca_inventory', expiring), attempt('ca_requests', pending), attempt('reports_store', reports ? statsOf(reports) : undefined)]);
    const c = reports?.capture;
    return {
      pools,
      ca: ca
        ? { signed: ca.signedCount, pending: pendingCount, expiringSoon, crlThisUpdate: ca.crlThisUpdate.getTime(), crlNextUpdate: ca.crlNextUpdate?.getTime(), signingCertNotAfter: ca.signingCert.notAfter.getTime() }
        : sources.crl
          ? { crlThisUpdate: sources.crl.crlThisUpdate?.getTime(), crlNextUpdate: sources.crl.crlNextUpdate?.getTime(), crlRefreshFailures: sources.crl.crlRefreshFailures }
          : undefined,
      reports: c ? { captured: c.captured, invalid: c.invalid, failed: c.failed, dropped: c.dropped, queued: c.queued, nodes: stats?.nodes, stored: stats?.stored } : undefined,
      dns: sources.dns?.()?.stats(),
      listeners: sources.listeners?.().map((l) => ({ name: l.name, ...l.stats() })),
      errors,
    };
  };
}

/** `f`'s last result while younger than `ttlMs`; concurrent callers share one call; failures are not kept. */
export function cached<T>(clock: Clock, ttlMs: number, f: () => Promise<T>): () => Promise<T> {
  let value: { at: number; v: T } | undefined;
  let running: Promise<T> | undefined;
  return () => {
    if (value && clock.now() - value.at < ttlMs) return Promise.resolve(value.v);
    running ??= f().then(
      (v) => {
        value = { at: clock.now(), v };
        running = undefined;
        return v;
      },
      (err: unknown) => {
        running = undefined;
        throw err;
      },
    );
    return running;
  };
}
