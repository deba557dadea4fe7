import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAnswer, matchPath, validate } from './openapi-check.ts';
import { openApiDocument } from './openapi.ts';

type Doc = Parameters<typeof checkAnswer>[0];
const doc = openApiDocument as unknown as Doc;
const components = { schemas: { Thing: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'integer' }, tag: { anyOf: [{ type: 'string', enum: ['a', 'b'] }, { type: 'null' }] } } } } };

test('the validator finds wrong types, missing and extra properties, enums, patterns, anyOf and refs', () => {
  const ref = { $ref: '#/components/schemas/Thing' };
  assert.deepEqual(validate(ref, { id: 1, tag: null }, { components }), []);
  assert.deepEqual(validate(ref, { id: 1, tag: 'a' }, { components }), []);
  assert.match(validate(ref, { id: 1.5 }, { components })[0] ?? '', /\$\.id: expected integer, got number/);
  assert.match(validate(ref, {}, { components })[0] ?? '', /missing required property "id"/);
  assert.match(validate(ref, { id: 1, extra: true }, { components })[0] ?? '', /"extra" is not in the schema/);
  assert.match(validate(ref, { id: 1, tag: 'c' }, { components })[0] ?? '', /matches none of anyOf/);
  assert.match(validate({ type: 'array', items: { type: 'string', pattern: '^RM_' } }, ['RM_X', 'no'], { components })[0] ?? '', /\$\[1\]: "no" does not match/);
  assert.match(validate({ $ref: '#/components/schemas/Nope' }, 1, { components })[0] ?? '', /unresolvable/);
  assert.match(validate({ oneOf: [] }, 1, { components })[0] ?? '', /does not implement/, 'an unknown keyword is an error, not a pass');
});

test('paths: literal segments win over parameters; undocumented statuses and methods are problems', () => {
  assert.equal(matchPath(doc, '/admin/v1/reports/stats'), '/admin/v1/reports/stats');
  assert.equal(matchPath(doc, '/admin/v1/reports/12'), '/admin/v1/reports/{id}');
  assert.equal(matchPath(doc, '/admin/v1/pools/compilers/members/a/drain'), '/admin/v1/pools/{pool}/members/{member}/drain');
  assert.equal(matchPath(doc, '/admin/v1/pools//members/a'), undefined);
  assert.match(checkAnswer(doc, 'GET', '/admin/v1/state', 418, {})[0] ?? '', /status 418 is not documented/);
  assert.match(checkAnswer(doc, 'PATCH', '/admin/v1/state', 200, {})[0] ?? '', /not in the document/);
  assert.deepEqual(checkAnswer(doc, 'PATCH', '/admin/v1/state', 405, { error: { code: 'RM_METHOD_NOT_ALLOWED', message: 'no' }, allow: 'GET' }), []);
  assert.match(checkAnswer(doc, 'GET', '/admin/v1/pools', 200, { pools: [{ name: 'x' }] })[0] ?? '', /missing required property/);
});

test('the document: every $ref resolves, operation ids are unique, every operation documents the auth refusals', () => {
  const text = JSON.stringify(openApiDocument);
  for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) assert.ok(name && name in openApiDocument.components.schemas, `$ref ${name}`);
  const ops = Object.values(doc.paths).flatMap((p) => Object.values(p) as unknown as { operationId: string; responses: Record<string, unknown> }[]);
  assert.equal(new Set(ops.map((o) => o.operationId)).size, ops.length);
  for (const o of ops) for (const s of ['401', '403', '405']) assert.ok(s in o.responses, `${o.operationId} ${s}`);
});
