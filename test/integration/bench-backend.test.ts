import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { backendTag, type BackendCommand, type BackendReply, type BackendStats } from '../../bench/lib/gateway-backend.ts';
import { forkScript, nextMessage } from '../../bench/lib/gateway-procs.ts';
import { repoRoot } from '../helpers/ringmaster.ts';

// The gateway benchmark's lean scripted backend: it must answer what the front doors send as the
// node:http one does, requests split or run together on one connection included, and count a
// request without a front door's identity headers as a mismatch.

const identity = 'x-client-verify: SUCCESS\r\nx-client-dn: CN=agent-0.bench.test\r\nx-client-cert: -----BEGIN%20CERTIFICATE-----%0AMIIB\r\n';

test('the lean backend answers split and back-to-back requests and checks the identity headers', { timeout: 30_000 }, async (t) => {
  const backend = forkScript(join(repoRoot, 'bench', 'lib', 'gateway-backend.ts'), ['lean']);
  t.after(() => backend.stop());
  const port = await nextMessage<BackendReply, number>(backend.child, (m) => (m.op === 'listening' ? m.httpPort : undefined), 15_000);
  const stats = async (): Promise<BackendStats> => {
    const answer = nextMessage<BackendReply, BackendStats>(backend.child, (m) => (m.op === 'stats' ? m.stats : undefined), 5_000);
    backend.child.send({ op: 'stats', reset: true } satisfies BackendCommand);
    return answer;
  };

  const facts = 'f'.repeat(3000);
  const catalog = `POST /puppet/v3/catalog/agent-0.bench.test?environment=production HTTP/1.1\r\nhost: b\r\n${identity}content-length: ${facts.length}\r\n\r\n${facts}`;
  const node = `GET /puppet/v3/node/agent-0.bench.test HTTP/1.1\r\nhost: b\r\n${identity}\r\n`;
  const bare = 'GET /puppet/v3/file_metadata/modules/m/f HTTP/1.1\r\nhost: b\r\n\r\n';
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1').on('data', (d: string) => (received += d));
  await new Promise((resolve) => socket.once('connect', resolve));
  // The catalog request in three pieces (inside the head, inside the body), then two at once.
  socket.write(catalog.slice(0, 40));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(catalog.slice(40, catalog.length - 1000));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(catalog.slice(catalog.length - 1000) + node + bare);
  const heads = (): RegExpMatchArray[] => [...received.matchAll(/HTTP\/1\.1 (\d{3}) [^\r]*\r\ncontent-type: application\/json\r\ncontent-length: (\d+)\r\n\r\n/g)];
  const deadline = Date.now() + 5_000;
  while (heads().length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  socket.destroy();
  const answers = heads();
  assert.deepEqual(answers.map((m) => m[1]), ['200', '200', '200']);
  assert.ok(Number(answers[0]![2]) > 50_000, 'the catalog answer is the 50 KB one');
  assert.equal(received.split(backendTag).length - 1, 3);
  const s = await stats();
  assert.equal(s.requests, 3);
  assert.equal(s.viaProxy, 3);
  // Only the request without X-Client-* headers is a mismatch (three headers missing).
  assert.equal(s.mismatches, 3);
  assert.ok(s.mismatchSamples.some((m) => m.startsWith('X-Client-Verify')));
});
