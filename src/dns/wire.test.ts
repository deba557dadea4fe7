import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { silentLog } from '../observability/log.ts';
import { DnsResponder } from './responder.ts';
import { RateLimiter } from './ratelimit.ts';
import { compileZones, snapshot } from './zone.ts';
import { FakeHealth, parsedConfig, query, reply, seedZone } from './testing.ts';
import { addressBytes, decodeQuery, encodeReply, rcodes, rrType } from './wire.ts';

// Messages that are not plain queries, and the rate limit: FORMERR, NOTIMP, BADVERS or silence,
// never an exception; and never more answers per second to one source than configured.

function responder(rateLimit: Partial<{ perSecond: number; burst: number; slip: number; maxSources: number }> = {}, clock = new ManualClock()) {
  const config = parsedConfig({ dns: { zones: [{ ...seedZone, srv: seedZone.srv.slice(0, 3) }], rateLimit: { perSecond: 0, ...rateLimit } } });
  const zones = compileZones(config.dns).map((z) => snapshot(z, new FakeHealth()));
  return new DnsResponder(config.dns, { clock, log: silentLog, zones: () => zones });
}

const header = (id: number, flags: number, counts: [number, number, number, number]): Buffer => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => b.writeUInt16BE(c, 4 + i * 2));
  return b;
};

test('malformed messages get FORMERR with their id, or silence when there is nothing to answer', () => {
  const r = responder();
  assert.equal(r.handle(Buffer.from([1, 2, 3]), 'udp', '192.0.2.1'), undefined, 'shorter than a header');
  const good = query('puppet.example.com', 'A');
  const asResponse = Buffer.from(good);
  asResponse[2]! |= 0x80;
  assert.equal(r.handle(asResponse, 'udp', '192.0.2.1'), undefined, 'a response is never answered');

  const truncated = good.subarray(0, good.length - 3);
  const f = reply(r.handle(truncated, 'udp', '192.0.2.1'));
  assert.equal(f.rcodeValue, rcodes.FORMERR);
  assert.equal(f.id, 4242);

  const trailing = Buffer.concat([good, Buffer.from([0, 0, 0])]);
  assert.equal(reply(r.handle(trailing, 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR, 'bytes after the last record');
  const twoQuestions = Buffer.concat([header(7, 0x0100, [2, 0, 0, 0]), good.subarray(12), good.subarray(12)]);
  assert.equal(reply(r.handle(twoQuestions, 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR);
  assert.equal(reply(r.handle(header(8, 0, [0, 0, 0, 0]), 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR, 'no question');
});

test('compression loops and forward pointers are refused, not followed', () => {
  const r = responder();
  // The question name is a pointer to itself (offset 12), then one to a later offset.
  const self = Buffer.concat([header(9, 0, [1, 0, 0, 0]), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
  const forward = Buffer.concat([header(10, 0, [1, 0, 0, 0]), Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1])]);
  const twoStep = Buffer.concat([header(11, 0, [1, 0, 0, 0]), Buffer.from([1, 97, 0xc0, 16, 1, 98, 0xc0, 12, 0, 1, 0, 1])]);
  for (const [what, msg] of [['self', self], ['forward', forward], ['two-step loop', twoStep]] as const) {
    assert.equal(decodeQuery(msg).kind, 'error', what);
    assert.equal(reply(r.handle(msg, 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR, what);
  }
});

test('other opcodes get NOTIMP, EDNS versions above 0 get BADVERS, OPT as a question and two OPT records FORMERR', () => {
  const r = responder();
  const notify = query('example.com', 'SOA');
  notify.writeUInt16BE((4 << 11) | 0x0100, 2);
  assert.equal(reply(r.handle(notify, 'udp', '192.0.2.1')).rcodeValue, rcodes.NOTIMP);
  const v1 = reply(r.handle(query('example.com', 'SOA', { udpSize: 1232, ednsVersion: 1 }), 'udp', '192.0.2.1'));
  assert.equal(v1.rcodeValue, rcodes.BADVERS);
  assert.ok(v1.additionals?.some((a) => a.type === 'OPT'), 'BADVERS travels in the OPT record');
  assert.equal(reply(r.handle(query('example.com', rrType.OPT), 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR);
  const withOpt = query('example.com', 'SOA', { udpSize: 1232 });
  const opt = withOpt.subarray(withOpt.length - 11);
  const twoOpts = Buffer.concat([withOpt, opt]);
  twoOpts.writeUInt16BE(2, 10);
  assert.equal(reply(r.handle(twoOpts, 'udp', '192.0.2.1')).rcodeValue, rcodes.FORMERR);
});

test('oversize UDP messages are dropped; stats count every outcome', () => {
  const r = responder();
  assert.equal(r.handle(Buffer.alloc(5000), 'udp', '192.0.2.1'), undefined);
  r.handle(query('puppet.example.com', 'A'), 'tcp', '192.0.2.1');
  r.handle(query('nope.example.com', 'A'), 'udp', '192.0.2.1');
  const s = r.stats();
  assert.deepEqual(s.queries, { udp: 2, tcp: 1 });
  assert.equal(s.dropped.oversize, 1);
  assert.deepEqual(s.responses, { NOERROR: 1, NXDOMAIN: 1 });
});

test('rate limit: a source gets its burst, then the rate; every slip-th limited query gets an empty TC reply', () => {
  const clock = new ManualClock();
  const r = responder({ perSecond: 10, burst: 5, slip: 2 }, clock);
  const q = query('puppet.example.com', 'A');
  const outcomes = Array.from({ length: 9 }, () => r.handle(q, 'udp', '198.51.100.7'));
  assert.equal(outcomes.slice(0, 5).filter((o) => o !== undefined && !reply(o).tc).length, 5, 'the burst is answered');
  const limited = outcomes.slice(5);
  assert.deepEqual(limited.map((o) => (o === undefined ? 'drop' : 'slip')), ['drop', 'slip', 'drop', 'slip']);
  for (const o of limited) if (o) assert.ok(reply(o).tc && o.length <= q.length, 'a slip is truncated and no larger than the query');
  assert.ok(r.handle(q, 'udp', '198.51.100.8'), 'another source has its own bucket');
  assert.ok(r.handle(q, 'tcp', '198.51.100.7'), 'TCP is not limited: its source cannot be forged');
  clock.advance(100);
  const after = r.handle(q, 'udp', '198.51.100.7');
  assert.ok(after && !reply(after).tc, '100 ms at 10/s gives one token back');
  assert.equal(r.handle(q, 'udp', '198.51.100.7'), undefined);
  const s = r.stats();
  assert.equal(s.dropped.rateLimited, 3);
  assert.equal(s.slipped, 2);
});

test('the limiter forgets the oldest sources first and keys IPv6 by /64', () => {
  const clock = new ManualClock();
  const limiter = new RateLimiter({ perSecond: 1, burst: 1, slip: 0, maxSources: 100 }, clock);
  assert.equal(limiter.check('2001:db8:0:1::1'), 'pass');
  assert.equal(limiter.check('2001:db8:0:1::2'), 'drop', 'the same /64');
  assert.equal(limiter.check('2001:db8:0:2::1'), 'pass');
  for (let i = 0; i < 150; i++) limiter.check(`192.0.2.${i % 250}`);
  assert.equal(limiter.size, 100);
  assert.equal(limiter.check('2001:db8:0:1::1'), 'pass', 'forgotten, so a fresh bucket');
});

test('names are compressed; a reply too large for the limit drops its answers and sets TC', () => {
  const q = decodeQuery(query('_x-puppet._tcp.example.com', 'SRV'));
  assert.equal(q.kind, 'query');
  if (q.kind !== 'query') return;
  const answers = Array.from({ length: 10 }, (_, i) => ({ name: '_x-puppet._tcp.example.com', ttl: 10, type: 'SRV' as const, priority: 0, weight: 5, port: 8140, target: `server-${i}.example.com` }));
  const base = { id: 1, opcode: 0, rd: true, aa: true, rcode: rcodes.NOERROR, question: q.query.question, authorities: [], additionals: [], edns: undefined };
  const { buf, truncated } = encodeReply({ ...base, answers }, 512);
  assert.equal(truncated, false);
  // Uncompressed, each record would repeat the 28-byte owner and the 13-byte zone suffix.
  assert.ok(buf.length < 12 + 32 + 10 * 32, `compressed size ${buf.length}`);
  const many = encodeReply({ ...base, answers: [...answers, ...answers, ...answers] }, 512);
  assert.ok(many.truncated);
  assert.equal(many.buf.readUInt16BE(6), 0, 'no answers');
  assert.equal(many.buf.readUInt16BE(2) & 0x0200, 0x0200);
});

test('addresses are written as their 4 or 16 bytes', () => {
  assert.equal(addressBytes('192.0.2.1').toString('hex'), 'c0000201');
  assert.equal(addressBytes('2001:db8::12').toString('hex'), '20010db8000000000000000000000012');
  assert.equal(addressBytes('::ffff:192.0.2.1').toString('hex'), '00000000000000000000ffffc0000201');
  assert.equal(addressBytes('::').toString('hex'), '0'.repeat(32));
});
