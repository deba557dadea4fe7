// Report ingestion: agents PUT realistic reports (a few hundred resources) through ringmaster to
// the scripted compiler. Two ringmasters in one run, on the same backend: one capturing every
// report into its store while forwarding it, one forwarding alone (reports.enabled: false).
//
//   npm run bench:reports [-- --duration 15 --rate 56 --concurrency 16 --resources 300]
//
// Phases: paced at --rate reports/s (56/s is 100,000 agents on a 30-minute interval), for the
// latency the store adds to the agent's request; then as fast as --concurrency clients go, for
// the reports stored per second (counted in the store once capture has caught up).
import { readFile, rm as remove, mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BackendReply } from './lib/gateway-backend.ts';
import { forkScript, nextMessage } from './lib/gateway-procs.ts';
import { startBenchRingmaster, type BenchRingmaster } from './lib/bench-setup.ts';
import { makeTempDir } from '../test/helpers/puppet.ts';
import { repoRoot } from '../test/helpers/ringmaster.ts';
import { SqliteReportStore } from '../src/reports/sqlite-store.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '15' },
    rate: { type: 'string', default: '56' },
    concurrency: { type: 'string', default: '16' },
    resources: { type: 'string', default: '300' },
    agents: { type: 'string', default: '16' },
  },
});
const durationMs = Number(args.duration) * 1000;
const rate = Number(args.rate);
const concurrency = Number(args.concurrency);
const resources = Number(args.resources);
const agentCount = Number(args.agents);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** A report of `n` resources grown from a real Puppet report, for `certname`. */
async function reportBody(certname: string, n: number): Promise<Buffer> {
  const base = JSON.parse(await readFile(join(repoRoot, 'test', 'fixtures', 'reports', 'changed.json'), 'utf8')) as Record<string, unknown> & { resource_statuses: Record<string, Record<string, unknown>>; logs: unknown[] };
  const template = Object.values(base.resource_statuses)[0]!;
  const statuses: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const title = `/etc/app/conf.d/file-${i}.conf`;
    statuses[`File[${title}]`] = { ...template, title, resource: `File[${title}]`, resource_type: 'File', line: 10 + i, changed: i % 10 === 0, events: i % 10 === 0 ? template.events : [] };
  }
  return Buffer.from(JSON.stringify({ ...base, host: certname, resource_statuses: statuses, logs: Array.from({ length: Math.ceil(n / 10) }, () => base.logs[0]) }));
}

type Phase = { done: number; errors: number; latencies: number[]; elapsedMs: number };

function put(agent: Agent, port: number, ca: string, certname: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: `/puppet/v3/report/${certname}?environment=production`, ca, servername: 'localhost', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function phase(rm: BenchRingmaster, bodies: Buffer[], o: { paced: boolean }): Promise<Phase> {
  const agents = rm.identities.map((id) => new Agent({ keepAlive: true, cert: id.cert, key: id.key, ca: rm.ca, maxSockets: 4 }));
  const names = rm.identities.map((_, i) => `agent-${i}.bench.test`);
  const result: Phase = { done: 0, errors: 0, latencies: [], elapsedMs: 0 };
  const start = performance.now();
  const end = start + durationMs;
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const k = i % agents.length;
    const t0 = performance.now();
    try {
      const status = await put(agents[k]!, rm.ringmaster.port, rm.ca, names[k]!, bodies[k]!);
      if (status === 200) result.done++;
      else result.errors++;
    } catch {
      result.errors++;
    }
    result.latencies.push(performance.now() - t0);
  };
  if (o.paced) {
    const inflight = new Set<Promise<void>>();
    for (let i = 0; performance.now() < end; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = one(i).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await one(next++);
    }));
  }
  result.elapsedMs = performance.now() - start;
  for (const a of agents) a.destroy();
  return result;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

const tmp = await makeTempDir('bench-reports');
const backend = forkScript(join(import.meta.dirname, 'lib', 'gateway-backend.ts'));
const doors: { name: string; rm: BenchRingmaster }[] = [];
const rows: string[] = [];
try {
  const httpPort = await nextMessage<BackendReply, number>(backend.child, (m) => (m.op === 'listening' ? m.httpPort : undefined), 15_000);
  await Promise.all(['a', 'b'].map((d) => mkdir(join(tmp, d))));
  doors.push({ name: 'capture + forward', rm: await startBenchRingmaster(join(tmp, 'a'), httpPort, { agents: agentCount, config: { reports: { enabled: true, forward: 'route' } } }) });
  doors.push({ name: 'forward alone', rm: await startBenchRingmaster(join(tmp, 'b'), httpPort, { agents: agentCount, config: { reports: { enabled: false } } }) });
  const bodies = await Promise.all(Array.from({ length: agentCount }, (_, i) => reportBody(`agent-${i}.bench.test`, resources)));
  const size = bodies[0]!.length;
  log(`report body: ${resources} resources, ${(size / 1024).toFixed(0)} KiB`);
  const paced: Record<string, Phase> = {};
  let sentToA = 0;
  for (const round of [1, 2]) {
    for (const d of doors) {
      const p = await phase(d.rm, bodies, { paced: true });
      log(`${d.name}: round ${round}, paced ${rate}/s: ${p.done} ok, ${p.errors} errors, p50 ${pct(p.latencies, 50).toFixed(2)} ms, p99 ${pct(p.latencies, 99).toFixed(2)} ms`);
      if (round === 2) paced[d.name] = p;
      if (d === doors[0]) sentToA += p.done;
    }
  }
  const a = doors[0]!;
  // Reports stored per second: counted in the store (read-only, as the CLI reads it) before and
  // after the closed loop, once capture has caught up.
  const store = await SqliteReportStore.openIn(a.rm.ringmaster.stateDir, { readOnly: true });
  const count = async (): Promise<number> => {
    const s = await store.stats({ since: Date.now() - 3_600_000, until: Date.now() + 1000, bucketMs: 3_600_000 });
    return s.window.changed + s.window.unchanged + s.window.failed;
  };
  const settle = async (atLeast: number): Promise<{ n: number; lastChangeMs: number }> => {
    const t = performance.now();
    let n = await count();
    let changedAt = performance.now();
    // Until every report is in, or nothing more arrives for 2 s (the rest was dropped, and counted).
    while (n < atLeast && performance.now() - changedAt < 2000 && performance.now() - t < 120_000) {
      await new Promise((r) => setTimeout(r, 100));
      const m = await count();
      if (m !== n) changedAt = performance.now();
      n = m;
    }
    return { n, lastChangeMs: changedAt - t };
  };
  const before = (await settle(sentToA)).n;
  const max = await phase(a.rm, bodies, { paced: false });
  sentToA += max.done;
  const settled = await settle(sentToA);
  const stored = settled.n;
  const catchUpMs = settled.lastChangeMs;
  await store.close();
  const storedRate = (stored - before) / ((max.elapsedMs + catchUpMs) / 1000);
  log(`capture + forward: closed loop, ${concurrency} clients: ${max.done} ok, ${max.errors} errors in ${(max.elapsedMs / 1000).toFixed(1)} s; ${stored - before} stored, caught up ${(catchUpMs / 1000).toFixed(1)} s after the load; ${stored} of ${sentToA} reports answered in all are in the store`);

  const ca = paced['capture + forward']!;
  const fw = paced['forward alone']!;
  const date = new Date().toISOString();
  rows.push(
    `## Report ingestion (${date.slice(0, 10)})`,
    '',
    `Machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB. Command: \`npm run bench:reports -- --duration ${args.duration} --rate ${rate} --concurrency ${concurrency} --resources ${resources}\`.`,
    `Reports of ${resources} resources (${(size / 1024).toFixed(0)} KiB JSON) PUT over kept-alive mutual-TLS connections by ${agentCount} agents, through ringmaster to the scripted compiler.`,
    '',
    `| ringmaster | paced ${rate}/s: p50 ms | p99 ms | errors |`,
    '| --- | ---: | ---: | ---: |',
    `| capture + forward | ${pct(ca.latencies, 50).toFixed(2)} | ${pct(ca.latencies, 99).toFixed(2)} | ${ca.errors} |`,
    `| forward alone | ${pct(fw.latencies, 50).toFixed(2)} | ${pct(fw.latencies, 99).toFixed(2)} | ${fw.errors} |`,
    `| added by the store | ${(pct(ca.latencies, 50) - pct(fw.latencies, 50)).toFixed(2)} | ${(pct(ca.latencies, 99) - pct(fw.latencies, 99)).toFixed(2)} | |`,
    '',
    `Closed loop, ${concurrency} clients, ${(max.elapsedMs / 1000).toFixed(0)} s: ${(max.done / (max.elapsedMs / 1000)).toFixed(0)} reports/s answered (${max.errors} errors); ${storedRate.toFixed(0)} reports/s stored, counting the ${(catchUpMs / 1000).toFixed(1)} s the store took to catch up after the load; ${stored} of the ${sentToA} reports answered in the whole run are in the store (the rest were over the capture queue's limits: dropped and counted, the agents answered all the same).`,
    '',
  );
  process.stdout.write(`${rows.join('\n')}\n`);
  await mkdir(join(repoRoot, 'bench', 'out'), { recursive: true });
  await writeFile(join(repoRoot, 'bench', 'out', 'reports.md'), `${rows.join('\n')}\n`);
} finally {
  for (const d of doors) await d.rm.ringmaster.cleanup();
  await backend.stop();
  await remove(tmp, { recursive: true, force: true });
}
