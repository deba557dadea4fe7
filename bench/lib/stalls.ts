// Which requests of a benchmark met a stall of the machine itself (bench/lib/stall-meter.ts), and
// the latency of the others. A request is counted as touched by a stall when its lifetime overlaps
// the stall or the catch-up after it, taken as long as the stall (work that arrived meanwhile is
// still being served): at half load a process needs about that long to drain its backlog.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { forkScript, nextMessage, pinTree, type Forked } from './gateway-procs.ts';
import { summarize, type LatencySummary } from './stats.ts';
import type { StallMeterCommand, StallMeterReply } from './stall-meter.ts';

export type CpuStalls = { cpu: number; count: number; totalMs: number; maxMs: number };

export type StallReport = {
  perCpu: CpuStalls[];
  /** Share of the requests whose lifetime met a stall or its catch-up. */
  touchedShare: number;
  /** Latency of the requests no stall touched. */
  untouched: LatencySummary;
};

/**
 * `spans` holds each request's start and end (monotonic ms, flat pairs); `stalls` each CPU's
 * stalls (start and end, flat pairs) over the same window.
 */
export function analyseStalls(spans: readonly number[], stalls: ReadonlyMap<number, readonly number[]>): StallReport {
  const windows: [number, number][] = [];
  const perCpu: CpuStalls[] = [];
  for (const [cpu, flat] of stalls) {
    let totalMs = 0;
    let maxMs = 0;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const s = flat[i]!;
      const e = flat[i + 1]!;
      totalMs += e - s;
      maxMs = Math.max(maxMs, e - s);
      windows.push([s, e + (e - s)]);
    }
    perCpu.push({ cpu, count: flat.length / 2, totalMs, maxMs });
  }
  windows.sort((a, b) => a[0] - b[0]);
  // Overlapping windows merged, so each request needs one search.
  const merged: [number, number][] = [];
  for (const w of windows) {
    const last = merged.at(-1);
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else merged.push([w[0], w[1]]);
  }
  const kept: number[] = [];
  let touched = 0;
  for (let i = 0; i + 1 < spans.length; i += 2) {
    const start = spans[i]!;
    const end = spans[i + 1]!;
    if (overlaps(merged, start, end)) touched++;
    else kept.push(end - start);
  }
  const total = spans.length / 2;
  return { perCpu, touchedShare: total === 0 ? 0 : touched / total, untouched: summarize(kept) };
}

/** Whether [start, end] meets one of the sorted, disjoint windows. */
function overlaps(windows: readonly [number, number][], start: number, end: number): boolean {
  // The last window that begins before the span ends.
  let lo = 0;
  let hi = windows.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (windows[mid]![0] <= end) {
      at = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return at >= 0 && windows[at]![1] >= start;
}

/** One stall meter per CPU, each pinned to its CPU at the highest real-time priority. */
export class StallMeters {
  #meters: { cpu: number; proc: Forked }[];

  private constructor(meters: { cpu: number; proc: Forked }[]) {
    this.#meters = meters;
  }

  /** `{ unavailable }`, with the reason, when the meters cannot run at real-time priority (not root). */
  static async start(cpus: readonly number[]): Promise<StallMeters | { unavailable: string }> {
    const meters: { cpu: number; proc: Forked }[] = [];
    try {
      for (const cpu of cpus) {
        const proc = forkScript(join(import.meta.dirname, 'stall-meter.ts'));
        meters.push({ cpu, proc });
        await nextMessage<StallMeterReply, true>(proc.child, (m) => (m.op === 'ready' ? true : undefined), 15_000);
        const pid = proc.child.pid ?? -1;
        pinTree(pid, cpu);
        const rt = spawnSync('chrt', ['-f', '-a', '-p', '99', String(pid)], { encoding: 'utf8' });
        if (rt.status !== 0) throw new Error(`chrt could not raise the stall meter to real-time priority: ${(rt.stderr || rt.error?.message || '').trim()}`);
      }
    } catch (err) {
      for (const m of meters) await m.proc.stop();
      return { unavailable: (err as Error).message };
    }
    return new StallMeters(meters);
  }

  /** The meters' process ids, by CPU. */
  get pids(): Map<number, number> {
    return new Map(this.#meters.map((m) => [m.cpu, m.proc.child.pid ?? -1]));
  }

  start(): void {
    for (const m of this.#meters) m.proc.child.send({ op: 'start' } satisfies StallMeterCommand);
  }

  /** Stops measuring and returns each CPU's stalls since the last read. */
  async stop(): Promise<Map<number, number[]>> {
    const out = new Map<number, number[]>();
    for (const m of this.#meters) {
      m.proc.child.send({ op: 'stop' } satisfies StallMeterCommand);
      const answer = nextMessage<StallMeterReply, number[]>(m.proc.child, (r) => (r.op === 'stalls' ? r.stalls : undefined), 15_000);
      m.proc.child.send({ op: 'read' } satisfies StallMeterCommand);
      out.set(m.cpu, await answer);
    }
    return out;
  }

  async close(): Promise<void> {
    for (const m of this.#meters) await m.proc.stop();
  }
}
