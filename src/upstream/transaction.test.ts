import assert from 'node:assert/strict';
import test from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { transactionUuidOf } from './transaction.ts';

const id = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

test('the transaction_uuid of a catalog POST body or a GET query, as a Buffer or a string', () => {
  const facts = `facts=${encodeURIComponent(JSON.stringify({ values: { transaction_uuid: 'not-this-one', pad: 'x'.repeat(20_000) } }))}`;
  for (const form of [`facts_format=application%2Fjson&${facts}&transaction_uuid=${id}`, `transaction_uuid=${id}&${facts}`, `environment=production&transaction_uuid=${id}&fail_on_404=true`, `/puppet/v3/catalog/a?transaction_uuid=${id}`]) {
    assert.equal(transactionUuidOf(Buffer.from(form)), id, form.slice(0, 60));
    assert.equal(transactionUuidOf(form), id, form.slice(0, 60));
  }
});

test('a field that only ends in transaction_uuid, a malformed or truncated value, or none at all gives nothing', () => {
  for (const form of [`x_transaction_uuid=${id}`, `transaction_uuid=${id}0`, `transaction_uuid=${id.slice(0, 35)}`, `transaction_uuid=${id.replace('0', 'g')}`, `transaction_uuid=${id};x`, 'facts=%7B%7D', '']) {
    assert.equal(transactionUuidOf(Buffer.from(form)), undefined, form);
    assert.equal(transactionUuidOf(form), undefined, form);
  }
  // The first well-formed field wins; a malformed one before it is skipped.
  assert.equal(transactionUuidOf(`transaction_uuid=bad&transaction_uuid=${id}`), id);
});

test('the value found keeps nothing of the body or the target alive', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const kept: (string | undefined)[] = [];
  gc();
  const before = process.memoryUsage().heapUsed;
  // 24 bodies and 24 targets of 1 MB each: a value that were a slice of its input would keep 48 MB.
  for (let i = 0; i < 24; i++) {
    kept.push(transactionUuidOf(Buffer.from(`facts=${String(i).repeat(1 << 20)}&transaction_uuid=${id}`)));
    kept.push(transactionUuidOf(`/puppet/v3/catalog/n${i}?facts=${'f'.repeat(1 << 20)}${i}&transaction_uuid=${id}`));
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.deepEqual(new Set(kept), new Set([id]));
  assert.ok(grown < 8 << 20, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MB`);
});
