// `ringmaster compiler config` against a real Puppet Server: the generated files start a CA-less
// compiler in header mode (plain HTTP) and one in mutual TLS that admits ringmaster's certificate
// only. The requests go straight to the compilers, carrying the headers ringmaster would set.
import assert from 'node:assert/strict';
import { readdir, readFile, rm as remove, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRun, makeTempDir, skipUnlessInstalled } from '../helpers/puppet.ts';
import { freePort } from '../helpers/puppetserver.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';
import { catalogForm, clientHeaders, compilerRequest, startCompiler, type Compiler, type CompilerRequest } from '../helpers/compiler.ts';

const skip = skipUnlessInstalled('puppetserver');

const agent = 'agent1.test';
// Both values only a compile for the right node on the right compiler can produce.
const manifest = "notify { \"hello ${trusted['certname']} authenticated=${trusted['authenticated']}\": }\nnotify { \"confdir ${settings::confdir}\": }\n";

type Catalog = { name: string; resources: { type: string; title: string }[] };
const notices = (body: string): string[] => (JSON.parse(body) as Catalog).resources.filter((r) => r.type === 'Notify').map((r) => r.title);

describe('ringmaster compiler config with a real Puppet Server', { skip, timeout: 600_000 }, () => {
  let rm: Ringmaster | undefined;
  let tree = '';
  let plain: Compiler | undefined;
  let tls: Compiler | undefined;
  let ca = '';
  let agentCert = '';
  let agentKey = '';
  let ringmasterCert = '';
  let ringmasterKey = '';
  let keyMode = 0;
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  /** `compiler config NAME --out <tree>/NAME …` with every compiler-side path inside that directory. */
  const generate = (name: string, extra: string[], out = join(tree, name)) =>
    ringmaster().cli(['compiler', 'config', name, '--out', out, '--install-dir', out, '--ssldir', join(out, 'ssl'), '--confdir', join(tree, `${name}-confdir`), ...extra]);

  before(async () => {
    rm = await startRingmaster();
    tree = await makeTempDir('compiler-config');
    const gen = await rm.cli(['ca', 'generate', agent]);
    assert.equal(gen.code, 0, describeRun(`ringmaster ca generate ${agent}`, gen));
    const ssl = rm.paths.sslDir;
    const read = (...p: string[]) => readFile(join(ssl, ...p), 'utf8');
    ca = await read('certs', 'ca.pem');
    agentCert = await read('certs', `${agent}.pem`);
    agentKey = await read('private_keys', `${agent}.pem`);
    ringmasterCert = await read('certs', 'ringmaster.test.pem');
    ringmasterKey = await read('private_keys', 'ringmaster.test.pem');
    const [p1, p2] = [await freePort(), await freePort()];
    const c1 = await generate('c1', ['--listen', `127.0.0.1:${p1}`]);
    assert.equal(c1.code, 0, describeRun('compiler config c1', c1));
    assert.match(c1.stdout, new RegExp(`- name: c1\\n\\s+url: http://127\\.0\\.0\\.1:${p1}`));
    const c2 = await generate('c2', ['--listen', `127.0.0.1:${p2}`, '--tls']);
    assert.equal(c2.code, 0, describeRun('compiler config c2 --tls', c2));
    assert.match(c2.stdout, new RegExp(`url: https://127\\.0\\.0\\.1:${p2}`));
    keyMode = (await stat(join(tree, 'c1', 'ssl', 'private_keys', 'c1.pem'))).mode & 0o777;
    const started = await Promise.allSettled([
      startCompiler({ configDir: join(tree, 'c1'), name: 'c1', manifest }),
      startCompiler({ configDir: join(tree, 'c2'), name: 'c2', manifest }),
    ]);
    for (const s of started) {
      if (s.status !== 'fulfilled') continue;
      if (s.value.name === 'c1') plain = s.value;
      else tls = s.value;
    }
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  });
  after(async () => {
    await Promise.all([plain?.cleanup(), tls?.cleanup()]);
    await rm?.cleanup();
    if (tree) await remove(tree, { recursive: true, force: true });
  });

  const plainC = (): Compiler => plain ?? assert.fail('compiler c1 did not start');
  const tlsC = (): Compiler => tls ?? assert.fail('compiler c2 did not start');
  const nodePath = (name: string) => `/puppet/v3/node/${name}?environment=production`;
  const catalog = (c: Compiler, tlsAuth?: CompilerRequest['tls']) =>
    compilerRequest(c, {
      ...(tlsAuth ? { tls: tlsAuth } : {}),
      method: 'POST',
      path: `/puppet/v3/catalog/${agent}?environment=production`,
      headers: { ...clientHeaders(agent, agentCert), 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: catalogForm(agent, { osfamily: 'Debian' }),
    });

  it('writes the key with mode 0600, ringmaster\'s certificate as the only TLS trust, and certificates the CA lists', async () => {
    assert.equal(keyMode, 0o600);
    const trust = await readFile(join(tree, 'c2', 'ssl', 'ringmaster.pem'), 'utf8');
    assert.equal(trust.trim(), ringmasterCert.trim(), "the TLS trust file is ringmaster's certificate, nothing else");
    const names = (await listCerts(ringmaster(), true)).map((s) => s.name);
    assert.ok(names.includes('c1') && names.includes('c2'), `CA lists the compilers: ${names.join(', ')}`);
  });

  it('plain compiler: the node object for the identity in the headers', async () => {
    const res = await compilerRequest(plainC(), { path: nodePath(agent), headers: { ...clientHeaders(agent, agentCert), Accept: 'application/json' } });
    assert.equal(res.status, 200, res.body);
    assert.equal((JSON.parse(res.body) as { name: string }).name, agent);
  });

  it('plain compiler: 403 without the headers, and for another node than the header identity', async () => {
    const bare = await compilerRequest(plainC(), { path: nodePath(agent) });
    assert.equal(bare.status, 403, bare.body);
    assert.match(bare.body, /Forbidden request/);
    const other = await compilerRequest(plainC(), { path: nodePath('other.test'), headers: clientHeaders(agent, agentCert) });
    assert.equal(other.status, 403, other.body);
  });

  it("plain compiler: compiles a catalog with $trusted from the headers", async () => {
    const res = await catalog(plainC());
    assert.equal(res.status, 200, res.body);
    const titles = notices(res.body);
    assert.ok(titles.includes(`hello ${agent} authenticated=remote`), titles.join(' | '));
    assert.ok(titles.includes(`confdir ${join(plainC().root, 'confdir')}`), titles.join(' | '));
  });

  it("TLS compiler: ringmaster's certificate connects and compiles", async () => {
    const auth = { ca, cert: ringmasterCert, key: ringmasterKey };
    const node = await compilerRequest(tlsC(), { path: nodePath(agent), headers: { ...clientHeaders(agent, agentCert), Accept: 'application/json' }, tls: auth });
    assert.equal(node.status, 200, node.body);
    const res = await catalog(tlsC(), auth);
    assert.equal(res.status, 200, res.body);
    assert.ok(notices(res.body).includes(`hello ${agent} authenticated=remote`), res.body.slice(0, 2000));
    // Header mode holds on the TLS listener too: ringmaster's own certificate is not an identity.
    const bare = await compilerRequest(tlsC(), { path: nodePath(agent), tls: auth });
    assert.equal(bare.status, 403, bare.body);
  });

  it("TLS compiler: an agent's certificate from the same CA is refused in the handshake, as is none", async () => {
    // A TLS alert from Jetty, not an HTTP answer: the request never reaches Puppet Server.
    const alert = (kind: RegExp) => (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      return /^(ERR_SSL_|EPROTO)/.test(e.code ?? '') && kind.test(e.message);
    };
    const headers = clientHeaders(agent, agentCert);
    await assert.rejects(compilerRequest(tlsC(), { path: nodePath(agent), headers, tls: { ca, cert: agentCert, key: agentKey } }), alert(/alert certificate unknown/));
    await assert.rejects(compilerRequest(tlsC(), { path: nodePath(agent), headers, tls: { ca } }), alert(/alert (bad certificate|certificate required)/));
  });

  it('refuses a non-empty --out without --force, an existing certificate and a bad name; leaves nothing behind', async () => {
    const before = (await readdir(tree)).sort();
    const busy = await generate('c3', [], join(tree, 'c1'));
    assert.equal(busy.code, 2, describeRun('compiler config c3 --out <c1>', busy));
    assert.match(busy.stderr, /not empty.*--force/);
    const again = await generate('c1', [], join(tree, 'c1-again'));
    assert.equal(again.code, 1, describeRun('compiler config c1 again', again));
    assert.match(again.stderr, /ringmaster ca clean c1/);
    const bad = await generate('Bad_Name', [], join(tree, 'bad'));
    assert.equal(bad.code, 2, describeRun('compiler config Bad_Name', bad));
    assert.match(bad.stderr, /lower case/);
    assert.deepEqual((await readdir(tree)).sort(), before, 'no new directory, no temporary directory');
    const names = (await listCerts(ringmaster(), true)).map((s) => s.name);
    assert.ok(!names.includes('c3') && !names.includes('bad_name'), `no certificate issued for refused runs: ${names.join(', ')}`);
  });
});
