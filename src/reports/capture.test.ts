import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { RingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { ReportCapture } from './capture.ts';
import { MemoryReportStore } from './memory-store.ts';
import { fixtureBody } from './store-conformance.ts';
import type { NewReport, ReportStore } from './store.ts';

// The capture side under good, broken and hung stores: capture() never throws and never waits,
// every report lands in exactly one counter, memory stays within the queue limits, and problems
// are logged at most once a minute.

type Line = { level: string; fields: Record<string, unknown>; msg: string };
function recordingLog(lines: Line[]): Log {
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, fields, msg });
  const log = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => log };
  return log as unknown as Log;
}

/** A store whose add does what `add` says; everything else is a memory store. */
function storeWith(add: (r: NewReport) => Promise<number>): ReportStore & { calls: number } {
  const base = new MemoryReportStore();
  const store = Object.assign(Object.create(base) as MemoryReportStore, { calls: 0 });
  store.add = (r: NewReport) => {
    store.calls++;
    return add(r);
  };
  return store;
}

const body = (status: 'changed' | 'unchanged' | 'failed' = 'changed') => fixtureBody(status);

function setup(store: ReportStore, options: Partial<ConstructorParameters<typeof ReportCapture>[0]> = {}) {
  const clock = new ManualClock();
  const lines: Line[] = [];
  const capture = new ReportCapture({ store, clock, log: recordingLog(lines), ...options });
  return { clock, lines, capture, warns: () => lines.filter((l) => l.level === 'warn') };
}

test('queued reports are stored with the compiler noted for their node', async () => {
  const store = new MemoryReportStore();
  const { capture, clock } = setup(store);
  capture.noteCatalog('web01.example.com', 'compile03');
  assert.equal(capture.capture({ certname: 'web01.example.com', body: body(), receivedAt: clock.now() }), 'queued');
  assert.equal(capture.capture({ certname: 'db01.example.com', body: body('failed'), receivedAt: clock.now(), compiler: 'compile01' }), 'queued');
  assert.equal(capture.queued, 2);
  await capture.idle();
  assert.deepEqual([capture.captured, capture.failed, capture.dropped, capture.invalid, capture.queued, capture.queuedBytes], [2, 0, 0, 0, 0, 0]);
  const stored = (await store.list()).items;
  assert.deepEqual(stored.map((r) => [r.node, r.compiler, r.receivedAt]), [['db01.example.com', 'compile01', clock.now()], ['web01.example.com', 'compile03', clock.now()]]);
});

test('a body that is not a report is counted invalid and never reaches the store', async () => {
  const store = storeWith(() => Promise.resolve(1));
  const { capture, warns } = setup(store);
  capture.capture({ certname: 'a', body: Buffer.from('<html>'), receivedAt: 0 });
  await capture.idle();
  assert.deepEqual([capture.invalid, capture.captured, store.calls], [1, 0, 0]);
  assert.equal(warns()[0]?.fields.code, 'RM_REPORT_INVALID');
});

test('a store that throws or rejects: every report counted failed, capture() neither throws nor waits; logged once a minute', async () => {
  let mode: 'throw' | 'reject' = 'throw';
  const store = storeWith(() => {
    if (mode === 'throw') throw new Error('disk on fire');
    return Promise.reject(new RingmasterError('RM_REPORTS_STORE', 'reports store: database or disk is full'));
  });
  const { capture, clock, warns } = setup(store);
  for (let i = 0; i < 20; i++) assert.equal(capture.capture({ certname: `n${i}`, body: body(), receivedAt: 0 }), 'queued');
  await capture.idle();
  mode = 'reject';
  for (let i = 0; i < 20; i++) capture.capture({ certname: `n${i}`, body: body(), receivedAt: 0 });
  await capture.idle();
  assert.deepEqual([capture.failed, capture.captured, capture.dropped], [40, 0, 0]);
  assert.equal(warns().length, 1, 'one line for the first minute');
  clock.advance(60_000);
  capture.capture({ certname: 'late', body: body(), receivedAt: 0 });
  await capture.idle();
  assert.equal(warns().length, 2);
  assert.deepEqual([warns()[1]?.fields.code, warns()[1]?.fields.suppressedSinceLastLog, warns()[1]?.fields.failed], ['RM_REPORTS_STORE', 39, 41]);
});

test('a store that never answers: at most maxQueue reports are held, the rest dropped; memory stays bounded', async () => {
  const store = storeWith(() => new Promise<number>(() => undefined));
  const { capture } = setup(store, { maxQueue: 10, concurrency: 2 });
  const size = body().length;
  const outcomes = Array.from({ length: 100 }, (_, i) => capture.capture({ certname: `n${i}`, body: body(), receivedAt: 0 }));
  assert.deepEqual([outcomes.filter((o) => o === 'queued').length, capture.dropped], [10, 90]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(store.calls, 2, 'only `concurrency` adds are outstanding');
  assert.deepEqual([capture.queued, capture.queuedBytes], [10, 10 * size]);
  for (let i = 0; i < 50; i++) capture.capture({ certname: 'more', body: body(), receivedAt: 0 });
  assert.deepEqual([capture.queued, capture.dropped, store.calls], [10, 140, 2]);
});

test('maxQueueBytes drops a report that would pass it; close() gives up at its deadline and drops what comes after', async () => {
  let release: () => void = () => undefined;
  const store = storeWith(() => new Promise<number>((resolve) => { release = () => resolve(1); }));
  const { capture, clock } = setup(store, { maxQueueBytes: body().length * 2 + 10, concurrency: 1 });
  assert.equal(capture.capture({ certname: 'a', body: body(), receivedAt: 0 }), 'queued');
  assert.equal(capture.capture({ certname: 'b', body: body(), receivedAt: 0 }), 'queued');
  assert.equal(capture.capture({ certname: 'c', body: body(), receivedAt: 0 }), 'dropped');
  assert.equal(capture.capture({ certname: 'd', body: Buffer.alloc(5), receivedAt: 0 }), 'queued', 'a small one still fits');
  const closed = capture.close(1000);
  assert.equal(capture.capture({ certname: 'e', body: Buffer.alloc(5), receivedAt: 0 }), 'dropped');
  clock.advance(1000);
  await closed;
  assert.equal(capture.queued, 3, 'the hung add is still outstanding; close did not wait for it');
  release();
});

test('the noted compiler is forgotten after its age, not given to a report of another run or from a cached catalog', async () => {
  const store = new MemoryReportStore();
  const { capture, clock } = setup(store, { catalogMemory: { maxAgeMs: 3600_000, maxNodes: 2 } });
  const changed = JSON.parse(body().toString()) as Record<string, unknown>;
  const withUuid = (uuid: string, cached = 'not_used') => Buffer.from(JSON.stringify({ ...changed, transaction_uuid: uuid, cached_catalog_status: cached }));

  capture.noteCatalog('same', 'c1', 'uuid-1');
  capture.capture({ certname: 'same', body: withUuid('uuid-1'), receivedAt: 1 });
  capture.noteCatalog('other', 'c1', 'uuid-1');
  capture.capture({ certname: 'other', body: withUuid('uuid-2'), receivedAt: 2 });
  capture.noteCatalog('cached', 'c2');
  capture.capture({ certname: 'cached', body: withUuid('uuid-3', 'on_failure'), receivedAt: 3 });
  capture.noteCatalog('stale', 'c2');
  clock.advance(3600_001);
  capture.capture({ certname: 'stale', body: body(), receivedAt: 4 });
  capture.noteCatalog('x', 'c3');
  capture.noteCatalog('y', 'c3');
  capture.noteCatalog('z', 'c3');
  capture.capture({ certname: 'x', body: body(), receivedAt: 5 });
  capture.capture({ certname: 'z', body: body(), receivedAt: 6 });
  await capture.idle();
  const byNode = Object.fromEntries((await store.list()).items.map((r) => [r.node, r.compiler]));
  assert.deepEqual(byNode, { same: 'c1', other: null, cached: null, stale: null, x: null, z: 'c3' });
});
