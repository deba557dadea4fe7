// Revocation takes effect on the running listener: after `ringmaster ca revoke`, the agent's next
// TLS connection with its certificate is refused, without restarting `ringmaster serve`.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { autosignedAgent, describeRun, pollUntil, runProcess, skipUnlessInstalled, type Agent } from '../helpers/puppet.ts';
import { httpsRequest, listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent', 'openssl');

/** What a request with this agent's certificate gets: an HTTP status, or the TLS/socket error. */
async function probe(rm: Ringmaster, agent: Agent): Promise<{ status?: number; error?: string }> {
  try {
    const res = await httpsRequest({
      port: rm.port,
      path: '/puppet-ca/v1/certificate/ca',
      ca: await readFile(rm.paths.caCert, 'utf8'),
      cert: await readFile(agent.paths.cert, 'utf8'),
      key: await readFile(agent.paths.key, 'utf8'),
    });
    return { status: res.status };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

describe('revocation through the running listener', { skip, timeout: 180_000 }, () => {
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

  const signedAgent = (prefix: string): Promise<Agent> => autosignedAgent(ringmaster().port, prefix, agents);

  it('refuses the revoked agent at once, keeps serving others, and lists its serial in the CRL', async () => {
    const victim = await signedAgent('revoked');
    const bystander = await signedAgent('bystander');
    assert.deepEqual(await probe(ringmaster(), victim), { status: 200 }, 'before revocation the agent is served');
    const pid = ringmaster().pid;

    const revoke = await ringmaster().cli(['ca', 'revoke', victim.certname]);
    assert.equal(revoke.code, 0, describeRun('ringmaster ca revoke', revoke));

    // Puppet Server's Jetty refuses a revoked client certificate in the handshake; a 401/403 is
    // accepted too. The CRL reload may take a moment, hence the short poll.
    const refused = await pollUntil(
      'the revoked certificate to be refused',
      async () => {
        const r = await probe(ringmaster(), victim);
        return r.error !== undefined || r.status === 401 || r.status === 403 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.ok(refused, 'refused');
    assert.equal(ringmaster().pid, pid, 'the same serve process, no restart');
    assert.deepEqual(await probe(ringmaster(), bystander), { status: 200 }, 'other agents are still served');

    const serial = BigInt(`0x${new X509Certificate(await readFile(victim.paths.cert)).serialNumber}`);
    const crl = await runProcess('openssl', ['crl', '-in', ringmaster().paths.caCrl, '-text', '-noout']);
    assert.equal(crl.code, 0, describeRun('openssl crl', crl));
    const listed = [...crl.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => BigInt(`0x${m[1]}`));
    assert.ok(listed.includes(serial), `serial ${serial} in the CRL:\n${crl.stdout}`);

    const states = new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));
    assert.equal(states.get(victim.certname), 'revoked');
    assert.equal(states.get(bystander.certname), 'signed');
  });
});
