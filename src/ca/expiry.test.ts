import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countExpiringSoon } from './expiry.ts';
import type { InventoryEntry } from './inventory.ts';

const now = Date.UTC(2026, 0, 1);
const day = 86_400_000;
const entry = (serial: bigint, name: string, daysLeft: number): InventoryEntry => ({ serial, notBefore: new Date(now - day), notAfter: new Date(now + daysLeft * day), subject: `/CN=${name}` });

test('certificates expiring soon: the newest certificate of each signed name, unrevoked, not yet expired, within the window', () => {
  const inventory = [
    entry(1n, 'renewed', 5), // replaced by serial 5 below
    entry(2n, 'soon', 29),
    entry(3n, 'later', 31),
    entry(4n, 'revoked', 3),
    entry(5n, 'renewed', 300),
    entry(6n, 'deleted', 2), // no longer in the signed directory
    entry(7n, 'expired', -1),
  ];
  const n = countExpiringSoon({ inventory, signed: ['renewed', 'soon', 'later', 'revoked', 'expired'], isRevoked: (s) => s === 4n, now, withinMs: 30 * day });
  assert.equal(n, 1);
  assert.equal(countExpiringSoon({ inventory, signed: ['renewed', 'soon'], isRevoked: () => false, now: now - 300 * day + 10 * day, withinMs: 30 * day }), 0);
});
