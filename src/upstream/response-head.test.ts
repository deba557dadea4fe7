import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponseHead, type ResponseHead } from './response-head.ts';

function parsed(text: string): ResponseHead {
  const h = parseResponseHead(text);
  if ('error' in h) assert.fail(h.error);
  return h;
}

test('the field lines relayed are the member\'s own text, less the hop-by-hop ones', () => {
  const h = parsed('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Puppet-Version:  8.6.0 \r\nContent-Length: 12\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT');
  assert.equal(h.status, 200);
  assert.equal(h.http11, true);
  assert.equal(h.forward, 'Content-Type: application/json\r\nX-Puppet-Version:  8.6.0 \r\nContent-Length: 12\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\n');
  assert.equal(h.connection, 'keep-alive');
  assert.deepEqual(h.contentLength, ['12']);
  assert.equal(h.hasDate, true);
  assert.deepEqual(h.headers(), {
    'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-puppet-version': '8.6.0', 'content-length': '12', date: 'Sun, 22 Nov 2026 10:00:00 GMT',
  });
});

test('a head of the status line alone, and one whose every field is dropped', () => {
  const bare = parsed('HTTP/1.0 204 No Content');
  assert.equal(bare.forward, '');
  assert.equal(bare.http11, false);
  assert.equal(bare.hasDate, false);
  assert.deepEqual(bare.headers(), {});
  const dropped = parsed('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close');
  assert.equal(dropped.forward, '');
  assert.equal(dropped.transferEncoding, 'chunked');
  assert.equal(dropped.connection, 'close');
});

test('repeats: Connection and Transfer-Encoding joined, Content-Length values kept apart', () => {
  const h = parsed('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nconnection: keep-alive\r\nContent-Length: 5\r\nConnection: Upgrade\r\nX-A: 1\r\nX-A: 2');
  assert.deepEqual(h.contentLength, ['5', '5']);
  assert.equal(h.connection, 'keep-alive, Upgrade');
  assert.equal(h.forward, 'Content-Length: 5\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n');
  assert.deepEqual(h.headers()['x-a'], ['1', '2']);
});

test('fields named in Connection stay with the member; a Content-Length beside Transfer-Encoding is not relayed', () => {
  const named = parsed('HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nX-Kept: 2');
  assert.equal(named.forward, 'X-Kept: 2\r\n');
  const both = parsed('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nX-Kept: 2');
  assert.equal(both.forward, 'X-Kept: 2\r\n');
  assert.deepEqual(both.contentLength, ['10'], 'still seen, so that the connection is not reused');
});

test('heads that could be split differently by the agent are refused', () => {
  for (const [text, why] of [
    ['HTTP/1.1 200 OK\r\nX-A: 1\nX-Injected: 1', 'bare LF'],
    ['HTTP/1.1 200 OK\r\nX-A: 1\rX-Injected: 1', 'bare CR'],
    ['HTTP/1.1 200 OK\r\nX-A: 1\0', 'NUL'],
    ['HTTP/1.1 200 OK\r\n X-Folded: 1', 'folded line'],
    ['HTTP/1.1 200 OK\r\nX A: 1', 'space in a name'],
    ['HTTP/1.1 200 OK\r\nno colon here', 'no colon'],
    ['HTTP/1.1 200 OK\r\n: empty name', 'empty name'],
    ['HTTP/2 200 OK', 'not HTTP/1.x'],
    ['HTTP/1.1 20 OK', 'short status'],
    ['SIP/2.0 200 OK', 'another protocol'],
  ] as const) {
    const h = parseResponseHead(text);
    assert.ok('error' in h, `${why} was accepted`);
  }
});
