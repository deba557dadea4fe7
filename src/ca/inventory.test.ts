import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatInventoryDate,
  formatInventoryLine,
  formatSerial,
  parseInventory,
  parseInventoryDate,
  parseInventoryLine,
  parseSerialText,
  type InventoryEntry,
} from './inventory.ts';
import { isRingmasterError } from '../lib/errors.ts';

const entry: InventoryEntry = {
  serial: 2n,
  notBefore: new Date('2024-05-01T12:00:00Z'),
  notAfter: new Date('2029-05-01T12:00:00Z'),
  subject: '/CN=agent1.example.com',
};

test('serials are written the way puppetserver writes them', () => {
  assert.equal(formatSerial(1n), '0001');
  assert.equal(formatSerial(0x2an), '002A');
  assert.equal(formatSerial(0xffffn), 'FFFF');
  assert.equal(formatSerial(0x10000n), '10000');
  assert.equal(formatSerial(0xabcdef0123456789n), 'ABCDEF0123456789');
});

test('serial files from puppetserver and from the CLI both parse', () => {
  assert.equal(parseSerialText('002A'), 42n);
  assert.equal(parseSerialText('002\n'), 2n);
  assert.equal(parseSerialText('2a'), 42n);
  assert.equal(parseSerialText('  00FB \r\n'), 251n);
  for (const bad of ['', '\n', '0x2A', 'zz', '12 34', '-1', '1.5']) assert.equal(parseSerialText(bad), undefined, bad);
});

test('dates use the inventory format and reject impossible values', () => {
  assert.equal(formatInventoryDate(new Date('2029-05-01T12:00:00.999Z')), '2029-05-01T12:00:00UTC');
  assert.equal(formatInventoryDate(new Date('2001-02-03T04:05:06Z')), '2001-02-03T04:05:06UTC');
  assert.deepEqual(parseInventoryDate('2029-05-01T12:00:00UTC'), new Date('2029-05-01T12:00:00Z'));
  assert.deepEqual(parseInventoryDate('2029-05-01T12:00:00Z'), new Date('2029-05-01T12:00:00Z'));
  for (const bad of ['2024-02-30T00:00:00UTC', '2024-01-01T24:00:00UTC', '2024-01-01 00:00:00UTC', '2024-01-01T00:00:00']) {
    assert.equal(parseInventoryDate(bad), undefined, bad);
  }
});

test('a line round-trips, upper-case when written, either case when read', () => {
  const line = formatInventoryLine({ ...entry, serial: 0x2fn });
  assert.equal(line, '0x002F 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agent1.example.com\n');
  assert.deepEqual(parseInventoryLine(line.trimEnd()), { ...entry, serial: 0x2fn });
  assert.deepEqual(parseInventoryLine('0x002f 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agent1.example.com'), {
    ...entry,
    serial: 0x2fn,
  });
});

test('subjects may contain spaces', () => {
  const parsed = parseInventoryLine('0x0002 2024-05-01T12:00:00UTC 2039-05-01T12:00:00UTC /CN=Puppet CA: ca.example.com');
  assert.equal(parsed?.subject, '/CN=Puppet CA: ca.example.com');
});

test('formatting refuses entries that would corrupt the file', () => {
  for (const bad of [
    { ...entry, subject: 'CN=no-slash' },
    { ...entry, subject: '/CN=a\n0x0009 x' },
    { ...entry, serial: -1n },
    { ...entry, notAfter: new Date(Number.NaN) },
  ]) {
    assert.throws(() => formatInventoryLine(bad), (err) => isRingmasterError(err, 'RM_INTERNAL'));
  }
});

test('a torn last line is not an entry, and keepLength cuts it off', () => {
  const good = formatInventoryLine(entry) + formatInventoryLine({ ...entry, serial: 3n });
  const torn = '0x0004 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agen';
  const parsed = parseInventory(good + torn);
  assert.deepEqual(
    parsed.entries.map((e) => e.serial),
    [2n, 3n],
  );
  assert.equal(parsed.tornTail, torn);
  assert.equal(parsed.keepLength, good.length);
  // Its serial still counts when deciding how far the serial file must be.
  assert.equal(parsed.maxSerialSeen, 4n);
});

test('an unparsable last line is torn even with its newline; one in the middle is kept and reported', () => {
  const good = formatInventoryLine(entry);
  const text = `${good}garbage\n${formatInventoryLine({ ...entry, serial: 9n })}0x00\n`;
  const parsed = parseInventory(text);
  assert.deepEqual(
    parsed.entries.map((e) => e.serial),
    [2n, 9n],
  );
  assert.deepEqual(parsed.invalidLines, [2]);
  assert.equal(parsed.tornTail, '0x00');
  assert.equal(parsed.keepLength, text.length - '0x00\n'.length);
});

test('blank lines and an empty file are fine', () => {
  assert.deepEqual(parseInventory(''), { entries: [], invalidLines: [], tornTail: undefined, keepLength: 0, maxSerialSeen: undefined });
  const parsed = parseInventory(`\n${formatInventoryLine(entry)}\n`);
  assert.equal(parsed.entries.length, 1);
  assert.equal(parsed.tornTail, undefined);
  assert.deepEqual(parsed.invalidLines, []);
});

test('the line the puppetserver CA CLI wrote at setup parses', () => {
  const parsed = parseInventory('0x0001 2026-11-20T16:29:54UTC 2041-11-17T16:29:55UTC /CN=ps.example.com\n');
  assert.deepEqual(parsed.entries, [
    {
      serial: 1n,
      notBefore: new Date('2026-11-20T16:29:54Z'),
      notAfter: new Date('2041-11-17T16:29:55Z'),
      subject: '/CN=ps.example.com',
    },
  ]);
});
