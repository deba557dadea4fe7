// One-time autosign tokens: `ringmaster ca token create` prints a token, the agent carries it as
// the challengePassword attribute of its CSR (csr_attributes.yaml), and the CA signs that one
// request. A token works once, whoever presents it afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, pollUntil, skipUnlessInstalled, uniqueCertname, type Agent, type RunResult } from '../helpers/puppet.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent');
const challengePassword = '1.2.840.113549.1.9.7';

describe('autosign by one-time token', { skip, timeout: 240_000 }, () => {
  let rm: Ringmaster | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    rm = await startRingmaster({ autosign: { tokens: true } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
  });

  const createToken = async (name: string): Promise<string> => {
    const r = await ringmaster().cli(['ca', 'token', 'create', name, '--ttl', '6h']);
    assert.equal(r.code, 0, describeRun('ringmaster ca token create', r));
    const token = r.stdout.trim().split('\n').at(-1)?.trim() ?? '';
    assert.ok(token.length >= 16, `expected a token on the last line of stdout, got ${JSON.stringify(r.stdout)}`);
    return token;
  };

  const bootstrapWith = async (certname: string, token: string): Promise<RunResult> => {
    const agent = await createAgent({
      certname,
      port: ringmaster().port,
      csrAttributes: { custom_attributes: { [challengePassword]: token } },
    });
    agents.push(agent);
    return agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
  };

  const statesOf = async (): Promise<Map<string, string>> =>
    new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));

  const waitPending = (name: string): Promise<true> =>
    pollUntil(`${name} pending`, async () => ((await statesOf()).get(name) === 'requested' ? true : undefined));

  it('signs the request carrying a fresh token, and no later one carrying it', async () => {
    const first = uniqueCertname('tok', 'token.test');
    const token = await createToken(first);

    const boot = await bootstrapWith(first, token);
    assert.equal(boot.code, 0, describeRun('bootstrap with a fresh token', boot));
    assert.equal((await statesOf()).get(first), 'signed');

    // Same token, another certname: not signed, left pending for an operator.
    const second = uniqueCertname('tok2', 'token.test');
    const reuse = await bootstrapWith(second, token);
    assert.equal(reuse.code, 1, describeRun('bootstrap reusing the token', reuse));
    await waitPending(second);

    // Same token and the original certname once its cert is cleaned: still spent.
    const clean = await ringmaster().cli(['ca', 'clean', first]);
    assert.equal(clean.code, 0, describeRun('ringmaster ca clean', clean));
    const again = await bootstrapWith(first, token);
    assert.equal(again.code, 1, describeRun('bootstrap reusing the token for the cleaned name', again));
    await waitPending(first);
  });

  it('does not sign a request with an unknown token', async () => {
    const name = uniqueCertname('bogus', 'token.test');
    const boot = await bootstrapWith(name, 'not-a-token-0123456789abcdef');
    assert.equal(boot.code, 1, describeRun('bootstrap with an unknown token', boot));
    await waitPending(name);
  });

  it('does not sign a request without a token', async () => {
    const name = uniqueCertname('none', 'token.test');
    const agent = await createAgent({ certname: name, port: ringmaster().port });
    agents.push(agent);
    const boot = await agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
    assert.equal(boot.code, 1, describeRun('bootstrap without a token', boot));
    await waitPending(name);
  });
});
