import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedDecoder, hasToken, parseHead, type FieldMemo } from './head.ts';
import { isRingmasterError } from '../lib/errors.ts';

const head = (lines: string[]) => lines.join('\r\n');
const refused = (code: string) => (err: unknown) => isRingmasterError(err) && err.code === code;

test('a request head: method, target as sent, lower-case names, values without surrounding space', () => {
  const h = parseHead(head(['GET /puppet/v3/node/a.test?environment=production HTTP/1.1', 'Host: ringmaster', 'Accept:  application/json \t', 'X-Empty:']));
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/puppet/v3/node/a.test?environment=production');
  assert.equal(h.minor, 1);
  assert.deepEqual({ ...h.headers }, { host: 'ringmaster', accept: 'application/json', 'x-empty': '' });
  assert.deepEqual(h.framing, { kind: 'none' });
  assert.equal(h.keepAlive, true);
  assert.equal(h.expectContinue, false);
});

test('repeated fields are joined (cookie with ";"), set-cookie kept apart; Host, Content-Length and Transfer-Encoding may not repeat', () => {
  const h = parseHead(head(['GET / HTTP/1.1', 'Host: x', 'Accept: a', 'accept: b', 'Cookie: c=1', 'Cookie: d=2', 'Set-Cookie: e', 'Set-Cookie: f']));
  assert.equal(h.headers.accept, 'a, b');
  assert.equal(h.headers.cookie, 'c=1; d=2');
  assert.deepEqual(h.headers['set-cookie'], ['e', 'f']);
  for (const name of ['Host', 'Content-Length', 'Transfer-Encoding']) {
    const value = name === 'Transfer-Encoding' ? 'chunked' : name === 'Host' ? 'x' : '1';
    assert.throws(() => parseHead(head(['POST / HTTP/1.1', 'Host: x', `${name}: ${value}`, `${name}: ${value}`].filter((l, i) => !(name === 'Host' && i === 1)))), refused('RM_HTTP_MALFORMED'), name);
  }
});

test('framing: a length, chunked, none for a zero length; both, lists and other codings are refused', () => {
  assert.deepEqual(parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: 12'])).framing, { kind: 'length', length: 12 });
  assert.deepEqual(parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: 0'])).framing, { kind: 'none' });
  assert.deepEqual(parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Transfer-Encoding: Chunked'])).framing, { kind: 'chunked' });
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: 1', 'Transfer-Encoding: chunked'])), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: +1'])), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: 1234567890123456'])), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked, gzip'])), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Transfer-Encoding: gzip, chunked'])), refused('RM_HTTP_TRANSFER_CODING'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.0', 'Transfer-Encoding: chunked'])), refused('RM_HTTP_MALFORMED'));
});

test('versions, keep-alive and Expect', () => {
  assert.throws(() => parseHead(head(['GET / HTTP/2.0', 'Host: x'])), refused('RM_HTTP_VERSION'));
  assert.throws(() => parseHead(head(['GET / HTTP/1.2', 'Host: x'])), refused('RM_HTTP_VERSION'));
  assert.throws(() => parseHead(head(['GET / HTTP/1.1'])), refused('RM_HTTP_MALFORMED'), 'no Host');
  const old = parseHead(head(['GET / HTTP/1.0', 'Connection: keep-alive']));
  assert.equal(old.minor, 0);
  assert.equal(old.keepAlive, false, 'HTTP/1.0 connections close after the answer');
  assert.equal(parseHead(head(['GET / HTTP/1.1', 'Host: x', 'Connection: TE, Close'])).keepAlive, false);
  assert.equal(parseHead(head(['PUT / HTTP/1.1', 'Host: x', 'Content-Length: 3', 'Expect: 100-Continue'])).expectContinue, true);
  assert.equal(parseHead(head(['GET / HTTP/1.1', 'Host: x', 'Expect: 100-continue'])).expectContinue, false, 'no body, nothing to wait for');
  assert.throws(() => parseHead(head(['GET / HTTP/1.1', 'Host: x', 'Expect: something'])), refused('RM_HTTP_EXPECTATION'));
});

test('lines that two parsers could read differently are refused', () => {
  const bad = [
    ['GET  / HTTP/1.1', 'Host: x'],
    ['GET / HTTP/1.1 ', 'Host: x'],
    ['GET /a b HTTP/1.1', 'Host: x'],
    ['GET /\u00e9 HTTP/1.1', 'Host: x'],
    ['G(T / HTTP/1.1', 'Host: x'],
    ['GET / HTTP/1.1', 'Host: x', ' folded'],
    ['GET / HTTP/1.1', 'Host : x'],
    ['GET / HTTP/1.1', 'Host: x', 'X-A: a\nb'],
    ['GET / HTTP/1.1', 'Host: x', 'X-A: a\rb'],
    ['GET / HTTP/1.1', 'Host: x', 'X-A: a\u0000b'],
    ['GET / HTTP/1.1', 'Host: x', 'no colon'],
    ['GET / HTTP/1.1', 'Host: x', ': empty name'],
    ['GET / HTTP/1.1', 'Host: x', '__proto__: y'],
  ];
  for (const lines of bad) assert.throws(() => parseHead(head(lines)), refused('RM_HTTP_MALFORMED'), JSON.stringify(lines));
  // obs-text is allowed in values.
  assert.equal(parseHead(head(['GET / HTTP/1.1', 'Host: x', 'X-A: caf\u00e9'])).headers['x-a'], 'caf\u00e9');
});

test('hasToken reads comma-separated tokens, case-insensitively', () => {
  assert.equal(hasToken('close', 'close'), true);
  assert.equal(hasToken('Keep-Alive, CLOSE', 'close'), true);
  assert.equal(hasToken('closed', 'close'), false);
});

function decode(pieces: string[], maxTrailer = 1024): { data: string; used: number[]; done: boolean } {
  const d = new ChunkedDecoder(maxTrailer);
  let data = '';
  const used: number[] = [];
  for (const p of pieces) used.push(d.feed(Buffer.from(p, 'latin1'), (b) => (data += b.toString('latin1'))));
  return { data, used, done: d.done };
}

test('chunked bodies decode whatever the pieces, with extensions and trailers, and stop where the next request starts', () => {
  const whole = '5;a=b\r\nhello\r\nA ; x="y z"\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n';
  const one = decode([whole]);
  assert.equal(one.data, 'hello0123456789');
  assert.equal(one.done, true);
  assert.equal(whole.slice(one.used[0]), 'GET / HTTP/1.1\r\n');
  // Byte by byte: the same data, and nothing consumed past the end.
  const bytes = decode([...whole]);
  assert.equal(bytes.data, 'hello0123456789');
  assert.equal(bytes.used.reduce((a, b) => a + b, 0), one.used[0]);
});

test('malformed chunked bodies are refused', () => {
  const bad = [
    '0x5\r\nhello\r\n0\r\n\r\n',
    '-1\r\n',
    '5 \r\nhello\r\n0\r\n\r\n',
    '5\nhello\r\n0\r\n\r\n',
    '5\r\nhelloX\r\n0\r\n\r\n',
    '00000000000000005\r\nhello\r\n0\r\n\r\n',
    'ffffffffffffffff\r\n',
    '0\r\nbad trailer\r\n\r\n',
    `${'1'.repeat(5000)}`,
  ];
  for (const body of bad) assert.throws(() => decode([body]), refused('RM_HTTP_MALFORMED'), JSON.stringify(body.slice(0, 40)));
  assert.throws(() => decode([`0\r\nX-T: ${'y'.repeat(2000)}\r\n\r\n`], 1024), refused('RM_HTTP_MALFORMED'), 'trailer over its limit');
});

test('names are checked and lower-cased the same once many distinct names have been seen', () => {
  // Past the bound on remembered names, every name is still checked and lower-cased.
  for (let i = 0; i < 300; i++) parseHead(head(['GET / HTTP/1.1', 'Host: x', `X-Name-${i}: v`]));
  const h = parseHead(head(['GET / HTTP/1.1', 'HOST: x', 'X-Name-299: v', 'X-Late-NAME: w']));
  assert.deepEqual({ ...h.headers }, { host: 'x', 'x-name-299': 'v', 'x-late-name': 'w' });
  for (const bad of ['X Bad', 'X-Bad(', 'Host ', '\u00e9t\u00e9']) {
    assert.throws(() => parseHead(head(['GET / HTTP/1.1', 'Host: x', `${bad}: v`])), refused('RM_HTTP_MALFORMED'), bad);
  }
});

test("a connection's memo of field lines gives the same heads, and a line not seen in its place is checked anew", () => {
  const memo: FieldMemo = [];
  const lines = ['Host: ringmaster', 'Accept:  application/json ', 'X-Puppet-Version: 8.10.0', 'Content-Length: 5'];
  const first = parseHead(head(['PUT /puppet/v3/report/a HTTP/1.1', ...lines]), memo);
  assert.equal(memo.length, 4);
  const second = parseHead(head(['PUT /puppet/v3/report/b HTTP/1.1', ...lines]), memo);
  assert.deepEqual({ ...second.headers }, { ...first.headers });
  assert.deepEqual(second.framing, { kind: 'length', length: 5 });
  // Lines in another order, a changed value, a line that fails its check in a remembered place.
  const moved = parseHead(head(['GET / HTTP/1.1', 'X-Puppet-Version: 8.10.0', 'Host: other', 'Accept: text/plain']), memo);
  assert.deepEqual({ ...moved.headers }, { 'x-puppet-version': '8.10.0', host: 'other', accept: 'text/plain' });
  assert.throws(() => parseHead(head(['GET / HTTP/1.1', 'Host: other', 'Accept : text/plain']), memo), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['GET / HTTP/1.1', 'Host: other', 'X-Bad: a\u0000b']), memo), refused('RM_HTTP_MALFORMED'));
  // A remembered line repeated where it may not be is still refused.
  assert.throws(() => parseHead(head(['GET / HTTP/1.1', 'Host: other', 'Host: other']), memo), refused('RM_HTTP_MALFORMED'));
  assert.throws(() => parseHead(head(['PUT / HTTP/1.1', 'Host: other', 'Accept: text/plain', 'Content-Length: 5', 'Content-Length: 5']), memo), refused('RM_HTTP_MALFORMED'));
});
