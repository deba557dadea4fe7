// The machine's own stalls, measured beside a benchmark: a process on one CPU, raised to the
// highest real-time priority, sleeps 1 ms at a time and notes each wake-up that came more than
// `thresholdMs` late. Nothing on that CPU can keep it waiting, so a late wake-up is time the CPU
// itself was not there: the hypervisor ran something else, or the kernel could not be interrupted.
// On the small virtual machines the benchmarks run on this happens several times a second, for up
// to tens of milliseconds, whatever runs on the machine (docs/benchmarks.md). The gateway benchmark
// uses it to show which requests met such a stall (bench/lib/stalls.ts).
//
// Times are on the system's monotonic clock (process.hrtime), which every process shares, so the
// load client's request times and these stalls can be compared.
//
// Protocol (IPC): the parent sends { op: 'start' } and { op: 'stop' }; { op: 'read' } is answered
// with { op: 'stalls', stalls } (start and end milliseconds, flat) noted since the last read.
import { monotonicMs } from './stats.ts';

export type StallMeterCommand = { op: 'start' } | { op: 'stop' } | { op: 'read' };
export type StallMeterReply = { op: 'ready' } | { op: 'stalls'; stalls: number[] };

const periodMs = 1;
const thresholdMs = 0.5;
/** At most this many stalls are kept between reads (a bound, never reached in practice). */
const maxKept = 100_000;
/** How long the meter sleeps in a row before it looks at its messages. */
const sliceMs = 50;

const cell = new Int32Array(new SharedArrayBuffer(4));
let stalls: number[] = [];
let running = false;
/** The measuring loop is alive (it ends at the first slice boundary after a stop). */
let looping = false;

async function measure(): Promise<void> {
  looping = true;
  while (running) {
    const sliceEnd = monotonicMs() + sliceMs;
    for (;;) {
      const expected = monotonicMs() + periodMs;
      // Nothing ever notifies the cell: this is a sleep of exactly `periodMs`.
      Atomics.wait(cell, 0, 0, periodMs);
      const now = monotonicMs();
      if (now - expected > thresholdMs && stalls.length < 2 * maxKept) stalls.push(expected, now);
      if (now >= sliceEnd) break;
    }
    // Messages are read between slices.
    await new Promise((resolve) => setImmediate(resolve));
  }
  looping = false;
}

if (process.send) {
  process.on('message', (m: StallMeterCommand) => {
    if (m.op === 'start') {
      running = true;
      if (!looping) void measure();
    } else if (m.op === 'stop') {
      running = false;
    } else if (m.op === 'read') {
      const out = stalls;
      stalls = [];
      process.send?.({ op: 'stalls', stalls: out } satisfies StallMeterReply);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.send({ op: 'ready' } satisfies StallMeterReply);
}
