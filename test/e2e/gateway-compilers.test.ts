// The gateway with real software: two real Puppet Servers configured from `ringmaster compiler
// config` (one plain HTTP, one mutual TLS, both with their CA disabled) behind ringmaster, and
// real puppet agents that know only ringmaster's address. The agents' listener parks every
// connection idle for 50 ms, so the requests of a run after a pause (facts, catalog application)
// travel over connections ringmaster keeps out of OpenSSL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm as remove, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, makeTempDir, skipUnlessInstalled, type Agent, type RunResult } from '../helpers/puppet.ts';
import { freePort } from '../helpers/puppetserver.ts';
import { httpsRequest, startRingmaster, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';
import { startCompiler, type Compiler } from '../helpers/compiler.ts';
import { call, type TlsIdentity } from '../helpers/https-client.ts';

const skip = skipUnlessInstalled('puppetserver', 'puppet-agent');

// ${settings::confdir} differs per compiler on one machine ($server_facts['servername'] does not).
const manifest = [
  'notify { "compiled-by ${settings::confdir}": }',
  'notify { "role=${trusted[\'extensions\'][\'pp_role\']}": }',
  'notify { "env=${server_facts[\'environment\']}": }',
  // One node's run fails on a resource, for the reports store to show.
  'if $trusted[\'certname\'] == \'fail1.test\' { exec { \'fail-here\': command => \'/bin/false\' } }',
  '',
].join('\n');
// Only c2 has a staging environment: a staging catalog compiled anywhere else fails the run.
const stagingManifest = 'notify { "staging compiled-by ${settings::confdir}": }\n';

const compiledBy = (r: RunResult): string[] => [...r.stdout.matchAll(/^Notice: compiled-by (\S+)$/gm)].map((m) => m[1] ?? '');
const succeeded = (r: RunResult): boolean => r.code === 0 || r.code === 2;

describe('agents through ringmaster to real Puppet Server compilers', { skip, timeout: 900_000 }, () => {
  let rm: Ringmaster | undefined;
  let tree = '';
  let c1: Compiler | undefined;
  let c2: Compiler | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');
  const confdirOf = (c: Compiler | undefined): string => join(c?.root ?? assert.fail('compiler missing'), 'confdir');

  const token = randomBytes(24).toString('hex');
  const listening: Pick<RingmasterOptions, 'listeners' | 'admin'> = {
    listeners: [{ name: 'agents', address: '127.0.0.1', port: 0, parkIdleAfter: '50ms', parkAboveConnections: 0 }],
    admin: { tokenFile: 'admin-token' },
  };
  const metric = async (name: string): Promise<number> => {
    const r = await httpsRequest({ port: ringmaster().adminPort ?? 0, path: '/metrics', ca: await readFile(ringmaster().paths.caCert, 'utf8'), headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.body);
    const line = r.body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return Number(line?.split(' ').at(-1) ?? NaN);
  };

  const gatewayOptions = (): RingmasterOptions => ({
    ...listening,
    autosign: { all: true },
    pools: {
      compilers: { members: [{ name: 'c1', url: c1?.url ?? '' }, { name: 'c2', url: c2?.url ?? '' }], policy: 'round-robin', healthCheck: { active: { interval: '1s' } } },
      catalogs: { members: [{ name: 'c1', url: c1?.url ?? '' }, { name: 'c2', url: c2?.url ?? '' }], policy: 'round-robin', healthCheck: { active: { interval: '1s' } } },
      staging: { members: [{ name: 'c2', url: c2?.url ?? '' }] },
    },
    routes: [
      { name: 'staging', match: { path: '/puppet/', environments: ['staging'] }, to: { pool: 'staging' } },
      { name: 'catalogs', match: { pathPattern: '^/puppet/v[34]/catalog/', methods: ['POST'] }, to: { pool: 'catalogs' } },
    ],
  });

  const newAgent = async (certname: string, extra: Partial<Parameters<typeof createAgent>[0]> = {}): Promise<Agent> => {
    const a = await createAgent({ certname, port: ringmaster().port, ...extra });
    agents.push(a);
    return a;
  };
  const runAgent = (a: Agent): Promise<RunResult> => a.run(['agent', '--test', '--waitforcert', '0'], { timeoutMs: 180_000 });

  before(async () => {
    rm = await startRingmaster({ ...listening, autosign: { all: true }, prepare: async ({ configFile }) => writeFile(join(configFile, '..', 'admin-token'), `${token}\n`, { mode: 0o600 }) });
    tree = await makeTempDir('gateway-compilers');
    const [p1, p2] = [await freePort(), await freePort()];
    const generate = (name: string, extra: string[]) => {
      const out = join(tree, name);
      return ringmaster().cli(['compiler', 'config', name, '--out', out, '--install-dir', out, '--ssldir', join(out, 'ssl'), '--confdir', join(tree, `${name}-confdir`), ...extra]);
    };
    const g1 = await generate('c1', ['--listen', `127.0.0.1:${p1}`]);
    assert.equal(g1.code, 0, describeRun('compiler config c1', g1));
    const g2 = await generate('c2', ['--listen', `127.0.0.1:${p2}`, '--tls']);
    assert.equal(g2.code, 0, describeRun('compiler config c2 --tls', g2));
    const started = await Promise.allSettled([
      startCompiler({ configDir: join(tree, 'c1'), name: 'c1', manifest }),
      startCompiler({ configDir: join(tree, 'c2'), name: 'c2', manifest, stagingManifest }),
    ]);
    for (const s of started) {
      if (s.status !== 'fulfilled') continue;
      if (s.value.name === 'c1') c1 = s.value;
      else c2 = s.value;
    }
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    // The pools are added to the running ringmaster, as an operator would.
    await ringmaster().rewriteConfig(gatewayOptions());
    const reload = await ringmaster().cli(['reload']);
    assert.equal(reload.code, 0, describeRun('ringmaster reload', reload));
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await Promise.all([c1?.cleanup(), c2?.cleanup()]);
    await rm?.cleanup();
    if (tree) await remove(tree, { recursive: true, force: true });
  });

  it('agents bootstrap through ringmaster and their catalogs are compiled on both compilers', async () => {
    const [web, plain] = await Promise.all([
      newAgent('web1.test', { csrAttributes: { extension_requests: { pp_role: 'webserver' } } }),
      newAgent('plain1.test'),
    ]);
    const runs: RunResult[] = [];
    for (let i = 0; i < 2; i++) runs.push(...(await Promise.all([runAgent(web), runAgent(plain)])));
    for (const r of runs) assert.ok(succeeded(r), describeRun('puppet agent --test', r) + `\n--- ringmaster\n${ringmaster().logs().slice(-4000)}`);
    const by = runs.flatMap(compiledBy);
    assert.equal(by.length, 4, runs.map((r) => r.stdout).join('\n'));
    assert.ok(by.includes(confdirOf(c1)), `c1 compiled a catalog: ${by.join(', ')}`);
    assert.ok(by.includes(confdirOf(c2)), `c2 compiled a catalog: ${by.join(', ')}`);
    // Those runs carried requests over parked connections: the agents noticed nothing.
    assert.ok((await metric('ringmaster_listener_connections_parked_total')) > 0, 'agent connections were parked during the runs');
  });

  it("the pp_role from the agent's CSR reaches the compiler in X-Client-Cert and shows in $trusted", async () => {
    const web = agents.find((a) => a.certname === 'web1.test') ?? assert.fail('web1 missing');
    const r = await runAgent(web);
    assert.ok(succeeded(r), describeRun('puppet agent --test', r));
    assert.match(r.stdout, /role=webserver/);
    const plain = agents.find((a) => a.certname === 'plain1.test') ?? assert.fail('plain1 missing');
    const p = await runAgent(plain);
    assert.match(p.stdout, /role=(\s|$)/m, 'no pp_role, no value');
  });

  it('an agent in environment staging is compiled only by the staging pool', async () => {
    const stage = await newAgent('stage1.test', { extraConf: { environment: 'staging' } });
    for (let i = 0; i < 3; i++) {
      const r = await runAgent(stage);
      assert.ok(succeeded(r), describeRun('puppet agent --test (staging)', r));
      assert.match(r.stdout, new RegExp(`staging compiled-by ${confdirOf(c2).replace(/[/.]/g, '\\$&')}`));
    }
  });

  it('the reports of real runs are in the store with their status and the compiler that served the catalog', async () => {
    const fail = await newAgent('fail1.test');
    const failed = await runAgent(fail);
    assert.equal((failed.code ?? 0) & 4, 4, describeRun('puppet agent --test with a failing resource', failed));
    const ok = await runAgent(agents.find((a) => a.certname === 'plain1.test') ?? assert.fail('plain1 missing'));
    assert.ok(succeeded(ok), describeRun('puppet agent --test', ok));
    const memberOf = (r: RunResult): string => {
      const by = compiledBy(r)[0];
      return by === confdirOf(c1) ? 'c1' : by === confdirOf(c2) ? 'c2' : assert.fail(`compiled by ${by}`);
    };
    type Listed = { reports: { id: number; node: string; status: string; compiler: string | null; transactionUuid: string | null }[] };
    // Capture stores after the agent's request returns: give the queue a moment.
    const list = async (node: string): Promise<Listed['reports']> => {
      for (let i = 0; i < 50; i++) {
        const r = await ringmaster().cli(['reports', 'list', '--node', node, '--json']);
        assert.equal(r.code, 0, describeRun('ringmaster reports list', r));
        const items = (JSON.parse(r.stdout) as Listed).reports;
        if (items.length > 0) return items;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return [];
    };
    const [lastFail] = await list('fail1.test');
    assert.equal(lastFail?.status, 'failed');
    assert.equal(lastFail?.compiler, memberOf(failed));
    const [lastOk] = await list('plain1.test');
    assert.ok(lastOk && ['changed', 'unchanged'].includes(lastOk.status), JSON.stringify(lastOk));
    assert.equal(lastOk?.compiler, memberOf(ok));
    const shown = await ringmaster().cli(['reports', 'show', String(lastFail?.id), '--json']);
    assert.equal(shown.code, 0, describeRun('ringmaster reports show', shown));
    const detail = (JSON.parse(shown.stdout) as { report: { failedResources: { resource: string; message: string | null }[] } }).report;
    assert.deepEqual(detail.failedResources.map((f) => f.resource), ['Exec[fail-here]']);
  });

  it("forged X-Client headers are replaced by the real identity; another node's catalog is refused", async () => {
    const web = agents.find((a) => a.certname === 'web1.test') ?? assert.fail('web1 missing');
    const ca = await readFile(web.paths.caCert, 'utf8');
    const id: TlsIdentity = { cert: await readFile(web.paths.cert, 'utf8'), key: await readFile(web.paths.key, 'utf8') };
    const forged = { 'X-Client-Verify': 'SUCCESS', 'X-Client-DN': 'CN=stage1.test', 'X-Client-Cert': 'forged' };
    const own = await call(ringmaster().port, 'GET', '/puppet/v3/node/web1.test?environment=production', { ca, identity: id, headers: { ...forged, Accept: 'application/json' } });
    assert.equal(own.status, 200, own.body);
    assert.equal((JSON.parse(own.body) as { name: string }).name, 'web1.test');
    const other = await call(ringmaster().port, 'GET', '/puppet/v3/node/stage1.test?environment=production', { ca, identity: id, headers: forged });
    assert.equal(other.status, 403, other.body);
    const catalog = await call(ringmaster().port, 'POST', '/puppet/v3/catalog/stage1.test?environment=production', {
      ca, identity: id, headers: { ...forged, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'facts_format=application%2Fjson&facts=%7B%7D',
    });
    assert.equal(catalog.status, 403, catalog.body);
    const anonymous = await call(ringmaster().port, 'GET', '/puppet/v3/node/stage1.test?environment=production', { ca, headers: forged });
    assert.equal(anonymous.status, 403, 'without a certificate the compiler is told NONE, whatever the client claims');
  });

  it('one compiler killed with SIGKILL while agents run in a loop: every run succeeds', async () => {
    const [a1, a2] = await Promise.all([newAgent('loop1.test'), newAgent('loop2.test')]);
    const loop = async (a: Agent): Promise<RunResult[]> => {
      const out: RunResult[] = [];
      for (let i = 0; i < 3; i++) out.push(await runAgent(a));
      return out;
    };
    const running = Promise.all([loop(a1), loop(a2)]);
    await new Promise((r) => setTimeout(r, 6000));
    await c1?.kill();
    const runs = (await running).flat();
    for (const r of runs) assert.ok(succeeded(r), describeRun('puppet agent --test during the kill', r) + `\n--- ringmaster\n${ringmaster().logs().slice(-4000)}`);
    const last = [runs[2], runs[5]].flatMap((r) => (r ? compiledBy(r) : []));
    assert.deepEqual(last, [confdirOf(c2), confdirOf(c2)], 'after the kill every catalog comes from c2');
  });

  it('a revoked agent is refused right after `ringmaster ca revoke`, without a restart', async () => {
    const plain = agents.find((a) => a.certname === 'plain1.test') ?? assert.fail('plain1 missing');
    const revoke = await ringmaster().cli(['ca', 'revoke', 'plain1.test']);
    assert.equal(revoke.code, 0, describeRun('ringmaster ca revoke', revoke));
    const r = await runAgent(plain);
    assert.equal(r.code, 1, describeRun('puppet agent --test after revocation', r));
    assert.match(r.stdout + r.stderr, /403|revoked|RM_TLS_PEER_REJECTED/i);
  });
});
