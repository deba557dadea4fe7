import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { contentSecurityPolicy, createDashboard, loadFiles, staticDir } from './files.ts';

type Sent = { status: number; headers: Record<string, string | number>; body: Buffer | undefined };

function serve(method: string, url: string): Sent | false {
  let sent: Sent = { status: 0, headers: {}, body: undefined };
  const res = {
    writeHead(status: number, headers: Record<string, string | number>) {
      sent = { ...sent, status, headers };
      return this;
    },
    end(body?: Buffer | string) {
      sent.body = body === undefined ? undefined : Buffer.from(body);
    },
  } as unknown as ServerResponse;
  return dashboard({ method, url } as IncomingMessage, res) ? sent : false;
}
const dashboard = createDashboard();

test('the page at / and /ui/, modules and styles with their types, under a CSP of this origin only', () => {
  for (const url of ['/', '/ui', '/ui/', '/?x=1']) {
    const r = serve('GET', url);
    assert.ok(r, url);
    assert.equal(r.status, 200, url);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['content-security-policy'], contentSecurityPolicy);
  }
  assert.equal((serve('GET', '/ui/app.js') as Sent).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((serve('GET', '/ui/style.css') as Sent).headers['content-type'], 'text/css; charset=utf-8');
  assert.equal((serve('HEAD', '/ui/style.css') as Sent).body, undefined);
  assert.doesNotMatch(contentSecurityPolicy, /https?:|\*|unsafe/);
});

test('unknown files are 404, other methods 405, other paths are not the dashboard\'s', () => {
  assert.equal((serve('GET', '/ui/nope.js') as Sent).status, 404);
  assert.equal((serve('GET', '/ui/../files.ts') as Sent).status, 404);
  assert.equal((serve('POST', '/ui/app.js') as Sent).status, 405);
  assert.equal(serve('GET', '/admin/v1/state'), false);
  assert.equal(serve('GET', '/uix'), false);
});

test('every module import resolves to a served file, and nothing refers to another origin', () => {
  const files = loadFiles();
  assert.ok(files.has('index.html') && files.has('app.js'));
  for (const [rel, file] of files) {
    const text = file.body.toString('utf8');
    for (const [, spec] of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(join(staticDir, rel)), spec!);
      assert.ok(existsSync(target), `${rel} imports ${spec}`);
    }
    const external = [...text.matchAll(/\b(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"]*/gi)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg');
    assert.deepEqual(external, [], `${rel} refers to another origin`);
  }
  assert.match(readFileSync(join(staticDir, 'index.html'), 'utf8'), /src="\/ui\/app\.js"/);
});
