import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { silentLog } from '../observability/log.ts';
import { validateConfig, type ConfigInput } from '../config/schema.ts';
import { DnsResponder } from './responder.ts';
import { compileZones, snapshot, type ZoneSnapshot } from './zone.ts';
import { renderZonefiles } from './zonefile.ts';
import { FakeHealth, member, parsedConfig, query, rdata, reply, seedZone } from './testing.ts';
import { rcodes } from './wire.ts';

// Answers built from config and health, read back through the responder's message handling.

const pools: ConfigInput['pools'] = { compilers: { members: [{ name: 'c1', url: 'http://10.0.0.5:8141' }, { name: 'c2', url: 'http://10.0.0.6:8141', weight: 3 }] } };

function setup(zone: object = seedZone, o: { maxUdpSize?: number } = {}) {
  const config = parsedConfig({ pools, dns: { enabled: true, zones: [zone as never], maxUdpSize: o.maxUdpSize ?? 1232 } });
  const health = new FakeHealth();
  health.members.set('compilers', [member('c1', '10.0.0.5'), member('c2', '10.0.0.6', { weight: 3 })]);
  const compiled = compileZones(config.dns, 8140);
  let zones: ZoneSnapshot[] = [];
  const refresh = (): ZoneSnapshot[] => (zones = compiled.map((z) => snapshot(z, health)));
  refresh();
  const responder = new DnsResponder({ ...config.dns, rateLimit: { ...config.dns.rateLimit, perSecond: 0 } }, { clock: new ManualClock(), log: silentLog, zones: () => zones });
  const ask = (name: string, type: Parameters<typeof query>[1], opts: Parameters<typeof query>[2] = {}, transport: 'udp' | 'tcp' = 'udp') =>
    reply(responder.handle(query(name, type, opts), transport, '127.0.0.1'));
  return { health, refresh, responder, ask, zones: () => zones };
}

test("the seeds' example: site A 75/25 with site B as priority-1 fallback; site B prefers its own server", () => {
  const { ask } = setup();
  const a = ask('_x-puppet._tcp.site-a.example.com', 'SRV');
  assert.equal(a.rcodeValue, rcodes.NOERROR);
  assert.ok(a.aa, 'authoritative');
  assert.deepEqual(rdata(a, 'SRV'), ['0 75 8140 server-1.site-a.example.com', '0 25 8140 server-2.site-a.example.com', '1 5 8140 server.site-b.example.com']);
  assert.deepEqual(a.answers?.map((r) => (r as { ttl: number }).ttl), [10, 10, 10], 'short default TTL');
  // Addresses of the targets come along, so the agent needs no second query.
  assert.deepEqual(rdata(a, 'A', 'additionals').sort(), ['192.0.2.11', '192.0.2.12', '192.0.2.21']);
  assert.deepEqual(rdata(a, 'AAAA', 'additionals'), ['2001:db8::12']);
  const b = ask('_x-puppet._tcp.site-b.example.com', 'SRV');
  assert.deepEqual(rdata(b, 'SRV'), ['0 5 8140 server.site-b.example.com', '1 75 8140 server-1.site-a.example.com', '1 25 8140 server-2.site-a.example.com']);
  assert.deepEqual(rdata(ask('_x-puppet-ca._tcp.example.com', 'SRV'), 'SRV'), ['0 5 8140 server-1.site-a.example.com']);
});

test('an unhealthy host leaves the SRV and A answers and comes back when healthy', () => {
  const { ask, health, refresh } = setup();
  health.down.add('server-1.site-a.example.com');
  refresh();
  assert.deepEqual(rdata(ask('_x-puppet._tcp.site-a.example.com', 'SRV'), 'SRV'), ['0 25 8140 server-2.site-a.example.com', '1 5 8140 server.site-b.example.com']);
  assert.deepEqual(rdata(ask('_x-puppet-ca._tcp.example.com', 'SRV'), 'SRV'), ['0 5 8140 server-1.site-a.example.com'], 'the only target stays: an empty answer is worse');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) for (const a of rdata(ask('puppet.example.com', 'A'), 'A')) seen.add(a);
  assert.deepEqual([...seen].sort(), ['192.0.2.12', '192.0.2.21']);
  health.down.clear();
  refresh();
  assert.equal(rdata(ask('_x-puppet._tcp.site-a.example.com', 'SRV'), 'SRV').length, 3);
});

test('A answers rotate: each query starts one address further', () => {
  const { ask } = setup();
  const firsts = Array.from({ length: 3 }, () => rdata(ask('puppet.example.com', 'A'), 'A'));
  assert.equal(firsts[0]?.length, 3);
  assert.deepEqual(new Set(firsts.map((f) => f[0])).size, 3, `three different first addresses: ${JSON.stringify(firsts)}`);
  assert.deepEqual([...(firsts[0] ?? [])].sort(), [...(firsts[1] ?? [])].sort(), 'the same set, another order');
  assert.deepEqual(rdata(ask('puppet.example.com', 'AAAA'), 'AAAA'), ['2001:db8::12']);
});

test('when every target is unhealthy the answer keeps them all, and the snapshot says so', () => {
  const { ask, health, refresh, zones, responder } = setup();
  for (const h of ['server-1.site-a', 'server-2.site-a', 'server.site-b']) health.down.add(`${h}.example.com`);
  refresh();
  assert.equal(rdata(ask('_x-puppet._tcp.site-a.example.com', 'SRV'), 'SRV').length, 3);
  assert.equal(rdata(ask('puppet.example.com', 'A'), 'A').length, 3);
  const fallbacks = zones()[0]?.fallbacks.map((f) => `${f.type} ${f.name}`).sort();
  assert.deepEqual(fallbacks, ['A/AAAA puppet.example.com', 'SRV _x-puppet-ca._tcp.example.com', 'SRV _x-puppet._tcp.site-a.example.com', 'SRV _x-puppet._tcp.site-b.example.com']);
  assert.equal(responder.stats().fallbackAnswers, 2);
});

test('pool targets: one SRV record per healthy member, its tier added to the priority; IP members get a name in the zone', () => {
  const { ask, health, refresh } = setup();
  const srv = ask('_x-puppet._tcp.example.com', 'SRV');
  assert.deepEqual(rdata(srv, 'SRV'), ['0 1 8140 c1.compilers.example.com', '0 3 8140 c2.compilers.example.com']);
  assert.deepEqual(rdata(srv, 'A', 'additionals'), ['10.0.0.5', '10.0.0.6']);
  assert.deepEqual(rdata(ask('c2.compilers.example.com', 'A'), 'A'), ['10.0.0.6']);
  health.members.set('compilers', [member('c1', '10.0.0.5', { healthy: false }), member('c2', '10.0.0.6', { weight: 3, priority: 1 })]);
  refresh();
  assert.deepEqual(rdata(ask('_x-puppet._tcp.example.com', 'SRV'), 'SRV'), ['1 3 8140 c2.compilers.example.com'], 'a draining or unhealthy member leaves');
});

test('SOA and NS at the apex, NXDOMAIN for unknown names, NODATA for names that exist, REFUSED outside', () => {
  const { ask } = setup();
  const soa = ask('example.com', 'SOA');
  assert.equal(soa.answers?.[0]?.type, 'SOA');
  const s = (soa.answers?.[0] as { data: { mname: string; rname: string; serial: number; minimum: number } }).data;
  assert.equal(s.mname, 'ns1.example.com');
  assert.equal(s.rname, 'hostmaster.example.com');
  assert.ok(s.serial > 0);
  const ns = ask('EXAMPLE.com', 'NS');
  // Names compress against the question, so they take its case; DNS names ignore case.
  assert.deepEqual(rdata(ns, 'NS').map((n) => n.toLowerCase()), ['ns1.example.com']);
  assert.deepEqual(rdata(ns, 'A', 'additionals'), ['192.0.2.53']);
  assert.equal(ns.questions?.[0]?.name, 'EXAMPLE.com', 'the question comes back as asked (case kept)');

  const nx = ask('nothing.example.com', 'A');
  assert.equal(nx.rcodeValue, rcodes.NXDOMAIN);
  assert.ok(nx.aa);
  assert.equal(nx.authorities?.[0]?.type, 'SOA', 'negative answers carry the SOA (RFC 2308)');
  assert.equal((nx.authorities?.[0] as { ttl: number }).ttl, 10);
  // site-a.example.com has no records of its own but names below it exist (RFC 8020).
  for (const [name, type] of [['site-a.example.com', 'A'], ['puppet.example.com', 15], ['puppet.example.com', 'SRV'], ['_tcp.example.com', 16]] as const) {
    const r = ask(name, type);
    assert.equal(r.rcodeValue, rcodes.NOERROR, `${name} ${type}`);
    assert.equal(r.answers?.length, 0);
    assert.equal(r.authorities?.[0]?.type, 'SOA');
  }
  const out = ask('www.example.org', 'A');
  assert.equal(out.rcodeValue, rcodes.REFUSED);
  assert.equal(out.aa, false);
  assert.equal(ask('example.com', 'A', { class: 3 }).rcodeValue, rcodes.REFUSED, 'class CH: no zone there');
  assert.equal(ask('example.com', 'AXFR', {}, 'tcp').rcodeValue, rcodes.REFUSED, 'no zone transfer');
  assert.equal(ask('puppet.example.com', 65000).rcodeValue, rcodes.NOERROR, 'an unknown type is NODATA');
});

test('EDNS0: the client size is honoured, answers that do not fit are truncated (TC) over UDP and whole over TCP', () => {
  const hosts: Record<string, { addresses: string[] }> = { ns1: { addresses: ['192.0.2.53'] } };
  const targets = [];
  for (let i = 0; i < 30; i++) {
    hosts[`compiler-${i}.pool`] = { addresses: [`192.0.2.${100 + i}`] };
    targets.push({ host: `compiler-${i}.pool` });
  }
  const zone = { name: 'example.com', ns: ['ns1'], hosts, srv: [{ service: 'x-puppet', targets }] };
  const { ask, responder } = setup(zone, { maxUdpSize: 4096 });
  const plain = ask('_x-puppet._tcp.example.com', 'SRV');
  assert.ok(plain.tc, 'no EDNS0: 512 bytes at most');
  assert.equal(plain.answers?.length, 0);
  assert.equal(plain.questions?.length, 1);
  const small = ask('_x-puppet._tcp.example.com', 'SRV', { udpSize: 1232 });
  assert.equal(small.tc, false, 'compressed, 30 SRV records fit in 1232 bytes');
  assert.equal(small.answers?.length, 30);
  const glue = (small.additionals ?? []).filter((a) => a.type === 'A').length;
  assert.ok(glue > 0 && glue < 30, `glue that does not fit is left out, without TC (${glue} of 30 kept)`);
  const big = ask('_x-puppet._tcp.example.com', 'SRV', { udpSize: 4096 });
  assert.equal(big.answers?.length, 30);
  assert.equal(rdata(big, 'A', 'additionals').length, 30);
  const tcp = ask('_x-puppet._tcp.example.com', 'SRV', {}, 'tcp');
  assert.equal(tcp.tc, false);
  assert.equal(tcp.answers?.length, 30);
  assert.equal(responder.stats().truncated, 1);
});

test('maxUdpSize caps what a client may ask for', () => {
  const hosts: Record<string, { addresses: string[] }> = { ns1: { addresses: ['192.0.2.53'] } };
  const targets = [];
  for (let i = 0; i < 80; i++) {
    hosts[`c${i}`] = { addresses: [`192.0.2.${i + 1}`] };
    targets.push({ host: `c${i}` });
  }
  const { ask } = setup({ name: 'example.com', ns: ['ns1'], hosts, srv: [{ service: 'x-puppet', targets }] }, { maxUdpSize: 512 });
  assert.ok(ask('_x-puppet._tcp.example.com', 'SRV', { udpSize: 4096 }).tc);
});

test('config problems are listed with their paths', () => {
  const r = validateConfig({
    pools: {},
    dns: {
      enabled: true,
      zones: [
        {
          name: 'example.com',
          ns: ['ns1'],
          hosts: { rm1: { addresses: [] }, 'other.org.': {} },
          names: { puppet: { hosts: ['rm2'] }, 'www.example.org.': { pools: ['nope'] } },
          srv: [{ service: 'x-puppet', domain: 'elsewhere.net.', targets: [{ host: 'rm9' }, { pool: 'missing' }] }],
        },
      ],
    },
  });
  assert.equal(r.ok, false);
  const problems = r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
  for (const expected of [
    /dns\.zones\[0\]\.hosts\.rm1: host rm1\.example\.com is in the zone: give its addresses/,
    /dns\.zones\[0\]\.ns\[0\]: name server ns1\.example\.com is in the zone/,
    /dns\.zones\[0\]\.names\.puppet\.hosts\[0\]: no host named rm2\.example\.com/,
    /dns\.zones\[0\]\.names\.www\.example\.org\.: www\.example\.org is not in zone example\.com/,
    /dns\.zones\[0\]\.names\.www\.example\.org\.\.pools\[0\]: no pool named nope/,
    /dns\.zones\[0\]\.srv\[0\]\.domain: elsewhere\.net is not in zone/,
    /dns\.zones\[0\]\.srv\[0\]\.targets\[0\]\.host: no host named rm9\.example\.com/,
    /dns\.zones\[0\]\.srv\[0\]\.targets\[1\]\.pool: no pool named missing/,
  ]) {
    assert.ok(problems.some((p) => expected.test(p)), `${String(expected)} in\n${problems.join('\n')}`);
  }
  const empty = validateConfig({ dns: { enabled: true } });
  assert.ok(!empty.ok && empty.problems.some((p) => p.path === 'dns.zones'), 'enabled without zones');
  const badName = validateConfig({ dns: { zones: [{ name: 'exa mple.com', ns: ['ns.example.net.'] }] } });
  assert.ok(!badName.ok && badName.problems.some((p) => p.path === 'dns.zones[0].name'));
});

test('the zone file lists every target and pool member with the same names, TTL and serial as the answers', () => {
  const config = parsedConfig({ pools, dns: { zones: [seedZone] } });
  const [bind] = renderZonefiles(config);
  const text = bind?.text ?? '';
  const { zones } = setup();
  const serial = zones()[0]?.soa.serial ?? 0;
  assert.match(text, /^\$ORIGIN example\.com\.$/m);
  assert.match(text, /^\$TTL 10$/m);
  assert.match(text, new RegExp(`^example\\.com\\. IN SOA ns1\\.example\\.com\\. hostmaster\\.example\\.com\\. \\( ${serial} 3600 600 604800 10 \\)$`, 'm'));
  assert.match(text, /^_x-puppet\._tcp\.site-a\.example\.com\. IN SRV 0 75 8140 server-1\.site-a\.example\.com\.$/m);
  assert.match(text, /^_x-puppet\._tcp\.site-b\.example\.com\. IN SRV 1 25 8140 server-2\.site-a\.example\.com\.$/m);
  assert.match(text, /^_x-puppet\._tcp\.example\.com\. IN SRV 0 3 8140 c2\.compilers\.example\.com\.$/m);
  assert.match(text, /^c2\.compilers\.example\.com\. IN A 10\.0\.0\.6$/m);
  assert.match(text, /^server-2\.site-a\.example\.com\. IN AAAA 2001:db8::12$/m);
  const [masq] = renderZonefiles(config, 'dnsmasq');
  assert.match(masq?.text ?? '', /^srv-host=_x-puppet\._tcp\.site-a\.example\.com,server-1\.site-a\.example\.com,8140,0,75$/m);
  assert.match(masq?.text ?? '', /^host-record=puppet\.example\.com,192\.0\.2\.11,10$/m);
});
