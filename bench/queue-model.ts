// A queueing model of the fleet benchmark's scenarios (a) and (b), without sockets: how low can any
// scheduler bring the catalog p99 on that load, and where do join-the-shortest-queue (what
// `leastconn` approaches), round-robin and random assignment land? Poisson arrivals, each
// compile a log-normal draw scaled by its compiler's speed, FIFO per JRuby. "finish-first" is one
// shared queue that sends each compile where it will finish first (it knows every compiler's
// backlog and speed, which no real scheduler does, so it is a bound).
//
//   node bench/queue-model.ts [--compiles 200000] [--seed 7] [--p99 3000] [--slots 2]
//
// --p99 sets the compile time's own p99 (mean 1000 ms) and --slots the JRubies per compiler (the
// arrival rate follows, to keep (a) at 80%), to see how the gap between the policies depends on
// them.
import { parseArgs } from 'node:util';
import { seededRandom, type Random } from '../src/lib/random.ts';
import { logNormalDraw, logNormalFromMeanP99 } from '../src/sim/distributions.ts';

const { values: args } = parseArgs({ options: { compiles: { type: 'string', default: '200000' }, seed: { type: 'string', default: '7' }, p99: { type: 'string', default: '3000' }, slots: { type: 'string', default: '2' } } });
const compiles = Number(args.compiles);
const slots = Number(args.slots);
const tailMs = Number(args.p99);
if (!Number.isInteger(slots) || slots < 1) throw new Error(`--slots must be a whole number of JRubies (1 or more), not ${args.slots}`);
if (!(tailMs > 1000)) throw new Error(`--p99 must be a compile time in ms above the mean (1000), not ${args.p99}`);
const perSecond = 0.8 * 4 * slots;
const compile = logNormalFromMeanP99(1000, tailMs);

type Policy = 'finish-first' | 'shortest-queue' | 'round-robin' | 'random';

function p50p99(policy: Policy, speeds: number[], slots: number, perSecond: number, random: Random): [number, number] {
  const free = speeds.map(() => Array.from({ length: slots }, () => 0));
  const assigned = speeds.map((): number[] => []);
  const latencies: number[] = [];
  let t = 0;
  let turn = 0;
  const earliest = (c: number): number => free[c]!.indexOf(Math.min(...free[c]!));
  for (let i = 0; i < compiles; i++) {
    t += (-Math.log(1 - random.next()) / perSecond) * 1000;
    const work = logNormalDraw(compile, random);
    let c: number;
    if (policy === 'finish-first') {
      c = speeds.map((s, k) => Math.max(t, Math.min(...free[k]!)) + work * s).reduce((best, v, k, all) => (v < all[best]! ? k : best), 0);
    } else if (policy === 'shortest-queue') {
      const load = assigned.map((a) => a.filter((end) => end > t).length);
      const least = Math.min(...load);
      const ties = load.flatMap((l, k) => (l === least ? [k] : []));
      c = ties[Math.floor(random.next() * ties.length)]!;
    } else if (policy === 'round-robin') {
      c = turn++ % speeds.length;
    } else {
      c = Math.floor(random.next() * speeds.length);
    }
    const slot = earliest(c);
    const end = Math.max(t, free[c]![slot]!) + work * speeds[c]!;
    free[c]![slot] = end;
    assigned[c] = [...assigned[c]!.filter((e) => e > t), end];
    latencies.push(end - t);
  }
  const kept = latencies.slice(compiles / 10).sort((x, y) => x - y);
  return [kept[Math.floor(kept.length / 2)]!, kept[Math.floor(kept.length * 0.99)]!];
}

const scenarios = [
  { id: 'a', title: `4 equal compilers × ${slots} JRubies, ${perSecond} compiles/s (80%)`, speeds: [1, 1, 1, 1] },
  { id: 'b', title: 'one compiler twice as slow, same arrivals (91%)', speeds: [2, 1, 1, 1] },
];
for (const s of scenarios) {
  process.stdout.write(`(${s.id}) ${s.title}\n`);
  const p99s = new Map<Policy, number>();
  for (const policy of ['finish-first', 'shortest-queue', 'round-robin', 'random'] as const) {
    const [p50, p99] = p50p99(policy, s.speeds, slots, perSecond, seededRandom(Number(args.seed)));
    p99s.set(policy, p99);
    process.stdout.write(`  ${policy.padEnd(15)} catalog p50 ${Math.round(p50)} ms, p99 ${Math.round(p99)} ms\n`);
  }
  process.stdout.write(`  finish-first ÷ shortest-queue at p99: ${((p99s.get('finish-first') ?? 0) / (p99s.get('shortest-queue') ?? 1)).toFixed(2)}\n`);
}
