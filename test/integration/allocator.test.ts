import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism } from 'node:os';
import { ringmasterBin, startRingmaster } from '../helpers/ringmaster.ts';

// bin/ringmaster runs `serve` on jemalloc when Debian's libjemalloc2 is installed (scripts/test.sh
// installs it), and on the system allocator when RINGMASTER_MALLOC=system; with one CPU (or
// RINGMASTER_GC=single) V8 collects garbage on the main thread; its young generation has a fixed
// 16 MB semi-space unless RINGMASTER_NEW_SPACE_MB says otherwise; allocation-site pretenuring is
// off unless RINGMASTER_PRETENURING=on.

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

test('the young generation has a fixed 16 MB semi-space by default, another size or V8\'s own sizing when told', async () => {
  const [fixed, other, auto] = await Promise.all([startRingmaster(), startRingmaster({ env: { RINGMASTER_NEW_SPACE_MB: '8' } }), startRingmaster({ env: { RINGMASTER_NEW_SPACE_MB: '0' } })]);
  try {
    const argv = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const listening = (logs: string) => {
      const line = logs.split('\n').find((l) => l.includes('"msg":"listening"'));
      assert.ok(line, 'a listening line was logged');
      return JSON.parse(line) as { newSpaceMb: number | string; newSpaceCommittedMb: number };
    };
    assert.ok(argv(fixed.pid).includes('--min-semi-space-size=16') && argv(fixed.pid).includes('--max-semi-space-size=16'));
    assert.ok(argv(other.pid).includes('--min-semi-space-size=8'));
    assert.ok(!argv(auto.pid).some((a) => a.includes('semi-space')));
    // What V8 made of it, as the process reports it: both semi-spaces at the fixed size once
    // start-up has filled them (V8 left to itself grows them to 16 MB each under start-up's
    // allocations too, and later shrinks them again when allocation slows).
    const f = listening(fixed.logs());
    const o = listening(other.logs());
    const a = listening(auto.logs());
    assert.deepEqual([f.newSpaceMb, f.newSpaceCommittedMb], [16, 32]);
    assert.deepEqual([o.newSpaceMb, o.newSpaceCommittedMb], [8, 16]);
    assert.equal(a.newSpaceMb, 'auto');
  } finally {
    await Promise.all([fixed.stop(), other.stop(), auto.stop()]);
  }
});

test('V8 does not create objects straight in the old generation by allocation site, unless RINGMASTER_PRETENURING=on', async () => {
  const [off, on] = await Promise.all([startRingmaster(), startRingmaster({ env: { RINGMASTER_PRETENURING: 'on' } })]);
  try {
    const argv = (pid: number | undefined) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv(off.pid).includes('--no-allocation-site-pretenuring'));
    assert.ok(!argv(on.pid).some((a) => a.includes('pretenuring')));
    assert.match(off.logs(), /"pretenuring":"off"/);
    assert.match(on.logs(), /"pretenuring":"on"/);
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
});

test('bin/ringmaster refuses a value it does not know in its environment, with RM_ENV_INVALID, and starts nothing', () => {
  for (const [name, value] of [['RINGMASTER_MALLOC', 'tcmalloc'], ['RINGMASTER_GC', 'concurrent'], ['RINGMASTER_NEW_SPACE_MB', '16m'], ['RINGMASTER_NEW_SPACE_MB', '2048'], ['RINGMASTER_NEW_SPACE_MB', '-1'], ['RINGMASTER_PRETENURING', 'yes']] as const) {
    const r = spawnSync(ringmasterBin, ['--version'], { env: { ...process.env, [name]: value }, encoding: 'utf8' });
    assert.equal(r.status, 2, `${name}=${value}`);
    assert.match(r.stderr, new RegExp(`RM_ENV_INVALID: ${name} must be .*not '${value}'`));
    assert.equal(r.stdout, '', 'nothing ran');
  }
  const ok = spawnSync(ringmasterBin, ['--version'], { env: { ...process.env, RINGMASTER_NEW_SPACE_MB: '32', RINGMASTER_GC: 'auto', RINGMASTER_MALLOC: 'system' }, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});
