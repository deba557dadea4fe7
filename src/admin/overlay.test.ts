import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, validateMemberOverlay, type ConfigInput, type MemberOverlay } from '../config/schema.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { silentLog } from '../observability/log.ts';
import { emptyOverlay, mergeOverlay, sourceOf, withDrain, withMember, withoutMember } from './overlay.ts';
import { membersFile, RuntimeMembers } from './runtime-members.ts';

// The overlay of run-time member changes on the file's pools: what the gateway runs, and which
// side wins when the file and the run-time changes disagree.

function pools(input: ConfigInput['pools']) {
  const result = validateConfig({ pools: input });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config.pools;
}

const file = pools({
  compilers: { members: [{ name: 'c1', url: 'http://10.0.0.1:8141' }, { name: 'c2', url: 'http://10.0.0.2:8141', drain: true }] },
  staging: { members: [{ name: 's1', url: 'http://10.0.1.1:8141' }] },
});
const body = (url: string, extra: { weight?: number; drain?: boolean } = {}) => ({ url, weight: extra.weight ?? 1, priority: 0, ...(extra.drain !== undefined ? { drain: extra.drain } : {}) });
const names = (p: ReturnType<typeof pools>, pool: string) => p[pool]?.members.map((m) => `${m.name}${m.drain ? ' (drain)' : ''}`);
const code = (c: string) => (err: unknown) => isRingmasterError(err) && err.code === c;

test('an empty overlay leaves the file as it is', () => {
  const merged = mergeOverlay(file, emptyOverlay());
  assert.deepEqual(merged.pools, file);
  assert.deepEqual(merged.dropped, []);
});

test('run-time members are appended to their pool and drains applied to file members', () => {
  let overlay = withMember(file, emptyOverlay(), 'compilers', 'c3', body('http://10.0.0.3:8141', { weight: 3 })).overlay;
  overlay = withDrain(file, overlay, 'compilers', 'c1', true);
  overlay = withDrain(file, overlay, 'compilers', 'c2', false); // the file drains c2; enabled at run time
  const merged = mergeOverlay(file, overlay);
  assert.deepEqual(names(merged.pools, 'compilers'), ['c1 (drain)', 'c2', 'c3']);
  assert.equal(merged.pools.compilers?.members[2]?.weight, 3);
  assert.deepEqual(names(merged.pools, 'staging'), ['s1']);
  assert.deepEqual(merged.dropped, []);
  assert.deepEqual(merged.overlay, overlay, 'nothing was overtaken');
  assert.equal(sourceOf(file, overlay, 'compilers', 'c1'), 'config');
  assert.equal(sourceOf(file, overlay, 'compilers', 'c3'), 'runtime');
  assert.equal(sourceOf(file, overlay, 'compilers', 'nope'), undefined);
  assert.ok(validateMemberOverlay(JSON.parse(JSON.stringify(overlay))).ok, 'what is saved reads back');
});

test('a drain set at run time survives a reload of an unchanged or unrelated file, until enabled', () => {
  const drained = withDrain(file, emptyOverlay(), 'compilers', 'c1', true);
  const edited = pools({
    compilers: { members: [{ name: 'c1', url: 'http://10.0.0.1:8141', weight: 5 }, { name: 'c2', url: 'http://10.0.0.2:8141', drain: true }] },
  });
  assert.deepEqual(names(mergeOverlay(edited, drained).pools, 'compilers'), ['c1 (drain)', 'c2 (drain)']);
  const enabled = withDrain(file, drained, 'compilers', 'c1', false);
  assert.deepEqual(enabled, emptyOverlay(), 'back to what the file says: nothing is kept');
});

test("editing a member's drain in the file replaces the run-time decision", () => {
  const overlay = withDrain(file, emptyOverlay(), 'compilers', 'c2', false);
  const edited = pools({ compilers: { members: [{ name: 'c1', url: 'http://10.0.0.1:8141' }, { name: 'c2', url: 'http://10.0.0.2:8141', drain: false }] } });
  const merged = mergeOverlay(edited, overlay);
  assert.deepEqual(names(merged.pools, 'compilers'), ['c1', 'c2']);
  assert.equal(merged.dropped.length, 1);
  assert.match(merged.dropped[0]?.why ?? '', /changed its drain setting/);
  assert.deepEqual(merged.overlay, emptyOverlay());
});

test("a member the file now defines: the file's entry wins and the run-time one is dropped", () => {
  const overlay = withMember(file, emptyOverlay(), 'compilers', 'c3', body('http://10.0.0.3:8141')).overlay;
  const edited = pools({ compilers: { members: [{ name: 'c1', url: 'http://10.0.0.1:8141' }, { name: 'c3', url: 'http://10.0.0.99:8141' }] } });
  const merged = mergeOverlay(edited, overlay);
  assert.deepEqual(merged.pools.compilers?.members.map((m) => m.url), ['http://10.0.0.1:8141', 'http://10.0.0.99:8141']);
  assert.deepEqual(merged.dropped.map((d) => [d.pool, d.member]), [['compilers', 'c3']]);
  assert.match(merged.dropped[0]?.why ?? '', /file's entry wins/);
  assert.deepEqual(merged.overlay, emptyOverlay());
});

test('everything of a pool the file no longer has is dropped, and members that left the file lose their drain', () => {
  let overlay = withMember(file, emptyOverlay(), 'staging', 's2', body('http://10.0.1.2:8141')).overlay;
  overlay = withDrain(file, overlay, 'compilers', 'c1', true);
  const edited = pools({ compilers: { members: [{ name: 'c2', url: 'http://10.0.0.2:8141', drain: true }] } });
  const merged = mergeOverlay(edited, overlay);
  assert.equal(merged.pools.staging, undefined);
  assert.deepEqual(merged.dropped.map((d) => `${d.pool}/${d.member}`).sort(), ['compilers/c1', 'staging/s2']);
  assert.deepEqual(merged.overlay, emptyOverlay());
});

test('run-time members: replace keeps the drain unless given, drain and enable change their own entry, remove', () => {
  const added = withMember(file, emptyOverlay(), 'compilers', 'c3', body('http://10.0.0.3:8141'));
  assert.equal(added.created, true);
  const drained = withDrain(file, added.overlay, 'compilers', 'c3', true);
  const replaced = withMember(file, drained, 'compilers', 'c3', body('http://10.0.0.30:8141', { weight: 2 }));
  assert.equal(replaced.created, false);
  assert.deepEqual(names(mergeOverlay(file, replaced.overlay).pools, 'compilers'), ['c1', 'c2 (drain)', 'c3 (drain)']);
  const enabledByPut = withMember(file, replaced.overlay, 'compilers', 'c3', body('http://10.0.0.30:8141', { drain: false })).overlay;
  assert.deepEqual(names(mergeOverlay(file, enabledByPut).pools, 'compilers'), ['c1', 'c2 (drain)', 'c3']);
  assert.deepEqual(withoutMember(file, replaced.overlay, 'compilers', 'c3'), emptyOverlay());
});

test('refusals: file members cannot be replaced or removed, unknown pools and members are not found', () => {
  assert.throws(() => withMember(file, emptyOverlay(), 'compilers', 'c1', body('http://10.0.0.9:8141')), code('RM_ADMIN_MEMBER_IN_CONFIG'));
  assert.throws(() => withoutMember(file, emptyOverlay(), 'compilers', 'c1'), code('RM_ADMIN_MEMBER_IN_CONFIG'));
  assert.throws(() => withoutMember(file, emptyOverlay(), 'compilers', 'c9'), code('RM_NOT_FOUND'));
  assert.throws(() => withDrain(file, emptyOverlay(), 'compilers', 'c9', true), code('RM_NOT_FOUND'));
  assert.throws(() => withDrain(file, emptyOverlay(), 'nopool', 'c1', true), code('RM_NOT_FOUND'));
  assert.throws(() => withMember(file, emptyOverlay(), 'nopool', 'c3', body('http://10.0.0.3:8141')), code('RM_NOT_FOUND'));
});

test('members.json: missing is empty, broken is refused with RM_MEMBERS_FILE_INVALID, overtaken entries are saved away', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rm-overlay-'));
  try {
    const empty = await RuntimeMembers.open(dir, silentLog);
    assert.deepEqual(empty.effective({ pools: file, routes: [], defaultRoutes: true }).pools, file);

    await writeFile(membersFile(dir), '{ not json');
    await assert.rejects(RuntimeMembers.open(dir, silentLog), code('RM_MEMBERS_FILE_INVALID'));
    await writeFile(membersFile(dir), JSON.stringify({ version: 1, pools: { compilers: { members: [{ name: 'c3', url: 'ftp://x' }] } } }));
    await assert.rejects(RuntimeMembers.open(dir, silentLog), code('RM_MEMBERS_FILE_INVALID'));

    const saved: MemberOverlay = { version: 1, pools: { compilers: { members: [{ name: 'c1', url: 'http://10.0.0.9:8141', weight: 1, priority: 0, drain: false }], drain: {} } } };
    await writeFile(membersFile(dir), JSON.stringify(saved));
    const members = await RuntimeMembers.open(dir, silentLog);
    assert.deepEqual(members.effective({ pools: file, routes: [], defaultRoutes: true }).pools, file, "the file's c1 wins");
    await members.settled();
    assert.deepEqual(JSON.parse(await readFile(membersFile(dir), 'utf8')), emptyOverlay());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
