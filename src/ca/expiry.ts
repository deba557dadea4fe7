import type { InventoryEntry } from './inventory.ts';

// How many of the CA's certificates run out soon, for the metrics. The inventory holds every
// certificate ever signed, renewed ones and deleted ones included: only the newest serial of a
// name that still has a signed certificate counts, and only while it is not revoked.

export type ExpiryInput = {
  inventory: readonly InventoryEntry[];
  /** Names with a certificate in the signed directory. */
  signed: Iterable<string>;
  isRevoked(serial: bigint): boolean;
  now: number;
  withinMs: number;
};

export function countExpiringSoon(p: ExpiryInput): number {
  const names = new Set(p.signed);
  const newest = new Map<string, InventoryEntry>();
  for (const e of p.inventory) {
    const name = e.subject.startsWith('/CN=') ? e.subject.slice(4) : undefined;
    if (name === undefined || !names.has(name)) continue;
    const seen = newest.get(name);
    if (seen === undefined || e.serial > seen.serial) newest.set(name, e);
  }
  let n = 0;
  for (const e of newest.values()) {
    const left = e.notAfter.getTime() - p.now;
    if (left > 0 && left <= p.withinMs && !p.isRevoked(e.serial)) n++;
  }
  return n;
}
