// The infrastructure CRL with real agents: after `ringmaster ca revoke` of an infrastructure node
// and of an agent, a new agent downloads a CRL that lists only the infrastructure node, verifies
// its chain with it, and the revoked agent is still refused by ringmaster's listener.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCert, parseCrlBundle } from '../../src/ca/x509.ts';
import { autosignedAgent, describeRun, pollUntil, skipUnlessInstalled, type Agent } from '../helpers/puppet.ts';
import { httpsRequest, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent');

describe('the infrastructure CRL with real agents', { skip, timeout: 240_000 }, () => {
  let rm: Ringmaster | undefined;
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    rm = await startRingmaster({ autosign: { allow: ['*.auto.test'] }, ca: { crl: { infra: true } } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
  });

  const signedAgent = (prefix: string): Promise<Agent> => autosignedAgent(ringmaster().port, prefix, agents);
  const serialOf = async (agent: Agent) => parseCert(await readFile(agent.paths.cert, 'utf8')).serial;

  it('agents get a CRL of infrastructure revocations only; the listener refuses every revoked agent', async () => {
    const [compiler, victim] = [await signedAgent('compiler'), await signedAgent('victim')];
    await writeFile(join(ringmaster().paths.caDir, 'infra_inventory.txt'), `${compiler.certname}\n`);
    const revoke = await ringmaster().cli(['ca', 'revoke', compiler.certname, victim.certname]);
    assert.equal(revoke.code, 0, describeRun('ringmaster ca revoke', revoke));

    const newcomer = await signedAgent('newcomer');
    const downloaded = parseCrlBundle(await readFile(newcomer.paths.crl, 'utf8'));
    const revoked = new Set(downloaded.flatMap((c) => c.revoked.map((r) => r.serial)));
    assert.ok(revoked.has(await serialOf(compiler)), 'the infrastructure node is revoked in the CRL agents get');
    assert.ok(!revoked.has(await serialOf(victim)), 'an agent\'s revocation is not in it');
    const verify = await newcomer.sslVerify();
    assert.equal(verify.code, 0, describeRun('puppet ssl verify with the infrastructure CRL', verify));

    const full = parseCrlBundle(await readFile(ringmaster().paths.caCrl, 'utf8'));
    const fullRevoked = new Set(full.flatMap((c) => c.revoked.map((r) => r.serial)));
    assert.ok(fullRevoked.has(await serialOf(compiler)) && fullRevoked.has(await serialOf(victim)), 'the full CRL lists both');
    const ca = await readFile(ringmaster().paths.caCert, 'utf8');
    const probe = async (agent: Agent) => httpsRequest({ port: ringmaster().port, path: '/puppet-ca/v1/certificate/ca', ca, cert: await readFile(agent.paths.cert, 'utf8'), key: await readFile(agent.paths.key, 'utf8') })
      .then((r) => r.status, (err: NodeJS.ErrnoException) => err.code ?? err.message);
    const refused = await pollUntil('the revoked agent to be refused', async () => {
      const r = await probe(victim);
      return r === 200 ? undefined : r;
    }, { timeoutMs: 10_000, intervalMs: 200 });
    assert.ok(refused === 403 || typeof refused === 'string', `refused: ${refused}`);
    assert.equal(await probe(newcomer), 200, 'an agent that was not revoked is served');
  });
});
