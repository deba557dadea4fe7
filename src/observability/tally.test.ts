import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TallyCounter, TallyHistogram } from './tally.ts';

test('a tally counter keeps one series per key and builds its labels once', async () => {
  const c = new TallyCounter('x_total', 'help');
  let built = 0;
  const labels = () => {
    built++;
    return { pool: 'a' };
  };
  c.add('a', labels);
  c.add('a', labels, 4);
  c.add('b', () => ({ pool: 'b' }), 0);
  assert.equal(built, 1);
  const e = await c.get();
  assert.equal(e.type, 'counter');
  assert.deepEqual(e.values, [{ labels: { pool: 'a' }, value: 5 }, { labels: { pool: 'b' }, value: 0 }]);
  assert.throws(() => c.add('a', labels, -1), TypeError);
  assert.throws(() => c.add('a', labels, Number.NaN), TypeError);
  c.reset();
  assert.deepEqual((await c.get()).values, []);
});

test('a tally histogram exports cumulative buckets, +Inf, sum and count', async () => {
  const h = new TallyHistogram('t_seconds', 'help', [0.1, 1]);
  const l = () => ({ pool: 'p' });
  for (const v of [0.05, 0.1, 0.5, 7]) h.observe('p', l, v);
  const e = await h.get();
  assert.equal(e.type, 'histogram');
  assert.deepEqual(e.values, [
    { labels: { pool: 'p', le: 0.1 }, value: 2, metricName: 't_seconds_bucket' },
    { labels: { pool: 'p', le: 1 }, value: 3, metricName: 't_seconds_bucket' },
    { labels: { pool: 'p', le: '+Inf' }, value: 4, metricName: 't_seconds_bucket' },
    { labels: { pool: 'p' }, value: 7.65, metricName: 't_seconds_sum' },
    { labels: { pool: 'p' }, value: 4, metricName: 't_seconds_count' },
  ]);
  assert.throws(() => h.observe('p', l, Number.POSITIVE_INFINITY), TypeError);
  assert.throws(() => new TallyHistogram('bad', 'help', [1, 1]), /ascend/);
});
