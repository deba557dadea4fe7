import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isRingmasterError } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import { parseReport, type ReportStatus } from './parse.ts';
import type { NewReport, ReportStore } from './store.ts';

// The behaviour every ReportStore implementation must have, run by each implementation's test
// file with its own factory. Bodies are real Puppet 7 reports (test/fixtures/reports/).

export type StoreFactory = (t: TestContext) => Promise<ReportStore>;

const fixtureDir = new URL('../../test/fixtures/reports/', import.meta.url);
export const fixtureBody = (status: ReportStatus): Buffer => readFileSync(new URL(`${status}.json`, fixtureDir));

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const minute = 60_000;

export function newReport(p: { node: string; status?: ReportStatus; receivedAt?: number; compiler?: string | null; environment?: string }): NewReport {
  const body = fixtureBody(p.status ?? 'unchanged');
  const report = parseReport(body, { certname: p.node });
  return { report: { ...report, environment: p.environment ?? report.environment }, receivedAt: p.receivedAt ?? t0, compiler: p.compiler ?? null, body };
}

const fails = (code: ErrorCode) => (err: unknown) => isRingmasterError(err, code);

export function reportStoreConformance(name: string, factory: StoreFactory): void {
  describe(`ReportStore conformance: ${name}`, () => {
    test('add then get returns the summary, the failed resources and the body byte for byte', async (t) => {
      const store = await factory(t);
      const input = newReport({ node: 'db01.example.com', status: 'failed', receivedAt: t0 + 5, compiler: 'compile02' });
      const id = await store.add(input);
      const got = await store.get(id);
      assert.ok(got);
      assert.equal(got.id, id);
      assert.deepEqual(got.body, input.body);
      assert.equal(got.bodyBytes, input.body.length);
      assert.deepEqual(
        [got.node, got.status, got.environment, got.receivedAt, got.compiler, got.transactionUuid, got.puppetVersion],
        ['db01.example.com', 'failed', 'production', t0 + 5, 'compile02', input.report.transactionUuid, '7.23.0'],
      );
      assert.deepEqual(got.resources, input.report.resources);
      assert.deepEqual(got.timings, input.report.timings);
      assert.deepEqual(got.failedResources, input.report.failedResources);
      assert.equal(got.failedResources.length, 2);
      assert.equal(await store.get(id + 1000), undefined);
    });

    test('ids grow and are never reused, even after pruning', async (t) => {
      const store = await factory(t);
      const a = await store.add(newReport({ node: 'a' }));
      const b = await store.add(newReport({ node: 'b' }));
      assert.ok(b > a);
      await store.prune({ maxCount: 0, now: t0 });
      const c = await store.add(newReport({ node: 'c' }));
      assert.ok(c > b);
    });

    test('concurrent adds are all stored with distinct ids', async (t) => {
      const store = await factory(t);
      const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => store.add(newReport({ node: `n${i % 7}`, receivedAt: t0 + i }))));
      assert.equal(new Set(ids).size, 300);
      const all = await store.list({ limit: 1000 });
      assert.equal(all.items.length, 300);
    });

    test('list is newest first, filters, and pages with a cursor without gaps or repeats', async (t) => {
      const store = await factory(t);
      const statuses: ReportStatus[] = ['changed', 'unchanged', 'failed'];
      for (let i = 0; i < 12; i++) {
        await store.add(newReport({ node: `web${i % 3}`, status: statuses[i % 3], receivedAt: t0 + i * minute, environment: i < 6 ? 'production' : 'staging' }));
      }
      const all = await store.list({ limit: 100 });
      assert.equal(all.items.length, 12);
      assert.equal(all.next, null);
      assert.deepEqual(all.items.map((r) => r.receivedAt), Array.from({ length: 12 }, (_, i) => t0 + (11 - i) * minute));

      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.list({ limit: 5, cursor });
        seen.push(...page.items.map((r) => r.id));
        cursor = page.next ?? undefined;
        pages++;
      } while (cursor !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(seen, all.items.map((r) => r.id));

      assert.deepEqual((await store.list({ node: 'web1' })).items.map((r) => r.node), ['web1', 'web1', 'web1', 'web1']);
      assert.ok((await store.list({ status: 'failed' })).items.every((r) => r.status === 'failed'));
      assert.equal((await store.list({ status: 'failed' })).items.length, 4);
      assert.equal((await store.list({ environment: 'staging' })).items.length, 6);
      const window = await store.list({ since: t0 + 3 * minute, until: t0 + 6 * minute });
      assert.deepEqual(window.items.map((r) => r.receivedAt), [t0 + 5 * minute, t0 + 4 * minute, t0 + 3 * minute]);
      const combined = await store.list({ node: 'web2', status: 'failed', since: t0 + 6 * minute });
      assert.deepEqual(combined.items.map((r) => r.receivedAt), [t0 + 11 * minute, t0 + 8 * minute]);
      assert.deepEqual((await store.list({ node: 'nobody' })).items, []);
    });

    test('list refuses a bad limit, cursor or status with RM_REPORTS_QUERY_INVALID', async (t) => {
      const store = await factory(t);
      await assert.rejects(store.list({ limit: 0 }), fails('RM_REPORTS_QUERY_INVALID'));
      await assert.rejects(store.list({ limit: 100_000 }), fails('RM_REPORTS_QUERY_INVALID'));
      await assert.rejects(store.list({ cursor: 'abc' }), fails('RM_REPORTS_QUERY_INVALID'));
      await assert.rejects(store.list({ status: 'broken' as ReportStatus }), fails('RM_REPORTS_QUERY_INVALID'));
    });

    test('nodes gives each node its last report and its runs by status, filtered by the last status, paged by name', async (t) => {
      const store = await factory(t);
      await store.add(newReport({ node: 'b', status: 'failed', receivedAt: t0 }));
      await store.add(newReport({ node: 'a', status: 'changed', receivedAt: t0 + 1 }));
      await store.add(newReport({ node: 'b', status: 'unchanged', receivedAt: t0 + 2, compiler: 'c2' }));
      await store.add(newReport({ node: 'c', status: 'failed', receivedAt: t0 + 3 }));
      await store.add(newReport({ node: 'b', status: 'failed', receivedAt: t0 + 4, compiler: 'c1' }));
      const all = await store.nodes();
      assert.deepEqual(all.items.map((n) => [n.node, n.last.status, n.runs, n.changed, n.unchanged, n.failed]), [
        ['a', 'changed', 1, 1, 0, 0],
        ['b', 'failed', 3, 0, 1, 2],
        ['c', 'failed', 1, 0, 0, 1],
      ]);
      assert.equal(all.items[1]?.last.compiler, 'c1');
      assert.deepEqual((await store.nodes({ status: 'failed' })).items.map((n) => n.node), ['b', 'c']);
      const first = await store.nodes({ limit: 2 });
      assert.deepEqual(first.items.map((n) => n.node), ['a', 'b']);
      assert.ok(first.next);
      const second = await store.nodes({ limit: 2, cursor: first.next });
      assert.deepEqual(second.items.map((n) => n.node), ['c']);
      assert.equal(second.next, null);
    });

    test('stats counts runs per bucket and nodes by their last status', async (t) => {
      const store = await factory(t);
      await store.add(newReport({ node: 'a', status: 'changed', receivedAt: t0 + 10_000 }));
      await store.add(newReport({ node: 'b', status: 'failed', receivedAt: t0 + 50_000 }));
      await store.add(newReport({ node: 'a', status: 'unchanged', receivedAt: t0 + 2 * minute + 1 }));
      await store.add(newReport({ node: 'c', status: 'unchanged', receivedAt: t0 - 1 }));
      const stats = await store.stats({ since: t0, until: t0 + 3 * minute });
      assert.equal(stats.bucketMs, 60_000);
      assert.deepEqual(stats.buckets, [
        { start: t0, changed: 1, unchanged: 0, failed: 1 },
        { start: t0 + minute, changed: 0, unchanged: 0, failed: 0 },
        { start: t0 + 2 * minute, changed: 0, unchanged: 1, failed: 0 },
      ]);
      assert.deepEqual(stats.window, { changed: 1, unchanged: 1, failed: 1 });
      assert.deepEqual(stats.nodes, { changed: 0, unchanged: 2, failed: 1 });
      assert.equal(stats.stored, 4);
      await assert.rejects(store.stats({ since: t0, until: t0 }), fails('RM_REPORTS_QUERY_INVALID'));
      await assert.rejects(store.stats({ since: 0, until: t0, bucketMs: 1000 }), fails('RM_REPORTS_QUERY_INVALID'));
    });

    test('prune by age removes what was received before the cutoff, in batches, and updates the nodes', async (t) => {
      const store = await factory(t);
      for (let i = 0; i < 10; i++) await store.add(newReport({ node: i < 5 ? 'old' : 'mixed', receivedAt: t0 + i * minute }));
      await store.add(newReport({ node: 'old', status: 'failed', receivedAt: t0 + 10 * minute }));
      const now = t0 + 20 * minute;
      const limits = { maxAgeMs: 13 * minute, now, batchSize: 4 };
      assert.deepEqual(await store.prune(limits), { deleted: 4, done: false });
      assert.deepEqual(await store.prune(limits), { deleted: 3, done: true });
      assert.deepEqual(await store.prune(limits), { deleted: 0, done: true });
      const left = await store.list({ limit: 100 });
      assert.deepEqual(left.items.map((r) => r.receivedAt), [10, 9, 8, 7].map((i) => t0 + i * minute));
      const nodes = await store.nodes();
      assert.deepEqual(nodes.items.map((n) => [n.node, n.runs, n.last.status]), [['mixed', 3, 'unchanged'], ['old', 1, 'failed']]);
    });

    test('prune by count keeps the newest maxCount reports; a node with none left leaves the node list', async (t) => {
      const store = await factory(t);
      await store.add(newReport({ node: 'gone', receivedAt: t0 }));
      for (let i = 1; i < 8; i++) await store.add(newReport({ node: 'stays', receivedAt: t0 + i }));
      let result;
      do result = await store.prune({ maxCount: 5, now: t0, batchSize: 2 });
      while (!result.done);
      const left = await store.list();
      assert.deepEqual(left.items.map((r) => r.receivedAt), [7, 6, 5, 4, 3].map((i) => t0 + i));
      assert.deepEqual((await store.nodes()).items.map((n) => n.node), ['stays']);
      assert.deepEqual(await store.prune({ maxCount: 5, maxAgeMs: 365 * 86_400_000, now: t0 }), { deleted: 0, done: true });
    });

    test('after close every call fails with RM_REPORTS_UNAVAILABLE; an add accepted before close is kept', async (t) => {
      const store = await factory(t);
      const pending = store.add(newReport({ node: 'last' }));
      await store.close();
      assert.ok((await pending) > 0);
      await assert.rejects(store.add(newReport({ node: 'late' })), fails('RM_REPORTS_UNAVAILABLE'));
      await assert.rejects(store.list(), fails('RM_REPORTS_UNAVAILABLE'));
      await assert.rejects(store.get(1), fails('RM_REPORTS_UNAVAILABLE'));
      await store.close();
    });
  });
}
