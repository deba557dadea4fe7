import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { startRingmaster } from '../helpers/ringmaster.ts';

// bin/ringmaster runs `serve` on jemalloc when Debian's libjemalloc2 is installed (scripts/test.sh
// installs it), and on the system allocator when RINGMASTER_MALLOC=system.

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
