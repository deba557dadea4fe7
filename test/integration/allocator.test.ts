import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { arch, availableParallelism } from 'node:os';
import { repoRoot, ringmasterBin, startRingmaster } from '../helpers/ringmaster.ts';
import { makeTempDir } from '../helpers/puppet.ts';

// bin/ringmaster runs `serve` on jemalloc when Debian's libjemalloc2 is installed (scripts/test.sh
// installs it), and on the system allocator when RINGMASTER_MALLOC=system; with one CPU (or
// RINGMASTER_GC=single) V8 collects garbage on the main thread; its young generation has a fixed
// 16 MB semi-space unless RINGMASTER_NEW_SPACE_MB says otherwise; allocation-site pretenuring is
// off unless RINGMASTER_PRETENURING=on; Node's compile cache keeps the stripped and compiled code
// beside the install (NODE_COMPILE_CACHE elsewhere, NODE_DISABLE_COMPILE_CACHE=1 none).

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

test('the code of ringmaster\'s modules is kept in Node\'s compile cache, written once serving, and read back by the next start', async () => {
  const fresh = await makeTempDir('compile-cache');
  const [beside, chosen, none] = await Promise.all([startRingmaster(), startRingmaster({ env: { NODE_COMPILE_CACHE: fresh } }), startRingmaster({ env: { NODE_DISABLE_COMPILE_CACHE: '1' } })]);
  try {
    const dirOf = (logs: string) => /"compileCache":"([^"]*)"/.exec(logs)?.[1];
    assert.ok(dirOf(beside.logs())?.startsWith(join(repoRoot, 'node_modules', '.cache', 'ringmaster') + '/'), beside.logs());
    assert.ok(dirOf(chosen.logs())?.startsWith(fresh + '/'));
    assert.equal(dirOf(none.logs()), 'off');
    // Written before the process says it is listening, not only when it exits.
    const written = dirOf(chosen.logs())!;
    assert.ok(readdirSync(written).length > 50, `the cache in ${written} holds the modules loaded so far`);
  } finally {
    await Promise.all([beside.stop(), chosen.stop(), none.stop()]);
  }
  // The next start takes every module's stripped code from the cache: Node's type stripper is not run.
  const again = spawnSync(ringmasterBin, ['--version'], { env: { ...process.env, NODE_COMPILE_CACHE: fresh, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' }, encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  const lookups = again.stderr.split('\n').filter((l) => l.includes('retrieving transpile cache for StrippedTypeScript'));
  assert.ok(lookups.some((l) => l.includes('/src/app.ts')), `app.ts is among the modules looked up: ${again.stderr.slice(0, 3000)}`);
  assert.deepEqual(lookups.filter((l) => !l.endsWith('...success')), [], 'no module missed the cache');
  await rm(fresh, { recursive: true, force: true });
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
