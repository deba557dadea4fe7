import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import {
  decodeInt, decodeOid, decodeString, decodeTime, encode, encodeInt, encodeOid, encodeText, encodeTime, hex, kids, readDer, want,
} from './der.ts';

const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const failsWith = (code: string, message: RegExp) => (err: unknown): boolean => isRingmasterError(err) && err.code === code && message.test(err.message);

test('INTEGER round-trips, with a leading zero only where the high bit is set', () => {
  const cases: [bigint, string][] = [
    [0n, '020100'], [1n, '020101'], [0x7fn, '02017f'], [0x80n, '02020080'], [0xffn, '020200ff'], [0x100n, '02020100'],
    [0x7fffn, '02027fff'], [0x8000n, '0203008000'],
  ];
  for (const [n, der] of cases) {
    assert.equal(hex(encodeInt(n)), der, n.toString());
    assert.equal(decodeInt(want(readDer(bytes(der)), 0x02, 'INTEGER').content), n);
  }
  const big = 2n ** 159n + 12345n; // a 20-byte serial with its high bit set
  const der = readDer(encodeInt(big, true));
  assert.equal(der.content.length, 21);
  assert.equal(decodeInt(der.content), big);
  // Other encoders' negative values still decode as negative.
  assert.equal(decodeInt(bytes('ff')), -1n);
  assert.equal(decodeInt(bytes('ff7f')), -129n);
  assert.throws(() => decodeInt(new Uint8Array(0)), /empty INTEGER/);
  assert.throws(() => encodeInt(-1n), failsWith('RM_INTERNAL', /INTEGER out of range/));
  assert.throws(() => encodeInt(0n, true), failsWith('RM_INTERNAL', /serial out of range/));
});

test('OBJECT IDENTIFIER round-trips, including 128-bit UUID arcs and a first arc of 2 above 39', () => {
  assert.equal(hex(encodeOid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
  const uuid = `2.25.${(2n ** 128n - 1n).toString()}`;
  for (const oid of ['0.9.2342.19200300.100.1.25', '1.3.6.1.4.1.34380.1.1.1', '2.5.29.17', '2.999.3', uuid]) {
    assert.equal(decodeOid(want(readDer(encodeOid(oid)), 0x06, 'OID').content), oid);
  }
  assert.equal(readDer(encodeOid(uuid)).content.length, 20);
  assert.throws(() => decodeOid(bytes(`2a ${'ff'.repeat(20)} 01`)), /arc too long/);
  assert.throws(() => decodeOid(bytes('2a86')), /malformed object identifier/);
  assert.throws(() => decodeOid(new Uint8Array(0)), /malformed object identifier/);
  for (const bad of ['pp_role', '3.1', '1', '1.2.', '1..2']) assert.throws(() => encodeOid(bad), failsWith('RM_CA_CSR_MALFORMED', /dotted object identifier/));
});

test('times before 2050 are UTCTime and from 2050 on GeneralizedTime, as RFC 5280 requires', () => {
  const cases: [string, number, string][] = [
    ['1949-12-31T23:59:59Z', 0x18, '19491231235959Z'],
    ['1950-01-01T00:00:00Z', 0x17, '500101000000Z'],
    ['2026-01-15T12:00:00Z', 0x17, '260115120000Z'],
    ['2049-12-31T23:59:59Z', 0x17, '491231235959Z'],
    ['2050-01-01T00:00:00Z', 0x18, '20500101000000Z'],
    ['9999-12-31T23:59:59Z', 0x18, '99991231235959Z'],
  ];
  for (const [iso, tag, text] of cases) {
    const der = readDer(encodeTime(new Date(iso)));
    assert.equal(der.tag, tag, iso);
    assert.equal(Buffer.from(der.content).toString('latin1'), text);
    assert.equal(decodeTime(der, 'time').toISOString(), new Date(iso).toISOString());
  }
  // Fractional seconds are dropped on the way in; GeneralizedTime may carry them and UTCTime may omit seconds.
  assert.equal(readDer(encodeTime(new Date('2030-06-01T10:20:30.999Z'))).content.length, 13);
  assert.equal(decodeTime(readDer(encode(0x18, Buffer.from('20500101000000.5Z'))), 't').toISOString(), '2050-01-01T00:00:00.000Z');
  assert.equal(decodeTime(readDer(encode(0x17, Buffer.from('2601151200Z'))), 't').toISOString(), '2026-01-15T12:00:00.000Z');
  for (const bad of [encode(0x17, Buffer.from('261315120000Z')), encode(0x17, Buffer.from('260230120000Z')), encode(0x18, Buffer.from('20260115250000Z')), encode(0x17, Buffer.from('20260115120000Z')), encode(0x18, Buffer.from('2026011512Z')), encode(0x17, Buffer.from('260115120000+0100')), encode(0x04)]) {
    assert.throws(() => decodeTime(readDer(bad), 'notAfter'), /notAfter is missing or malformed/);
  }
  assert.throws(() => decodeTime(undefined, 'thisUpdate'), /thisUpdate is missing or malformed/);
});

test('lengths use the short form below 128 and one, two or three length bytes above', () => {
  const cases: [number, string][] = [[0, '00'], [127, '7f'], [128, '8180'], [255, '81ff'], [256, '820100'], [65535, '82ffff'], [65536, '83010000'], [70000, '83011170']];
  for (const [n, len] of cases) {
    const der = encode(0x04, new Uint8Array(n).fill(0xab));
    assert.equal(hex(der.subarray(1, 1 + len.length / 2)), len, String(n));
    const back = readDer(der);
    assert.equal(back.tag, 0x04);
    assert.equal(back.content.length, n);
    assert.equal(back.raw.length, der.length);
  }
  const seq = encode(0x30, encodeInt(5n), encode(0x04, new Uint8Array(300)), encodeOid('2.5.4.3'));
  assert.deepEqual(kids(readDer(seq)).map((k) => [k.tag, k.content.length]), [[0x02, 1], [0x04, 300], [0x06, 3]]);
  assert.equal(readDer(bytes('048400000001ff')).content.length, 1); // a four-byte length from another encoder still reads
});

test('the reader refuses truncated, trailing, indefinite and high-tag input', () => {
  const der = encode(0x30, encodeInt(2n ** 64n), encode(0x04, new Uint8Array(200)));
  for (let cut = 0; cut < der.length; cut++) assert.throws(() => readDer(der.subarray(0, cut)), /truncated DER/, `cut at ${cut}`);
  assert.throws(() => readDer(Buffer.concat([der, Uint8Array.of(0)])), /trailing bytes/);
  assert.equal(readDer(Buffer.concat([der, Uint8Array.of(0)]), 0).raw.length, der.length); // with pos, what follows is the caller's
  assert.throws(() => kids(readDer(encode(0x30, encodeInt(1n), Uint8Array.of(0x02, 0x05, 0x01)))), /truncated DER/);
  assert.throws(() => readDer(bytes('308002010000 00')), /unsupported DER length/);
  assert.throws(() => readDer(bytes('04850000000001ff')), /unsupported DER length/);
  assert.throws(() => readDer(bytes('1f2001ff')), /unsupported DER tag/);
  assert.throws(() => kids(readDer(bytes('0400'))), /expected a constructed DER value/);
  assert.throws(() => want(readDer(bytes('0400')), 0x30, 'subject'), /subject is missing or malformed/);
  assert.throws(() => want(undefined, 0x30, 'issuer'), /issuer is missing or malformed/);
});

test('strings decode by their DER type and encode as UTF8String or Latin-1', () => {
  assert.equal(decodeString(readDer(encodeText(0x0c, 'grüße'))), 'grüße');
  assert.equal(hex(encodeText(0x13, 'ab')), '13026162');
  assert.equal(hex(encodeText(0x16, 'é')), '1601e9');
  assert.equal(decodeString(readDer(bytes('1e0400e4006b'))), 'äk'); // BMPString is big-endian UTF-16
  for (const tag of [0x12, 0x13, 0x14, 0x16, 0x1a]) assert.equal(decodeString(readDer(encode(tag, Buffer.from('a-1')))), 'a-1');
  assert.equal(decodeString(readDer(bytes('0401ff'))), undefined);
  assert.throws(() => decodeString(readDer(bytes('0c01ff'))));
});
