import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { refuseCrossSite } from './origin.ts';

const refused = (err: unknown) => isRingmasterError(err, 'RM_ADMIN_CROSS_SITE');

test('reads pass whatever their origin; the CLI and same-origin pages may change things', () => {
  refuseCrossSite('GET', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
  refuseCrossSite('POST', { host: '127.0.0.1:8150' });
  refuseCrossSite('POST', { host: '127.0.0.1:8150', 'content-type': 'application/json' });
  refuseCrossSite('PUT', { host: '127.0.0.1:8150', origin: 'https://127.0.0.1:8150', 'sec-fetch-site': 'same-origin', 'content-type': 'application/json; charset=utf-8' });
  refuseCrossSite('DELETE', { host: 'x', 'sec-fetch-site': 'none' });
});

test('another origin, a cross-site or same-site fetch, or a form body is refused for a change', () => {
  assert.throws(() => refuseCrossSite('POST', { host: '127.0.0.1:8150', origin: 'https://evil.example' }), refused);
  assert.throws(() => refuseCrossSite('POST', { host: '127.0.0.1:8150', origin: 'null' }), refused);
  assert.throws(() => refuseCrossSite('POST', { host: '127.0.0.1:8150', origin: 'http://127.0.0.1:8150' }), refused, 'http is another origin');
  assert.throws(() => refuseCrossSite('DELETE', { host: 'x', 'sec-fetch-site': 'cross-site' }), refused);
  assert.throws(() => refuseCrossSite('PUT', { host: 'x', 'sec-fetch-site': 'same-site' }), refused);
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'TEXT/PLAIN;charset=utf-8']) {
    assert.throws(() => refuseCrossSite('POST', { host: 'x', 'content-type': type }), refused, type);
  }
});
