import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism } from 'node:os';
import { startRingmaster } from '../helpers/ringmaster.ts';

// bin/ringmaster runs `serve` on jemalloc when Debian's libjemalloc2 is installed (scripts/test.sh
// installs it), and on the system allocator when RINGMASTER_MALLOC=system; with one CPU (or
// RINGMASTER_GC=single) V8 collects garbage on the main thread.

const multiarch = arch() === 'arm64' ? 'aarch64' : 'x86_64';
const jemalloc = `/usr/lib/${multiarch}-linux-gnu/libjemalloc.so.2`;

test('ringmaster runs on jemalloc when it is installed, and on the system allocator when told to', async () => {
  assert.ok(existsSync(jemalloc), `${jemalloc} is installed by scripts/test.sh`);
  const [preloaded, system] = await Promise.all([startRingmaster(), startRingmaster({ env: { RINGMASTER_MALLOC: 'system' } })]);
  try {
    const mapped = (pid: number | undefined) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libjemalloc.so');
    assert.equal(mapped(preloaded.pid), true, 'jemalloc is mapped into the default process');
    assert.equal(mapped(system.pid), false, 'RINGMASTER_MALLOC=system leaves it out');
    assert.match(preloaded.logs(), /"allocator":"jemalloc"/);
    assert.match(system.logs(), /"allocator":"system"/);
  } finally {
    await Promise.all([preloaded.stop(), system.stop()]);
  }
});

test('the garbage collector works on the main thread with one CPU or RINGMASTER_GC=single, with helper threads otherwise', async () => {
  const [single, parallel] = await Promise.all([startRingmaster({ env: { RINGMASTER_GC: 'single' } }), startRingmaster({ env: { RINGMASTER_GC: 'parallel' } })]);
  try {
    const argv = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv(single.pid).includes('--single-threaded-gc'));
    assert.ok(!argv(parallel.pid).includes('--single-threaded-gc'));
    assert.match(single.logs(), /"gc":"single-threaded"/);
    assert.match(parallel.logs(), /"gc":"parallel"/);
  } finally {
    await Promise.all([single.stop(), parallel.stop()]);
  }
  // Left to itself, bin/ringmaster counts the CPUs it may run on: one under `taskset -c 0`.
  const one = await startRingmaster({ cpus: '0' });
  try {
    assert.match(one.logs(), /"gc":"single-threaded"/);
  } finally {
    await one.stop();
  }
  if (availableParallelism() > 1) {
    const all = await startRingmaster();
    try {
      assert.match(all.logs(), /"gc":"parallel"/);
    } finally {
      await all.stop();
    }
  }
});
