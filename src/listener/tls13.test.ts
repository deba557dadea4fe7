import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { RecordProtection, expandLabel, maxPlaintext, tls13Suite } from './tls13.ts';

const suites = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;

test('only the three TLS 1.3 suites are known', () => {
  for (const s of suites) assert.ok(tls13Suite(s));
  assert.equal(tls13Suite('ECDHE-RSA-AES128-GCM-SHA256'), undefined);
});

test('HKDF-Expand-Label builds the RFC 8446 HkdfLabel with an empty context', () => {
  const secret = randomBytes(32);
  const label = Buffer.concat([Buffer.from([0, 16, 9]), Buffer.from('tls13 key'), Buffer.from([0])]);
  const expected = createHmac('sha256', secret).update(Buffer.concat([label, Buffer.from([1])])).digest().subarray(0, 16);
  assert.deepEqual(expandLabel('sha256', secret, 'key', 16), expected);
});

for (const name of suites) {
  test(`${name}: sealed records open in order; a changed byte, a wrong sequence number or another key does not`, () => {
    const suite = tls13Suite(name)!;
    const secret = randomBytes(suite.hashLength);
    const writer = new RecordProtection(suite, secret);
    const reader = new RecordProtection(suite, secret);
    const a = writer.seal(23, Buffer.from('first'));
    const b = writer.seal(23, Buffer.from('second'));
    assert.deepEqual(a.subarray(0, 3), Buffer.from([23, 3, 3]));
    assert.equal(a.readUInt16BE(3), a.length - 5);
    assert.equal(reader.open(b), undefined, 'the second record does not open at the first one\'s sequence number');
    assert.equal(reader.seq, 0, 'a failed open leaves the sequence number');
    assert.deepEqual(reader.open(a), { type: 23, content: Buffer.from('first') });
    const tampered = Buffer.from(b);
    tampered[tampered.length - 20]! ^= 1;
    assert.equal(reader.open(tampered), undefined);
    const header = Buffer.from(b);
    header[1] = 1;
    assert.equal(reader.open(header), undefined, 'the header is authenticated');
    assert.deepEqual(reader.open(b)?.content, Buffer.from('second'));
    assert.equal(new RecordProtection(suite, randomBytes(suite.hashLength)).open(a), undefined);
    assert.deepEqual(new RecordProtection(suite, secret).open(b, 1)?.content, Buffer.from('second'), 'opens at an explicit sequence number');
  });

  test(`${name}: a KeyUpdate moves both sides to the same next keys, from sequence number 0`, () => {
    const suite = tls13Suite(name)!;
    const secret = randomBytes(suite.hashLength);
    const writer = new RecordProtection(suite, secret, 7);
    const reader = new RecordProtection(suite, secret, 7);
    writer.update();
    const r = writer.seal(23, Buffer.from('after'));
    assert.equal(reader.open(r), undefined, 'not under the old key');
    reader.update();
    assert.deepEqual(reader.open(r)?.content, Buffer.from('after'));
  });
}

test('inner content type and zero padding are read from the end; all-zero content is type 0', () => {
  const suite = tls13Suite('TLS_AES_128_GCM_SHA256')!;
  const secret = randomBytes(32);
  const w = new RecordProtection(suite, secret);
  const r = new RecordProtection(suite, secret);
  assert.deepEqual(r.open(w.seal(21, Buffer.from([1, 0]))), { type: 21, content: Buffer.from([1, 0]) });
  assert.deepEqual(r.open(w.seal(0, Buffer.alloc(0)))?.type, 0);
  assert.deepEqual(r.open(w.seal(23, Buffer.from([0, 0, 7])))?.content, Buffer.from([0, 0, 7]), 'zeros inside the content stay');
});

test('a record over 2^14 bytes of content is not sealed, and a secret of the wrong size is refused', () => {
  const suite = tls13Suite('TLS_AES_256_GCM_SHA384')!;
  const w = new RecordProtection(suite, randomBytes(48));
  assert.throws(() => w.seal(23, Buffer.alloc(maxPlaintext + 1)));
  assert.equal(w.seal(23, Buffer.alloc(maxPlaintext)).length, 5 + maxPlaintext + 1 + 16);
  assert.throws(() => new RecordProtection(suite, randomBytes(32)));
});
