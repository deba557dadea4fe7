// The real `puppetserver ca` CLI (Debian's puppetserver-ca 2.4.0) as a client of ringmaster's CA
// API, authenticated by a certificate from `ringmaster ca generate operator --cli-auth`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rm as remove } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createAgent, describeRun, makeTempDir, pollUntil, puppetserverCaCli, skipUnlessInstalled, uniqueCertname, writeCaCliConf,
  type Agent, type RunResult,
} from '../helpers/puppet.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent', 'puppetserver');

describe('puppetserver ca CLI against ringmaster', { skip, timeout: 300_000 }, () => {
  let rm: Ringmaster | undefined;
  let dir = '';
  let operatorConf = '';
  let plainConf = '';
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    dir = await makeTempDir('cacli');
    rm = await startRingmaster({ autosign: { allow: ['*.auto.test'] } });
    const gen = await rm.cli(['ca', 'generate', 'operator', '--cli-auth']);
    assert.equal(gen.code, 0, describeRun('ringmaster ca generate operator --cli-auth', gen));
    const ssl = rm.paths.sslDir;
    // ssldir and cadir are the CLI's own scratch space (online generate writes there).
    operatorConf = await writeCaCliConf(join(dir, 'operator.conf'), {
      certname: 'operator',
      port: rm.port,
      ssldir: join(dir, 'operator-ssl'),
      cadir: join(dir, 'operator-ca'),
      hostcert: join(ssl, 'certs', 'operator.pem'),
      hostprivkey: join(ssl, 'private_keys', 'operator.pem'),
      localcacert: rm.paths.caCert,
      hostcrl: rm.paths.hostCrl,
    });
    // An ordinary agent certificate, without pp_cli_auth.
    const plain = await newAgent(uniqueCertname('plain', 'auto.test'));
    const boot = await plain.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 0, describeRun('bootstrap of the plain agent', boot));
    plainConf = await writeCaCliConf(join(dir, 'plain.conf'), {
      certname: plain.certname,
      port: rm.port,
      ssldir: join(dir, 'plain-ssl'),
      cadir: join(dir, 'plain-ca'),
      hostcert: plain.paths.cert,
      hostprivkey: plain.paths.key,
      localcacert: plain.paths.caCert,
      hostcrl: plain.paths.crl,
    });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
    if (dir) await remove(dir, { recursive: true, force: true });
  });

  async function newAgent(certname: string): Promise<Agent> {
    const agent = await createAgent({ certname, port: ringmaster().port });
    agents.push(agent);
    return agent;
  }

  const cli = (args: string[], confFile = operatorConf): Promise<RunResult> => puppetserverCaCli(args, { confFile });
  const states = async (): Promise<Map<string, string>> => new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));

  /** An agent that submitted its CSR and gave up waiting: a pending request. */
  const pendingAgent = async (prefix: string): Promise<Agent> => {
    const agent = await newAgent(uniqueCertname(prefix, 'manual.test'));
    const boot = await agent.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 1, describeRun('bootstrap (expected to stay unsigned)', boot));
    await pollUntil(`${agent.certname} pending`, async () => ((await states()).get(agent.certname) === 'requested' ? true : undefined));
    return agent;
  };

  it('lists pending requests, and with --all signed certificates too', async () => {
    const agent = await pendingAgent('listed');
    const pending = await cli(['list']);
    assert.equal(pending.code, 0, describeRun('puppetserver ca list', pending));
    assert.match(pending.stdout, /Requested Certificates:/);
    assert.ok(pending.stdout.includes(agent.certname), pending.stdout);
    assert.ok(!pending.stdout.includes('operator'), 'without --all only requests are listed');

    const all = await cli(['list', '--all']);
    assert.equal(all.code, 0, describeRun('puppetserver ca list --all', all));
    assert.match(all.stdout, /Signed Certificates:/);
    assert.ok(all.stdout.includes(agent.certname) && all.stdout.includes('operator'), all.stdout);
  });

  it('signs, revokes and cleans a certificate', async () => {
    const agent = await pendingAgent('lifecycle');
    const name = agent.certname;

    const sign = await cli(['sign', '--certname', name]);
    assert.equal(sign.code, 0, describeRun('puppetserver ca sign', sign));
    assert.match(sign.stdout, /Successfully signed certificate request/);
    const boot = await agent.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 0, describeRun('bootstrap after signing', boot));
    assert.equal((await states()).get(name), 'signed');

    const revoke = await cli(['revoke', '--certname', name]);
    assert.equal(revoke.code, 0, describeRun('puppetserver ca revoke', revoke));
    assert.match(revoke.stdout, /has been revoked/);
    assert.equal((await states()).get(name), 'revoked');

    const clean = await cli(['clean', '--certname', name]);
    assert.equal(clean.code, 0, describeRun('puppetserver ca clean', clean));
    assert.match(clean.stdout, /Cleaned files related to/);
    assert.equal((await states()).has(name), false);
  });

  it('signs every pending request with sign --all', async () => {
    const group = [await pendingAgent('bulk-a'), await pendingAgent('bulk-b')];
    const sign = await cli(['sign', '--all']);
    assert.equal(sign.code, 0, describeRun('puppetserver ca sign --all', sign));
    const now = await states();
    for (const a of group) assert.equal(now.get(a.certname), 'signed');
  });

  it('generates a certificate online (submit, sign, download)', async () => {
    const name = uniqueCertname('generated', 'manual.test');
    const gen = await cli(['generate', '--certname', name]);
    assert.equal(gen.code, 0, describeRun('puppetserver ca generate', gen));
    const cert = new X509Certificate(await readFile(join(dir, 'operator-ssl', 'certs', `${name}.pem`)));
    assert.ok(cert.checkIssued(new X509Certificate(await readFile(ringmaster().paths.caCert))));
    assert.equal((await states()).get(name), 'signed');
  });

  it('refuses (403) a client certificate without pp_cli_auth', async () => {
    const agent = await pendingAgent('refused');
    const list = await cli(['list', '--all'], plainConf);
    assert.equal(list.code, 1, describeRun('puppetserver ca list with an agent cert', list));
    assert.match(list.stdout + list.stderr, /code: 403/);

    const sign = await cli(['sign', '--certname', agent.certname], plainConf);
    assert.equal(sign.code, 1, describeRun('puppetserver ca sign with an agent cert', sign));
    assert.match(sign.stdout + sign.stderr, /code: 403/);
    assert.equal((await states()).get(agent.certname), 'requested');
  });
});
