// A policy executable, called as puppetserver calls one: the certname as its argument and the
// CSR PEM on stdin; exit 0 signs. This one signs only certnames starting with "ok-".
import assert from 'node:assert/strict';
import { chmod, readFile, rm as remove, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, makeTempDir, pollUntil, skipUnlessInstalled, uniqueCertname, type Agent } from '../helpers/puppet.ts';
import { listCerts, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent');

// Exit 2 (not signed) unless stdin really holds a CSR, so a caller that forgets stdin is caught.
const policy = `#!/bin/sh
csr=$(cat)
case "$csr" in *"BEGIN CERTIFICATE REQUEST"*) ;; *) echo "no CSR on stdin" >&2; exit 2 ;; esac
echo "$1" >> "$(dirname "$0")/calls.log"
case "$1" in ok-*) exit 0 ;; *) exit 1 ;; esac
`;

describe('autosign by policy executable', { skip, timeout: 180_000 }, () => {
  let rm: Ringmaster | undefined;
  let dir = '';
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    dir = await makeTempDir('policy');
    const path = join(dir, 'policy.sh');
    await writeFile(path, policy);
    await chmod(path, 0o755);
    rm = await startRingmaster({ autosign: { executable: { path, timeout: '10s' } } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
    if (dir) await remove(dir, { recursive: true, force: true });
  });

  const bootstrapOnce = async (certname: string) => {
    const agent = await createAgent({ certname, port: ringmaster().port });
    agents.push(agent);
    return agent.sslBootstrap({ waitforcert: 0, timeoutMs: 60_000 });
  };

  it('signs a certname the policy approves, with no manual step', async () => {
    const name = uniqueCertname('ok', 'policy.test');
    const boot = await bootstrapOnce(name);
    assert.equal(boot.code, 0, describeRun('puppet ssl bootstrap --waitforcert 0', boot));
    const calls = await readFile(join(dir, 'calls.log'), 'utf8');
    assert.ok(calls.split('\n').includes(name), `the policy was called with the certname; calls: ${calls}`);
  });

  it('leaves a certname the policy refuses pending', async () => {
    const name = uniqueCertname('no', 'policy.test');
    const boot = await bootstrapOnce(name);
    assert.equal(boot.code, 1, describeRun('puppet ssl bootstrap --waitforcert 0', boot));
    await pollUntil(`${name} pending`, async () =>
      (await listCerts(ringmaster())).some((s) => s.name === name && s.state === 'requested') ? true : undefined,
    );
    const calls = await readFile(join(dir, 'calls.log'), 'utf8');
    assert.ok(calls.split('\n').includes(name), `the policy was asked about ${name}; calls: ${calls}`);
  });
});
