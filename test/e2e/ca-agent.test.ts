// A real Puppet 7 agent bootstraps against `ringmaster serve` and waits, polling, until an
// operator signs its request with `ringmaster ca sign`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, pollUntil, skipUnlessInstalled, uniqueCertname, type Agent } from '../helpers/puppet.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent');

describe('puppet ssl bootstrap with manual signing', { skip, timeout: 300_000 }, () => {
  let rm: Ringmaster | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    rm = await startRingmaster();
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
  });

  const newAgent = async (certname: string): Promise<Agent> => {
    const agent = await createAgent({ certname, port: ringmaster().port });
    agents.push(agent);
    return agent;
  };

  const waitPending = (name: string): Promise<true> =>
    pollUntil(
      `${name} to be listed as requested by ringmaster ca list`,
      async () => ((await listCerts(ringmaster())).some((s) => s.name === name && s.state === 'requested') ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 250 },
    );

  it('waits with waitforcert until `ringmaster ca sign` signs it; `puppet ssl verify` accepts the cert', async () => {
    const name = uniqueCertname('manual');
    const agent = await newAgent(name);
    const bootstrap = agent.sslBootstrap({ waitforcert: 1, maxwaitforcert: 120, timeoutMs: 150_000 });
    await waitPending(name);
    assert.equal(existsSync(agent.paths.cert), false, 'the agent must not hold a certificate before signing');

    const sign = await ringmaster().cli(['ca', 'sign', name]);
    assert.equal(sign.code, 0, describeRun('ringmaster ca sign', sign));

    const boot = await bootstrap;
    assert.equal(boot.code, 0, describeRun('puppet ssl bootstrap', boot));
    assert.match(boot.stdout, /Completed SSL initialization/);
    // Each poll re-submits the CSR; puppetserver answers 400 for a pending one and the agent moves
    // on to fetching its cert. Any other answer is logged as a failure to submit.
    assert.doesNotMatch(boot.stdout + boot.stderr, /Failed to submit the CSR/);

    const cert = new X509Certificate(await readFile(agent.paths.cert));
    const ca = new X509Certificate(await readFile(ringmaster().paths.caCert));
    assert.equal(cert.subject, `CN=${name}`);
    assert.ok(cert.checkIssued(ca), 'the agent cert must be issued by the ringmaster CA');
    assert.equal(await readFile(agent.paths.caCert, 'utf8'), await readFile(ringmaster().paths.caCert, 'utf8'));

    const verify = await agent.sslVerify();
    assert.equal(verify.code, 0, describeRun('puppet ssl verify', verify));
    assert.match(verify.stdout, new RegExp(`Verified client certificate 'CN=${name.replace(/\./g, '\\.')}'`));

    const all = await listCerts(ringmaster(), true);
    assert.equal(all.find((s) => s.name === name)?.state, 'signed');
  });

  it('gives up at once with waitforcert 0 while the request is pending, and keeps it pending', async () => {
    const name = uniqueCertname('pending');
    const agent = await newAgent(name);
    const boot = await agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
    assert.equal(boot.code, 1, describeRun('puppet ssl bootstrap --waitforcert 0', boot));
    assert.match(boot.stdout + boot.stderr, /waitforcert setting is set to 0/);
    await waitPending(name);

    // A second attempt re-submits the same CSR: still pending, still not signed.
    const again = await agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
    assert.equal(again.code, 1, describeRun('second bootstrap', again));
    assert.doesNotMatch(again.stdout + again.stderr, /Failed to submit the CSR/);
  });

  it('`ringmaster ca sign --all` signs every pending request', async () => {
    const names = [uniqueCertname('all-a'), uniqueCertname('all-b')];
    const group = await Promise.all(names.map((n) => newAgent(n)));
    const first = await Promise.all(group.map((a) => a.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 })));
    for (const r of first) assert.equal(r.code, 1, describeRun('bootstrap before signing', r));
    for (const n of names) await waitPending(n);

    const sign = await ringmaster().cli(['ca', 'sign', '--all']);
    assert.equal(sign.code, 0, describeRun('ringmaster ca sign --all', sign));

    const second = await Promise.all(group.map((a) => a.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 })));
    for (const r of second) assert.equal(r.code, 0, describeRun('bootstrap after signing', r));
    const states = new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));
    for (const n of names) assert.equal(states.get(n), 'signed');
  });
});
