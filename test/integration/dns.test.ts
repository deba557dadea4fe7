// The DNS responder of a real `ringmaster serve` process, queried by Debian's `dig` over UDP and
// TCP: SRV, A, SOA, NXDOMAIN and REFUSED; a pool member and a probed host that go down leave the
// SRV answer within one health interval and come back; random packets over real sockets do not
// stop it from answering; and one source is rate limited. `dns zonefile` prints the same zone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { seededRandom } from '../../src/lib/random.ts';
import { encodeQuery, rrType } from '../../src/dns/wire.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { describeRun, pollUntil, runProcess } from '../helpers/puppet.ts';
import { ringmasterCli, startRingmaster, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';

const skip = existsSync('/usr/bin/dig') ? false : 'needs dig (apt-get install bind9-dnsutils)';
const zone = 'example.test';

describe('the DNS responder, queried with dig', { skip, timeout: 180_000 }, () => {
  let rm: Ringmaster | undefined;
  let c1: Backend | undefined;
  let c2: Backend | undefined;
  let peer: Server | undefined;
  let peerUp = true;
  let peerPort = 0;
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');
  const dnsPort = (): number => ringmaster().dnsPort ?? assert.fail('no DNS port logged');

  const dig = async (args: string[]): Promise<string> => {
    const r = await runProcess('dig', ['@127.0.0.1', '-p', String(dnsPort()), '+norecurse', '+time=2', '+tries=1', ...args], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, describeRun(`dig ${args.join(' ')}`, r));
    return r.stdout;
  };
  /** `dig +short`-like lines of the answer section: "priority weight port target" for SRV. */
  const short = async (args: string[]): Promise<string[]> => (await dig(['+short', ...args])).split('\n').filter((l) => l.trim() !== '').sort();
  const status = (out: string): string => /status: (\w+)/.exec(out)?.[1] ?? `no status in ${out}`;

  before(async () => {
    [c1, c2] = await Promise.all([startBackend('c1'), startBackend('c2')]);
    const options: RingmasterOptions = {
      server: { certname: 'rm1.example.test', dnsAltNames: ['rm1.example.test', 'localhost'] },
      pools: { compilers: { members: [{ name: 'c1', url: c1.url }, { name: 'c2', url: c2.url, weight: 3 }], healthCheck: { active: { interval: '1s', timeout: '500ms', fall: 1, rise: 1 } } } },
      dns: {
        enabled: true,
        address: '127.0.0.1',
        port: 0,
        healthCheck: { interval: '1s', timeout: '500ms', rise: 1, fall: 1 },
        rateLimit: { perSecond: 20, burst: 40, slip: 0 },
        zones: [{
          name: zone,
          ns: ['ns1'],
          hosts: { ns1: { addresses: ['127.0.0.1'], check: 'none' }, rm1: { addresses: ['127.0.0.1'], check: 'self' }, rm2: { addresses: ['127.0.0.1'], port: 1 } },
          names: { puppet: { hosts: ['rm1', 'rm2'] } },
          srv: [
            { service: 'x-puppet', targets: [{ host: 'rm1' }, { host: 'rm2' }] },
            { service: 'x-puppet-ca', targets: [{ host: 'rm1' }] },
            { service: 'x-puppet', domain: 'direct', targets: [{ pool: 'compilers' }] },
          ],
        }],
      },
    };
    // rm2 stands for another ringmaster instance: an HTTPS /status/v1/simple with a certificate
    // from ringmaster's CA, probed with verification. Its port is known only once it listens.
    rm = await startRingmaster({
      ...options,
      prepare: async ({ configFile }) => {
        for (const args of [['ca', 'setup'], ['ca', 'generate', 'rm2.example.test']]) {
          const r = await ringmasterCli(args, configFile);
          assert.equal(r.code, 0, describeRun(`ringmaster ${args.join(' ')}`, r));
        }
        const ssl = join(configFile, '..', 'var', 'ssl');
        peer = createHttpsServer({ key: await readFile(join(ssl, 'private_keys', 'rm2.example.test.pem')), cert: await readFile(join(ssl, 'certs', 'rm2.example.test.pem')) }, (req, res) => {
          res.writeHead(peerUp ? 200 : 503).end(peerUp ? 'running' : 'stopping');
        });
        await new Promise<void>((resolve) => peer?.listen(0, '127.0.0.1', resolve));
        peerPort = (peer.address() as { port: number }).port;
        const config = JSON.parse(await readFile(configFile, 'utf8')) as { dns: { zones: { hosts: Record<string, { port?: number }> }[] } };
        config.dns.zones[0]!.hosts.rm2!.port = peerPort;
        await writeFile(configFile, JSON.stringify(config, null, 2));
      },
    });
    await pollUntil('the DNS responder to log its port', () => ringmaster().dnsPort, { timeoutMs: 20_000 });
  });

  after(async () => {
    await rm?.cleanup();
    await Promise.all([c1?.close(), c2?.close(), new Promise<void>((resolve) => (peer ? peer.close(() => resolve()) : resolve()))]);
  });

  it('answers SRV, A and SOA over UDP and TCP, authoritatively, with the configured TTL', async () => {
    const listener = ringmaster().port;
    for (const transport of ['+notcp', '+tcp']) {
      const out = await dig([transport, 'SRV', `_x-puppet._tcp.${zone}`]);
      assert.equal(status(out), 'NOERROR', out);
      assert.match(out, /flags: qr aa;/);
      assert.match(out, new RegExp(`^_x-puppet\\._tcp\\.example\\.test\\.\\s+10\\s+IN\\s+SRV\\s+0 5 ${listener} rm1\\.example\\.test\\.$`, 'm'), out);
      assert.match(out, new RegExp(`SRV\\s+0 5 ${peerPort} rm2\\.example\\.test\\.$`, 'm'), out);
      assert.match(out, /^rm1\.example\.test\.\s+10\s+IN\s+A\s+127\.0\.0\.1$/m, 'the target address comes along');
      assert.match(out, new RegExp(`\\(${transport === '+tcp' ? 'TCP' : 'UDP'}\\)`), out);
    }
    assert.deepEqual(await short(['SRV', `_x-puppet-ca._tcp.${zone}`]), [`0 5 ${listener} rm1.${zone}.`]);
    assert.deepEqual(await short(['A', `puppet.${zone}`]), ['127.0.0.1']);
    const soa = await dig(['+tcp', 'SOA', zone]);
    assert.match(soa, /IN\s+SOA\s+ns1\.example\.test\. hostmaster\.example\.test\. \d+ 3600 600 604800 10/, soa);
    assert.deepEqual(await short(['NS', zone]), [`ns1.${zone}.`]);
  });

  it('NXDOMAIN for an unknown name in the zone, REFUSED for a name outside it', async () => {
    const nx = await dig(['A', `nothing.${zone}`]);
    assert.equal(status(nx), 'NXDOMAIN', nx);
    assert.match(nx, /AUTHORITY SECTION:\n.*SOA/);
    const outside = await dig(['A', 'www.example.org']);
    assert.equal(status(outside), 'REFUSED', outside);
    assert.equal(status(await dig(['+tcp', 'A', 'www.example.org'])), 'REFUSED');
  });

  it("pool members as SRV targets: a member that goes down leaves within one interval and comes back", async () => {
    const srv = (): Promise<string[]> => short(['SRV', `_x-puppet._tcp.direct.${zone}`]);
    assert.deepEqual(await srv(), [`0 1 ${c1?.port} c1.compilers.${zone}.`, `0 3 ${c2?.port} c2.compilers.${zone}.`]);
    c2?.handle((_req, res) => {
      res.writeHead(503).end('down');
    });
    const downAt = Date.now();
    await pollUntil('c2 to leave the SRV answer', async () => ((await srv()).length === 1 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
    // One interval (1 s), plus the probe's timeout (0.5 s) at worst, plus dig's own time.
    assert.ok(Date.now() - downAt < 2500, `left after ${Date.now() - downAt} ms`);
    assert.deepEqual(await srv(), [`0 1 ${c1?.port} c1.compilers.${zone}.`]);
    c2?.handle(undefined);
    await pollUntil('c2 to come back', async () => ((await srv()).length === 2 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
  });

  it('a probed host (another ringmaster, verified TLS) leaves the SRV answer when its status fails, and comes back', async () => {
    const srv = (): Promise<string[]> => short(['SRV', `_x-puppet._tcp.${zone}`]);
    assert.equal((await srv()).length, 2, 'rm2 starts healthy: its certificate verified against the CA');
    peerUp = false;
    const downAt = Date.now();
    await pollUntil('rm2 to leave the SRV answer', async () => ((await srv()).length === 1 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
    assert.ok(Date.now() - downAt < 2500, `left after ${Date.now() - downAt} ms`);
    assert.match((await srv())[0] ?? '', /rm1\.example\.test\.$/);
    peerUp = true;
    await pollUntil('rm2 to come back', async () => ((await srv()).length === 2 ? true : undefined), { timeoutMs: 5_000, intervalMs: 100 });
  });

  it('random packets over UDP and TCP do not stop it; it still answers dig', async () => {
    const r = seededRandom(20260101);
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.2', resolve));
    for (let i = 0; i < 2000; i++) {
      const base = encodeQuery(`_x-puppet._tcp.${zone}`, { id: i, type: rrType.SRV });
      const msg = i % 2 === 0 ? r.bytes(Math.floor(r.next() * 300)) : Buffer.from(base.map((b) => (r.next() < 0.1 ? Math.floor(r.next() * 256) : b)));
      udp.send(msg, dnsPort(), '127.0.0.1');
      if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    udp.close();
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(dnsPort(), '127.0.0.1', () => {
          // A length prefix that promises more than comes, then garbage frames.
          s.end(Buffer.concat([Buffer.from([0xff, 0xff]), r.bytes(100 + i)]));
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    const out = await dig(['SRV', `_x-puppet._tcp.${zone}`]);
    assert.equal(status(out), 'NOERROR', out);
    assert.equal(status(await dig(['+tcp', 'SOA', zone])), 'NOERROR');
  });

  it('one source gets its burst and then the rate, no more', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.3', resolve));
    let answers = 0;
    udp.on('message', () => answers++);
    const q = encodeQuery(`puppet.${zone}`, { type: rrType.A });
    const started = Date.now();
    for (let i = 0; i < 300; i++) udp.send(q, dnsPort(), '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 500));
    udp.close();
    const elapsed = (Date.now() - started) / 1000;
    assert.ok(answers >= 40, `the burst of 40 is answered (${answers})`);
    assert.ok(answers <= 40 + Math.ceil(elapsed * 20) + 2, `then 20/s: ${answers} answers in ${elapsed.toFixed(2)} s`);
  });

  it('`ringmaster dns zonefile` prints the same zone for BIND', async () => {
    const r = await ringmaster().cli(['dns', 'zonefile']);
    assert.equal(r.code, 0, describeRun('ringmaster dns zonefile', r));
    assert.match(r.stdout, /^\$ORIGIN example\.test\.$/m);
    assert.match(r.stdout, new RegExp(`^_x-puppet\\._tcp\\.direct\\.example\\.test\\. IN SRV 0 3 ${c2?.port} c2\\.compilers\\.example\\.test\\.$`, 'm'));
    const serial = /IN\s+SOA\s+\S+ \S+ (\d+)/.exec(await dig(['SOA', zone]))?.[1];
    assert.match(r.stdout, new RegExp(`IN SOA ns1\\.example\\.test\\. hostmaster\\.example\\.test\\. \\( ${serial} `), 'the same serial as the live answers');
    if (existsSync('/usr/bin/named-checkzone')) {
      const file = join(ringmaster().root, 'example.test.zone');
      await writeFile(file, r.stdout);
      const check = await runProcess('named-checkzone', [zone, file], { timeoutMs: 15_000 });
      assert.equal(check.code, 0, describeRun('named-checkzone', check));
    }
  });
});
