// Tables, ratios to nginx and the issue's two targets for the gateway benchmark.
import type { Measured } from './gateway-measure.ts';
import { round } from './stats.ts';

export type DoorResult = {
  name: string;
  version: string;
  /** Protocol, cipher and key exchange group the probe connection negotiated. */
  tls: string;
  keepAlive?: Measured;
  paced?: Measured;
  /** With stall meters: the paced round whose p99 outside the machine's stalls is the median. */
  pacedOutsideStalls?: Measured;
  connections?: Measured;
  /** Every round of each phase; the figures above are the median round (by req/s, by p99 for paced). */
  rounds?: { keepalive: Measured[]; paced: Measured[]; connections: Measured[] };
  /** Requests on which the backend did not see the identity it should have (see gateway-backend.ts). */
  mismatches: number;
  mismatchSamples: string[];
  failure?: string;
};

export type Machine = { cpuModel: string; cores: number; memoryBytes: number; kernel: string; node: string };
export type ReportInput = {
  date: string;
  machine: Machine;
  params: { durationMs: number; rounds: number; concurrency: number; pacedConcurrency: number; connectionConcurrency: number; pacedRate: { rate: number; from: string } | null; quick: boolean };
  results: DoorResult[];
};

export type Ratio = {
  name: string;
  reqPerSec: number;
  reqPerSecPerCore: number;
  /** The per-core ratio within each round (the doors of one round ran minutes apart, not more). */
  reqPerSecPerCoreByRound: number[];
  connPerSec: number;
  connPerSecPerCore: number;
};
export type Check = { what: string; value: number; target: string; pass: boolean } | { what: string; value: null; target: string; pass: null; why: string };

const fmt = (n: number | undefined, digits = 0): string => (n === undefined || !Number.isFinite(n) ? '—' : digits === 0 ? String(Math.round(n)) : n.toFixed(digits));
const perCore = (m: Measured | undefined): number => (m ? m.perSec / m.doorCores : Number.NaN);
const errorsOf = (r: DoorResult): number => (r.keepAlive?.errors ?? 0) + (r.paced?.errors ?? 0) + (r.connections?.errors ?? 0);

export function renderGatewayReport(input: ReportInput): { text: string; markdown: string; ratios: Ratio[]; checks: Check[] } {
  const { results, params, machine } = input;
  const by = (name: string): DoorResult | undefined => results.find((r) => r.name === name && !r.failure);
  const nginx = by('nginx');
  const direct = by('direct');
  const rm = by('ringmaster');
  const added = (r: DoorResult, p: 'p50Ms' | 'p99Ms'): number => (r.paced && direct?.paced ? r.paced.latency[p] - direct.paced.latency[p] : Number.NaN);
  const outside = (r: DoorResult | undefined) => r?.pacedOutsideStalls?.stalls;
  const addedOutside = (r: DoorResult, p: 'p50Ms' | 'p99Ms'): number => {
    const mine = outside(r);
    const anchor = outside(direct);
    return mine && anchor ? mine.untouched[p] - anchor.untouched[p] : Number.NaN;
  };
  const metered = results.some((r) => outside(r) !== undefined);

  const ratios: Ratio[] = nginx?.keepAlive && nginx.connections
    ? results.filter((r) => !r.failure).map((r) => ({
        name: r.name,
        reqPerSec: round((r.keepAlive?.perSec ?? Number.NaN) / nginx.keepAlive!.perSec, 2),
        reqPerSecPerCore: round(perCore(r.keepAlive) / perCore(nginx.keepAlive), 2),
        reqPerSecPerCoreByRound: (r.rounds?.keepalive ?? []).flatMap((m, i) => {
          const n = nginx.rounds?.keepalive[i];
          return n ? [round(perCore(m) / perCore(n), 2)] : [];
        }),
        connPerSec: round((r.connections?.perSec ?? Number.NaN) / nginx.connections!.perSec, 2),
        connPerSecPerCore: round(perCore(r.connections) / perCore(nginx.connections), 2),
      }))
    : [];

  const rmRatio = ratios.find((r) => r.name === 'ringmaster');
  const checks: Check[] = [
    rmRatio && Number.isFinite(rmRatio.reqPerSecPerCore)
      ? { what: 'ringmaster req/s per front-door core ÷ nginx\'s', value: rmRatio.reqPerSecPerCore, target: '≥ 0.7', pass: rmRatio.reqPerSecPerCore >= 0.7 }
      : { what: 'ringmaster req/s per front-door core ÷ nginx\'s', value: null, target: '≥ 0.7', pass: null, why: 'ringmaster or nginx was not measured' },
    rm?.paced && direct?.paced && params.pacedRate?.from === 'ringmaster'
      ? { what: `ringmaster added p99 at ${params.pacedRate.rate}/s (half its maximum), ms`, value: round(added(rm, 'p99Ms'), 2), target: '< 2', pass: added(rm, 'p99Ms') < 2 }
      : { what: 'ringmaster added p99 at half its maximum, ms', value: null, target: '< 2', pass: null, why: 'ringmaster or the direct anchor was not measured' },
    ...(metered
      ? [
          rm && outside(rm) && outside(direct) && params.pacedRate?.from === 'ringmaster'
            ? { what: `ringmaster added p99 at ${params.pacedRate.rate}/s, requests that met no stall of the machine, ms`, value: round(addedOutside(rm, 'p99Ms'), 2), target: '< 2', pass: addedOutside(rm, 'p99Ms') < 2 }
            : { what: 'ringmaster added p99 outside the machine\'s stalls, ms', value: null, target: '< 2', pass: null, why: 'ringmaster or the direct anchor was not measured at half ringmaster\'s maximum' },
        ] satisfies Check[]
      : []),
  ];

  const failed = results.filter((r) => r.failure);
  const lines = [
    `## Gateway: ringmaster, nginx, a bare Node relay, HAProxy passthrough and the backend reached directly`,
    '',
    `${input.date}; ${machine.cores} cores (${machine.cpuModel}), ${round(machine.memoryBytes / 2 ** 30, 1)} GiB, Linux ${machine.kernel}, Node ${machine.node}${params.quick ? '; QUICK smoke run, not a measurement' : ''}`,
    `${params.durationMs / 1000} s measured per phase after a warm-up, ${params.rounds} round${params.rounds === 1 ? '' : 's'} over all front doors (the median round is shown); keep-alive: ${params.concurrency} requests in flight; new connections: ${params.connectionConcurrency} in flight`,
    '',
    '### Maximum rate, keep-alive (mixed agent requests)',
    '',
    '| front door | req/s | p50 ms | p99 ms | front-door CPU (cores) | req/s per front-door core | backend CPU | client CPU | other CPU | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => {
      const m = r.keepAlive;
      return `| ${r.version} | ${fmt(m?.perSec)} | ${fmt(m?.latency.p50Ms, 2)} | ${fmt(m?.latency.p99Ms, 2)} | ${fmt(m?.doorCores, 2)} | ${fmt(perCore(m))} | ${r.name === 'direct' ? '(same)' : fmt(m?.backendCores, 2)} | ${fmt(m?.clientCores, 2)} | ${fmt(m?.otherCores, 2)} | ${m?.errors ?? '—'} |`;
    }),
    '',
    `### Latency at a fixed rate of ${params.pacedRate ? `${params.pacedRate.rate} req/s (${params.pacedRate.from === '--paced-rate' ? 'set by --paced-rate' : `half of ${params.pacedRate.from}'s maximum`})` : '— (not measured)'}, open loop`,
    '',
    '| front door | achieved req/s | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms | front-door CPU | client send lag p99 ms | other CPU | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => {
      const m = r.paced;
      return `| ${r.version} | ${fmt(m?.perSec)} | ${fmt(m?.latency.p50Ms, 2)} | ${fmt(m?.latency.p90Ms, 2)} | ${fmt(m?.latency.p99Ms, 2)} | ${r.name === 'direct' ? '(anchor)' : fmt(added(r, 'p50Ms'), 2)} | ${r.name === 'direct' ? '(anchor)' : fmt(added(r, 'p99Ms'), 2)} | ${fmt(m?.doorCores, 2)} | ${fmt(m?.sendLag?.p99Ms, 2)} | ${fmt(m?.otherCores, 2)} | ${m?.errors ?? '—'} |`;
    }),
    ...(metered
      ? [
          '',
          '#### The same, without the requests that met a stall of the machine itself',
          '',
          'Stalls: wake-ups of a real-time process on each CPU more than 0.5 ms late (bench/lib/stall-meter.ts), shown as count and total ms per CPU. A request that overlapped a stall or the catch-up after it (as long again) is left out here; the round shown is the median by this p99.',
          '',
          '| front door | stalls CPU 0 | stalls CPU 1 | longest stall ms | requests left out | p50 ms | p99 ms | added p50 ms | added p99 ms |',
          '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ...results.map((r) => {
            const st = outside(r);
            const cpu = (n: number): string => {
              const c = st?.perCpu.find((x) => x.cpu === n);
              return c ? `${c.count} / ${fmt(c.totalMs, 1)}` : '—';
            };
            const longest = st ? Math.max(0, ...st.perCpu.map((c) => c.maxMs)) : Number.NaN;
            return `| ${r.version} | ${cpu(0)} | ${cpu(1)} | ${fmt(longest, 1)} | ${st ? `${fmt(st.touchedShare * 100, 2)} %` : '—'} | ${fmt(st?.untouched.p50Ms, 2)} | ${fmt(st?.untouched.p99Ms, 2)} | ${r.name === 'direct' ? '(anchor)' : fmt(addedOutside(r, 'p50Ms'), 2)} | ${r.name === 'direct' ? '(anchor)' : fmt(addedOutside(r, 'p99Ms'), 2)} |`;
          }),
        ]
      : []),
    '',
    '### New TLS connection per request (full handshake with an agent certificate, GET node)',
    '',
    '| front door | conn/s | p50 ms | p99 ms | front-door CPU | conn/s per front-door core | backend CPU | client CPU | other CPU | errors | TLS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...results.map((r) => {
      const m = r.connections;
      return `| ${r.version} | ${fmt(m?.perSec)} | ${fmt(m?.latency.p50Ms, 2)} | ${fmt(m?.latency.p99Ms, 2)} | ${fmt(m?.doorCores, 2)} | ${fmt(perCore(m))} | ${r.name === 'direct' ? '(same)' : fmt(m?.backendCores, 2)} | ${fmt(m?.clientCores, 2)} | ${fmt(m?.otherCores, 2)} | ${m?.errors ?? '—'} | ${r.tls} |`;
    }),
    '',
    '### Ratios to nginx',
    '',
    ...(ratios.length > 0
      ? [
          '| front door | req/s | req/s per core | req/s per core, each round | conn/s | conn/s per core |',
          '| --- | ---: | ---: | ---: | ---: | ---: |',
          ...ratios.map((r) => `| ${r.name} | ${fmt(r.reqPerSec, 2)} | ${fmt(r.reqPerSecPerCore, 2)} | ${r.reqPerSecPerCoreByRound.map((x) => fmt(x, 2)).join(' / ')} | ${fmt(r.connPerSec, 2)} | ${fmt(r.connPerSecPerCore, 2)} |`),
        ]
      : ['nginx was not measured.']),
    '',
    '### Targets',
    '',
    ...checks.map((c) => `- ${c.what}: ${c.value === null ? `not measured (${c.why})` : `${c.value} (target ${c.target}): ${c.pass ? 'met' : 'NOT met'}`}`),
    ...(results.some((r) => r.mismatches > 0) ? ['', '### Identity mismatches seen by the backend', '', ...results.filter((r) => r.mismatches > 0).map((r) => `- ${r.name}: ${r.mismatches} (${r.mismatchSamples.join('; ')})`)] : []),
    ...(results.some((r) => errorsOf(r) > 0) ? ['', '### Error samples', '', ...results.flatMap((r) => [r.keepAlive, r.paced, r.connections].flatMap((m) => (m?.errorSamples ?? []).map((s) => `- ${r.name}: ${s}`)))] : []),
    ...(failed.length > 0 ? ['', '### Not measured', '', ...failed.map((r) => `- ${r.name}: ${r.failure}`)] : []),
  ];
  const markdown = `${lines.join('\n')}\n`;
  return { text: markdown, markdown, ratios, checks };
}
