// CA signing throughput: the same 1,000 CSRs submitted the way agents submit them, to a real
// Puppet Server CA (autosign = true) and to `ringmaster serve` (ca.autosign.all), in one run.
//
//   npm run bench:ca [-- --count 1000] [-- --skip-puppetserver]
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareCsrs, type PreparedCsr } from './lib/csr.ts';
import { runSigning, type SigningRun } from './lib/ca-load.ts';
import { round, summarize } from './lib/stats.ts';
import { startPuppetserver, type Puppetserver } from '../test/helpers/puppetserver.ts';
import { repoRoot, startRingmaster, type Ringmaster } from '../test/helpers/ringmaster.ts';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '50' },
    'max-sockets': { type: 'string', default: '64' },
    'skip-puppetserver': { type: 'boolean', default: false },
  },
});
const count = Number(args.count);
const warmup = Number(args.warmup);
const maxSockets = Number(args['max-sockets']);
const keyBits = 2048;

function packageVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  } catch {
    return 'unknown';
  }
}

type TargetResult = {
  target: string;
  version: string;
  caKeyBits: number;
  submitted: number;
  signed: number;
  errors: number;
  errorSamples: string[];
  wallMs: number;
  certsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  failure?: string;
};

function toResult(target: string, version: string, run: SigningRun): TargetResult {
  const s = summarize(run.latenciesMs);
  return {
    target,
    version,
    caKeyBits: 4096,
    submitted: run.submitted,
    signed: run.signed,
    errors: run.errors,
    errorSamples: run.errorSamples,
    wallMs: round(run.wallMs),
    certsPerSec: round(run.signed / (run.wallMs / 1000)),
    p50Ms: round(s.p50Ms),
    p90Ms: round(s.p90Ms),
    p99Ms: round(s.p99Ms),
    maxMs: round(s.maxMs),
  };
}

function failed(target: string, version: string, err: unknown): TargetResult {
  const nan = Number.NaN;
  return {
    target, version, caKeyBits: 4096, submitted: 0, signed: 0, errors: 0, errorSamples: [], wallMs: nan,
    certsPerSec: nan, p50Ms: nan, p90Ms: nan, p99Ms: nan, maxMs: nan, failure: (err as Error).message.split('\n')[0],
  };
}

/** Warm-up requests (not measured) give the JVM's JIT and Node's lazy paths the same start. */
async function measure(target: string, version: string, port: number, warm: PreparedCsr[], csrs: PreparedCsr[]): Promise<TargetResult> {
  process.stderr.write(`${target}: ${warm.length} warm-up CSRs, then ${csrs.length} measured\n`);
  await runSigning(port, warm, { maxSockets });
  const result = toResult(target, version, await runSigning(port, csrs, { maxSockets }));
  process.stderr.write(`${target}: ${result.signed}/${result.submitted} signed in ${result.wallMs} ms\n`);
  return result;
}

const date = new Date().toISOString();
process.stderr.write(`starting puppetserver and ringmaster; preparing ${count + 2 * warmup} CSRs (${keyBits}-bit keys)\n`);

// Puppet Server takes about 35 s to start: start both front ends first and make the CSRs meanwhile.
// Neither promise may reject unobserved while the other work runs, hence the settled wrappers.
const settle = <T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> => p.then((ok) => ({ ok }), (err: unknown) => ({ err }));
const psStart = args['skip-puppetserver'] ? undefined : settle(startPuppetserver({ autosign: true, startTimeoutMs: 240_000 }));
const rmStart = settle(startRingmaster({ ca: { keyLength: 4096 }, autosign: { all: true } }));

const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}-${i}.bench.test`);
const t0 = Date.now();
const measured = await prepareCsrs(names('node', count), { bits: keyBits });
const warmPs = await prepareCsrs(names('warm-ps', warmup), { bits: keyBits });
const warmRm = await prepareCsrs(names('warm-rm', warmup), { bits: keyBits });
process.stderr.write(`CSRs ready in ${Date.now() - t0} ms\n`);

const results: TargetResult[] = [];
const psVersion = `puppetserver ${packageVersion('puppetserver')}`;
if (psStart) {
  const ps = await psStart;
  if ('ok' in ps) {
    const server: Puppetserver = ps.ok;
    try {
      results.push(await measure('puppetserver', psVersion, server.port, warmPs, measured));
    } catch (err) {
      results.push(failed('puppetserver', psVersion, err));
    } finally {
      // Stopped before ringmaster is measured, so the idle JVM does not share the cores.
      await server.cleanup();
    }
  } else {
    results.push(failed('puppetserver', psVersion, ps.err));
  }
}

const rmVersion = 'ringmaster 0.1.0';
const rmResult = await rmStart;
if ('ok' in rmResult) {
  const rm: Ringmaster = rmResult.ok;
  try {
    results.push(await measure('ringmaster', rmVersion, rm.port, warmRm, measured));
  } catch (err) {
    results.push(failed('ringmaster', rmVersion, err));
  } finally {
    await rm.cleanup();
  }
} else {
  results.push(failed('ringmaster', rmVersion, rmResult.err));
}

const ps = results.find((r) => r.target === 'puppetserver');
const rm = results.find((r) => r.target === 'ringmaster');
const ratio =
  ps && rm && !ps.failure && !rm.failure
    ? {
        throughput: round(rm.certsPerSec / ps.certsPerSec, 2),
        p50: round(rm.p50Ms / ps.p50Ms, 2),
        p99: round(rm.p99Ms / ps.p99Ms, 2),
      }
    : null;

const cpuList = cpus();
const report = {
  benchmark: 'ca-signing',
  date,
  machine: {
    cpuModel: cpuList[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
  },
  params: { count, warmup, keyBits, caKeyBits: 4096, maxSockets, flow: 'PUT certificate_request, then GET certificate (must be 200); latency = PUT start to certificate received', concurrency: 'maxSockets flows, each over a kept-alive socket' },
  results,
  ratio,
};

const fmt = (n: number): string => (Number.isFinite(n) ? String(n) : '—');
const table = [
  `CA signing, ${count} CSRs (${keyBits}-bit keys), ${maxSockets} concurrent PUT+GET flows on keep-alive sockets; ${date}`,
  `machine: ${report.machine.cores} cores (${report.machine.cpuModel}), ${round(report.machine.memoryBytes / 2 ** 30, 1)} GiB`,
  '',
  '| target | certs/s | p50 ms | p99 ms | wall ms | signed | errors |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map((r) =>
    `| ${r.version} | ${fmt(r.certsPerSec)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.wallMs)} | ${r.signed}/${r.submitted || count} | ${r.failure ? `failed: ${r.failure}` : r.errors} |`,
  ),
  '',
  ratio
    ? `ringmaster / puppetserver: throughput ×${ratio.throughput}, p50 ×${ratio.p50}, p99 ×${ratio.p99}`
    : 'ringmaster / puppetserver: not available (a target did not run)',
];
process.stdout.write(`${table.join('\n')}\n`);
for (const r of results) for (const s of r.errorSamples) process.stdout.write(`  ${r.target} error: ${s}\n`);

const outDir = join(repoRoot, 'bench', 'out');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'ca-signing.json'), `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`wrote ${join('bench', 'out', 'ca-signing.json')}\n`);
process.exitCode = results.some((r) => r.failure || r.errors > 0) ? 1 : 0;
