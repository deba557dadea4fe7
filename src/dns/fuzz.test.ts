import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom, type Random } from '../lib/random.ts';
import { silentLog } from '../observability/log.ts';
import { DnsResponder } from './responder.ts';
import { compileZones, snapshot } from './zone.ts';
import { FakeHealth, member, parsedConfig, query, rdata, reply, seedZone } from './testing.ts';
import { decodeMessage, rcodes, rrType } from './wire.ts';

// Random and mutated messages, thousands of them from a fixed seed: the responder never throws,
// every reply it sends is a well-formed DNS message with the query's id, and the valid queries
// mixed in keep their right answers.

const SEED = 0x5eed_d0e5;
const ROUNDS = 20_000;

function fuzzResponder() {
  const config = parsedConfig({
    pools: { compilers: { members: [{ name: 'c1', url: 'http://10.0.0.5:8141' }] } },
    dns: { zones: [seedZone], rateLimit: { perSecond: 0 } },
  });
  const health = new FakeHealth();
  health.members.set('compilers', [member('c1', '10.0.0.5')]);
  const zones = compileZones(config.dns).map((z) => snapshot(z, health));
  return new DnsResponder(config.dns, { clock: new ManualClock(), log: silentLog, zones: () => zones });
}

const names = ['_x-puppet._tcp.site-a.example.com', 'puppet.example.com', 'example.com', 'nothing.example.com', 'other.org', '_x-puppet._tcp.example.com'];
const types = [rrType.A, rrType.AAAA, rrType.SRV, rrType.SOA, rrType.NS, rrType.ANY, rrType.AXFR, rrType.OPT, 0, 99, 65535];
const pick = <T>(r: Random, list: readonly T[]): T => list[Math.floor(r.next() * list.length)]!;
const int = (r: Random, n: number): number => Math.floor(r.next() * n);

/** One message to throw at the responder: random bytes, or a valid query bent in one of several ways. */
function mutant(r: Random): Buffer {
  const kind = int(r, 8);
  if (kind === 0) return r.bytes(int(r, 600));
  const base = query(pick(r, names), pick(r, types), { id: int(r, 65536), udpSize: r.next() < 0.5 ? 512 + int(r, 4000) : undefined, class: r.next() < 0.1 ? int(r, 65536) : 1 });
  const b = Buffer.from(base);
  switch (kind) {
    case 1: // flip a few bytes anywhere
      for (let i = 0, n = 1 + int(r, 6); i < n; i++) b[int(r, b.length)] = int(r, 256);
      return b;
    case 2: // cut short
      return b.subarray(0, int(r, b.length));
    case 3: // garbage after the end
      return Buffer.concat([b, r.bytes(1 + int(r, 64))]);
    case 4: // lying counts
      for (let i = 4; i < 12; i += 2) if (r.next() < 0.5) b.writeUInt16BE(int(r, 65536), i);
      return b;
    case 5: { // a compression pointer somewhere in the name, forward, backward or onto itself
      const at = 12 + int(r, Math.max(1, b.length - 14));
      b[at] = 0xc0 | int(r, 0x40);
      b[at + 1] = int(r, 256);
      return b;
    }
    case 6: // label lengths with the reserved bits
      b[12] = 0x40 | int(r, 0x40);
      return b;
    default: // header flags: QR, opcode, TC, Z, rcode
      b.writeUInt16BE(int(r, 65536), 2);
      return b;
  }
}

test(`${ROUNDS} random and mutated messages: no exception, only well-formed replies, valid queries still answered`, () => {
  const r = seededRandom(SEED);
  const responder = fuzzResponder();
  const started = performance.now();
  let replies = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const msg = mutant(r);
    const transport = r.next() < 0.2 ? 'tcp' : 'udp';
    let out: Buffer | undefined;
    try {
      out = responder.handle(msg, transport, '192.0.2.1');
    } catch (err) {
      assert.fail(`round ${i}: handle threw on ${msg.toString('hex')}: ${(err as Error).stack}`);
    }
    if (out) {
      replies++;
      const m = decodeMessage(out);
      assert.equal(m.id, msg.readUInt16BE(0), `round ${i}: the reply carries the query's id`);
      assert.ok(m.flag_qr, `round ${i}: a response`);
      if (transport === 'udp') assert.ok(out.length <= 4096, `round ${i}: a UDP reply of ${out.length} bytes`);
    }
    if (i % 100 === 0) {
      const ok = reply(responder.handle(query('_x-puppet._tcp.site-a.example.com', 'SRV', { id: i }), 'udp', '192.0.2.1'));
      assert.equal(ok.rcodeValue, rcodes.NOERROR);
      assert.equal(ok.id, i);
      assert.deepEqual(rdata(ok, 'SRV'), ['0 75 8140 server-1.site-a.example.com', '0 25 8140 server-2.site-a.example.com', '1 5 8140 server.site-b.example.com']);
    }
  }
  const ms = performance.now() - started;
  assert.ok(ms < 30_000, `bounded time: ${Math.round(ms)} ms`);
  const s = responder.stats();
  assert.ok(replies > ROUNDS / 4, `most messages got some reply (${replies})`);
  assert.ok((s.responses.FORMERR ?? 0) > 100, `many FORMERR: ${JSON.stringify(s.responses)}`);
  assert.ok(s.dropped.response + s.dropped.short > 100, `many dropped: ${JSON.stringify(s.dropped)}`);
});
