import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig, type ConfigInput } from '../config/schema.ts';
import type { Peer } from '../listener/peer.ts';
import type { ParsedCert } from '../ca/x509.ts';
import { Router } from './router.ts';
import { globMatcher, hashShare } from './glob.ts';

function router(input: ConfigInput): Router {
  const r = validateConfig(input);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return new Router(r.config);
}

const utf8String = (s: string) => Buffer.concat([Buffer.from([0x0c, Buffer.byteLength(s)]), Buffer.from(s)]);
function verified(certname: string, ext: Record<string, string> = {}): Peer {
  const extensions = Object.entries(ext).map(([oid, text]) => ({ oid, critical: false, der: utf8String(text), text }));
  return { kind: 'verified', certname, cert: { extensions } as unknown as ParsedCert };
}
const anonymous: Peer = { kind: 'none' };
const req = (path: string, peer: Peer = anonymous, method = 'GET', query = '') => ({ method, path, query: new URLSearchParams(query), peer });

const pools = { compilers: { members: [] }, staging: { members: [] }, canary: { members: [] }, web: { members: [] } };

test('default routes: CA to the built-in CA, status answered locally, /puppet/ to compilers', () => {
  const r = router({ pools });
  assert.deepEqual(r.match(req('/puppet-ca/v1/certificate/ca'))?.route.target, { kind: 'service', service: 'ca' });
  assert.deepEqual(r.match(req('/status/v1/simple'))?.route.target, { kind: 'service', service: 'status' });
  assert.deepEqual(r.match(req('/status/v1/simple/server'))?.route.target, { kind: 'service', service: 'status' });
  assert.equal(r.match(req('/status/v1/simple', anonymous, 'POST')), undefined);
  assert.equal(r.match(req('/puppet/v3/catalog/a', verified('a'), 'POST'))?.pool, 'compilers');
  assert.equal(r.match(req('/puppet/v4/catalog', verified('a'), 'POST'))?.pool, 'compilers');
  assert.equal(r.match(req('/status/v1/services')), undefined);
  assert.equal(r.match(req('/puppet-admin-api/v1/environment-cache')), undefined);
});

test('operator routes come first and can turn the defaults off', () => {
  const r = router({ pools, routes: [{ match: { path: '/puppet/v3/file_' }, to: { pool: 'web' } }] });
  assert.equal(r.match(req('/puppet/v3/file_content/modules/x'))?.pool, 'web');
  assert.equal(r.match(req('/puppet/v3/catalog/x', anonymous, 'POST'))?.pool, 'compilers');
  const bare = router({ pools, routes: [{ match: { path: '/puppet/' }, to: { pool: 'web' } }], defaultRoutes: false });
  assert.equal(bare.match(req('/puppet-ca/v1/certificate/ca')), undefined);
  assert.equal(bare.routes[0]?.name, 'route0');
});

test('environment routing uses the environment query parameter, globs allowed', () => {
  const r = router({ pools, routes: [{ name: 'staging', match: { path: '/puppet/v3/', environments: ['staging', 'feature_*'] }, to: { pool: 'staging' } }] });
  assert.equal(r.match(req('/puppet/v3/catalog/a', verified('a'), 'POST', 'environment=staging'))?.pool, 'staging');
  assert.equal(r.match(req('/puppet/v3/node/a', verified('a'), 'GET', 'environment=feature_x'))?.pool, 'staging');
  assert.equal(r.match(req('/puppet/v3/node/a', verified('a'), 'GET', 'environment=production'))?.pool, 'compilers');
  assert.equal(r.match(req('/puppet/v3/node/a', verified('a'), 'GET'))?.pool, 'compilers');
});

test('certname, pattern and method conditions need a verified peer', () => {
  const r = router({
    pools,
    routes: [
      { match: { certnames: ['*.dmz.test', 'special.test'] }, to: { pool: 'web' } },
      { match: { certnamePattern: '^db[0-9]+\\.' , methods: ['POST'] }, to: { pool: 'staging' } },
    ],
  });
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a.dmz.test')))?.pool, 'web');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('special.test')))?.pool, 'web');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('dmz.test')))?.pool, 'compilers');
  assert.equal(r.match(req('/puppet/v3/catalog/x', verified('db12.test'), 'POST'))?.pool, 'staging');
  assert.equal(r.match(req('/puppet/v3/catalog/x', verified('db12.test'), 'GET'))?.pool, 'compilers');
  assert.equal(r.match(req('/puppet/v3/node/x', { kind: 'none' }))?.pool, 'compilers');
});

test('certificate extensions by short name or OID, any of a list', () => {
  const ppRole = '1.3.6.1.4.1.34380.1.1.13';
  const ppEnv = '1.3.6.1.4.1.34380.1.1.12';
  const r = router({
    pools,
    routes: [
      { match: { extensions: { pp_role: ['web', 'proxy*'] } }, to: { pool: 'web' } },
      { match: { extensions: { [ppEnv]: 'staging', pp_role: 'db' } }, to: { pool: 'staging' } },
    ],
  });
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a', { [ppRole]: 'web' })))?.pool, 'web');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a', { [ppRole]: 'proxy_edge' })))?.pool, 'web');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a', { [ppRole]: 'db', [ppEnv]: 'staging' })))?.pool, 'staging');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a', { [ppRole]: 'db' })))?.pool, 'compilers');
  assert.equal(r.match(req('/puppet/v3/node/x', verified('a')))?.pool, 'compilers');
});

test('canaries: named certnames and a stable share by hash', () => {
  const r = router({ pools, routes: [{ match: { path: '/puppet/' }, to: { pool: 'compilers' }, canary: { pool: 'canary', certnames: ['pilot.test'], percent: 10 } }] });
  assert.equal(r.match(req('/puppet/v3/node/x', verified('pilot.test')))?.pool, 'canary');
  let canaries = 0;
  for (let i = 0; i < 5000; i++) {
    const name = `node${i}.test`;
    const first = r.match(req('/puppet/v3/node/x', verified(name)))?.pool;
    assert.equal(r.match(req('/puppet/v3/node/y', verified(name)))?.pool, first, 'the same node always lands on the same side');
    if (first === 'canary') canaries++;
  }
  assert.ok(canaries > 400 && canaries < 600, `about 10% canaries, got ${canaries}`);
  assert.equal(r.match(req('/puppet/v3/node/x', anonymous))?.pool, 'compilers');
});

test('hash shares are stable across releases (fixed values)', () => {
  assert.equal(hashShare('agent1.example.com'), hashShare('agent1.example.com'));
  assert.notEqual(hashShare('a'), hashShare('b'));
  assert.ok(hashShare('x') >= 0 && hashShare('x') < 10000);
});

test('globs are literal except for *', () => {
  const m = globMatcher(['*.example.com', 'a.b']);
  assert.ok(m('x.example.com'));
  assert.ok(!m('xexample.com'));
  assert.ok(m('a.b'));
  assert.ok(!m('aXb'));
  assert.ok(globMatcher(['(weird)+*'])('(weird)+tail'));
});

test('config validation refuses routes to unknown pools, bad patterns and unknown extension names', () => {
  const r = validateConfig({
    pools: { compilers: { members: [{ name: 'a', url: 'http://127.0.0.1:1' }, { name: 'a', url: 'http://127.0.0.1:2' }] } },
    routes: [
      { match: { pathPattern: '(' }, to: { pool: 'compilers' } },
      { match: { extensions: { pp_nonsense: 'x' } }, to: { pool: 'nowhere' } },
      { to: { pool: 'compilers' }, canary: { pool: 'missing' } },
    ],
  });
  assert.equal(r.ok, false);
  const paths = r.ok ? [] : r.problems.map((p) => p.path);
  for (const p of ['routes[0].match.pathPattern', 'routes[1].match.extensions.pp_nonsense', 'pools.compilers.members[1].name']) assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  const bad = validateConfig({ pools: { c: { members: [{ name: 'a', url: 'http://127.0.0.1:1/path' }] } } });
  assert.equal(bad.ok, false);
});
