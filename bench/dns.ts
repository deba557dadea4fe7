// DNS answers per second: SRV queries for the Puppet service names, in one run, against
// ringmaster's responder, Debian's BIND (authoritative, one worker thread, loaded with
// `ringmaster dns zonefile`) and dnsmasq (the same records as srv-host lines), each server pinned
// to core 0 and the load generator (dnsperf) to core 1, all on loopback.
//
//   npm run bench:dns [-- --duration 10 --rounds 3 --only ringmaster,bind,dnsmasq]     BENCH_QUICK=1 for a smoke run
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm as remove, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeTempDir, pollUntil, runProcess } from '../test/helpers/puppet.ts';
import { freePort } from '../test/helpers/puppetserver.ts';
import { repoRoot, startRingmaster, type Ringmaster } from '../test/helpers/ringmaster.ts';
import { cpuMs, pin, startBind, startDnsmasq, type DnsServer } from './lib/dns-servers.ts';

const quick = process.env.BENCH_QUICK === '1';
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: quick ? '2' : '10' },
    rounds: { type: 'string', default: quick ? '1' : '3' },
    outstanding: { type: 'string', default: '100' },
    only: { type: 'string', default: 'ringmaster,bind,dnsmasq' },
    'skip-install': { type: 'boolean', default: false },
  },
});
const durationS = Number(args.duration);
const rounds = Math.max(1, Number(args.rounds));
const only = new Set(args.only.split(',').map((s) => s.trim()));
const log = (line: string): void => void process.stderr.write(`${line}\n`);

if (!args['skip-install']) {
  execFileSync('bash', ['-c', 'source scripts/lib/setup.sh && install_missing dnsperf=/usr/bin/dnsperf bind9=/usr/sbin/named dnsmasq-base=/usr/sbin/dnsmasq'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
}

const zone = 'example.test';
// The seeds' example (site A 75/25 with site B as fallback, site B preferring its own server),
// a CA record and the generic record: what a fleet with use_srv_records asks for.
const hosts = { ns1: { addresses: ['127.0.0.1'], check: 'none' }, 'server-1.site-a': { addresses: ['192.0.2.11'], check: 'none' }, 'server-2.site-a': { addresses: ['192.0.2.12'], check: 'none' }, 'server.site-b': { addresses: ['192.0.2.21'], check: 'none' } };
const srv = [
  { domain: 'site-a', service: 'x-puppet', targets: [{ host: 'server-1.site-a', weight: 75 }, { host: 'server-2.site-a', weight: 25 }, { host: 'server.site-b', priority: 1, weight: 5 }] },
  { domain: 'site-b', service: 'x-puppet', targets: [{ host: 'server.site-b', weight: 5 }, { host: 'server-1.site-a', priority: 1, weight: 75 }, { host: 'server-2.site-a', priority: 1, weight: 25 }] },
  { service: 'x-puppet', targets: [{ host: 'server-1.site-a' }, { host: 'server-2.site-a' }] },
  { service: 'x-puppet-ca', targets: [{ host: 'server-1.site-a' }] },
];
const queries = [`_x-puppet._tcp.site-a.${zone} SRV`, `_x-puppet._tcp.site-b.${zone} SRV`, `_x-puppet._tcp.${zone} SRV`, `_x-puppet-ca._tcp.${zone} SRV`];

type Measured = { qps: number; lost: number; sent: number; avgLatencyMs: number; serverCores: number };
type Result = { name: string; version: string; rounds: Measured[]; median?: Measured; failure?: string };

function parseDnsperf(out: string): { qps: number; lost: number; sent: number; avgLatencyMs: number } {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  return { qps: num(/Queries per second:\s+([\d.]+)/), sent: num(/Queries sent:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/), avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000 };
}

const date = new Date().toISOString();
const tmp = await makeTempDir('bench-dns');
const servers: DnsServer[] = [];
const results: Result[] = [];
let rm: Ringmaster | undefined;
try {
  const queryFile = join(tmp, 'queries.txt');
  await writeFile(queryFile, `${queries.join('\n')}\n`);
  const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const dnsZone = { name: zone, ns: ['ns1'], hosts, srv };
  // The rate limit is off, as BIND and dnsmasq have none by default: one client sends everything.
  const dns = { enabled: true, address: '127.0.0.1', port: await freePort(), rateLimit: { perSecond: 0 }, zones: [dnsZone] } as const;
  log('starting ringmaster');
  rm = await startRingmaster({ dns: dns as never });
  const ringmaster = rm;
  const rmDnsPort = await pollUntil('the DNS responder', () => ringmaster.dnsPort, { timeoutMs: 20_000 });
  const zonefile = await ringmaster.cli(['dns', 'zonefile']);
  const masq = await ringmaster.cli(['dns', 'zonefile', '--format', 'dnsmasq']);
  if (zonefile.code !== 0 || masq.code !== 0) throw new Error(`ringmaster dns zonefile failed: ${zonefile.stderr}${masq.stderr}`);
  servers.push({ name: 'ringmaster', version: `ringmaster ${version} (node ${process.version})`, port: rmDnsPort, pid: ringmaster.pid ?? -1, logs: () => ringmaster.logs(), stop: () => ringmaster.stop() });
  if (only.has('bind')) servers.push(await startBind(join(tmp, 'bind'), await freePort(), zone, zonefile.stdout));
  if (only.has('dnsmasq')) servers.push(await startDnsmasq(join(tmp, 'dnsmasq'), await freePort(), masq.stdout));

  const live: { server: DnsServer; result: Result }[] = [];
  for (const server of servers.filter((s) => only.has(s.name))) {
    const result: Result = { name: server.name, version: server.version, rounds: [] };
    results.push(result);
    try {
      // The same answer from each: the SRV records of site A, by dig.
      const answer = await pollUntil(`${server.name} to answer`, async () => {
        const r = await runProcess('dig', ['@127.0.0.1', '-p', String(server.port), '+short', '+time=1', '+tries=1', 'SRV', `_x-puppet._tcp.site-a.${zone}`]);
        return r.code === 0 && r.stdout.trim() !== '' ? r.stdout.trim().split('\n').sort().join(' | ') : undefined;
      }, { timeoutMs: 15_000, intervalMs: 200 });
      log(`${server.name}: ${server.version}: ${answer}`);
      pin(server.pid, 0);
      live.push({ server, result });
    } catch (err) {
      result.failure = (err as Error).message.split('\n')[0];
      log(`${server.name}: not measured: ${(err as Error).message}\n${server.logs().slice(-2000)}`);
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const { server, result } of live) {
      const cpu0 = cpuMs(server.pid);
      const t0 = performance.now();
      const r = await runProcess('taskset', ['-c', '1', 'dnsperf', '-s', '127.0.0.1', '-p', String(server.port), '-d', queryFile, '-l', String(durationS), '-c', '1', '-T', '1', '-q', args.outstanding], { timeoutMs: (durationS + 30) * 1000 });
      const seconds = (performance.now() - t0) / 1000;
      const m = { ...parseDnsperf(r.stdout), serverCores: (cpuMs(server.pid) - cpu0) / 1000 / seconds };
      if (r.code !== 0 || Number.isNaN(m.qps)) {
        result.failure = `dnsperf exited ${r.code}: ${r.stderr.slice(0, 300)}`;
        continue;
      }
      result.rounds.push(m);
      log(`${server.name}: round ${round}/${rounds}: ${Math.round(m.qps)} queries/s, lost ${m.lost} of ${m.sent}, average latency ${m.avgLatencyMs.toFixed(3)} ms, server CPU ${m.serverCores.toFixed(2)} cores`);
    }
  }
  for (const r of results) r.median = [...r.rounds].sort((a, b) => a.qps - b.qps)[Math.floor(r.rounds.length / 2)];
} finally {
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  await rm?.cleanup();
  await remove(tmp, { recursive: true, force: true });
}

const machine = { cpuModel: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memoryBytes: totalmem(), kernel: release(), node: process.version };
const rmQps = results.find((r) => r.name === 'ringmaster')?.median?.qps;
const ratios = Object.fromEntries(results.filter((r) => r.median && rmQps).map((r) => [r.name, Number(((rmQps ?? 0) / (r.median?.qps ?? 1)).toFixed(2))]));
const params = { durationS, rounds, outstanding: Number(args.outstanding), queries, load: 'dnsperf, 1 client, 1 thread, pinned to core 1; each server pinned to core 0 (BIND with -n 1)', quick };
const rows = results.map((r) => {
  const m = r.median;
  return m
    ? `| ${r.name} | ${r.version} | ${Math.round(m.qps)} | ${m.lost} / ${m.sent} | ${m.avgLatencyMs.toFixed(3)} | ${m.serverCores.toFixed(2)} | ${ratios[r.name]?.toFixed(2) ?? ''} |`
    : `| ${r.name} | ${r.version} | not measured: ${r.failure ?? 'no round'} | | | | |`;
});
const markdown = [
  `DNS benchmark, ${date}: ${machine.cores} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, Linux ${machine.kernel}, Node ${machine.node}.`,
  `SRV queries (${queries.length} names in turn), ${durationS} s per round, median of ${rounds} round(s), up to ${params.outstanding} queries outstanding. ${params.load}.`,
  '',
  '| server | version | queries/s | lost / sent | avg latency ms | server CPU (cores) | ringmaster ÷ server |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
  '',
].join('\n');
process.stdout.write(`${markdown}\n`);
const outDir = join(repoRoot, 'bench', 'out');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'dns.json'), `${JSON.stringify({ benchmark: 'dns', date, machine, params, results, ratios }, null, 2)}\n`);
await writeFile(join(outDir, 'dns.md'), markdown);
process.stdout.write(`wrote ${join('bench', 'out', 'dns.json')} and ${join('bench', 'out', 'dns.md')}\n`);
process.exitCode = results.some((r) => r.failure !== undefined || !r.median) ? 1 : 0;
