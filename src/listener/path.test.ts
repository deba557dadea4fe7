import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequestTarget } from './path.ts';
import { isRingmasterError } from '../lib/errors.ts';

test('ordinary Puppet paths pass unchanged with their query', () => {
  const p = checkRequestTarget('/puppet-ca/v1/certificate_request/agent1.example.com?environment=production');
  assert.equal(p.path, '/puppet-ca/v1/certificate_request/agent1.example.com');
  assert.deepEqual(p.segments, ['puppet-ca', 'v1', 'certificate_request', 'agent1.example.com']);
  assert.equal(p.query.get('environment'), 'production');
});

const refused = [
  '/puppet-ca/v1/certificate/..%2F..%2Fca_key',
  '/puppet-ca/v1/certificate/a%2fb',
  '/puppet-ca/v1/certificate/../ca_key',
  '/puppet-ca/v1/./certificate/ca',
  '/puppet-ca/v1//certificate/ca',
  '/puppet-ca/v1/certificate/a%00b',
  '/puppet-ca/v1/certificate/%2e%2e',
  '/puppet-ca/v1/certificate/a\\b',
  '/puppet-ca/v1/certificate/a%0ab',
  '/puppet-ca/v1/certificate/%zz',
  'puppet-ca/v1/certificate/ca',
  'http://evil/puppet-ca/v1/certificate/ca',
];
for (const target of refused) {
  test(`refuses ${JSON.stringify(target)} with RM_PATH_INVALID`, () => {
    assert.throws(() => checkRequestTarget(target), (err: unknown) => isRingmasterError(err, 'RM_PATH_INVALID'));
  });
}
