// autosign.allow globs, as in puppetserver's autosign.conf: a matching agent gets its cert during
// its first CSR submission, so even `--waitforcert 0` (what `puppet agent -t` uses) succeeds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, pollUntil, skipUnlessInstalled, uniqueCertname, type Agent } from '../helpers/puppet.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent');

describe('autosign by certname glob', { skip, timeout: 180_000 }, () => {
  let rm: Ringmaster | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    rm = await startRingmaster({ autosign: { allow: ['*.auto.test'] } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
  });

  const bootstrapOnce = async (certname: string) => {
    const agent = await createAgent({ certname, port: ringmaster().port });
    agents.push(agent);
    return agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
  };

  it('signs a certname under *.auto.test with no manual step', async () => {
    const name = uniqueCertname('web', 'auto.test');
    const boot = await bootstrapOnce(name);
    assert.equal(boot.code, 0, describeRun('puppet ssl bootstrap --waitforcert 0', boot));
    assert.match(boot.stdout, /Completed SSL initialization/);
    const states = new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));
    assert.equal(states.get(name), 'signed');
  });

  it('leaves any other certname pending', async () => {
    const name = uniqueCertname('web', 'auto.test.example');
    const boot = await bootstrapOnce(name);
    assert.equal(boot.code, 1, describeRun('puppet ssl bootstrap --waitforcert 0', boot));
    await pollUntil(`${name} pending`, async () =>
      (await listCerts(ringmaster())).some((s) => s.name === name && s.state === 'requested') ? true : undefined,
    );
  });
});
