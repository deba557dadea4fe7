// Migrating from a running Puppet Server: its CA is the single self-signed one the server makes at
// first start, with server-written files (upper-case zero-padded serial, server inventory lines),
// and an agent that server signed the ordinary way. After `ringmaster ca import`, that agent
// keeps working through ringmaster and new serials continue from the server's serial file.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, installIdentity, skipUnlessInstalled, uniqueCertname, type Agent, type Identity } from '../helpers/puppet.ts';
import { startPuppetserver, type Puppetserver } from '../helpers/puppetserver.ts';
import { httpsRequest, listCerts, nextSerial, signedSerials, startRingmasterFromImport, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessInstalled('puppet-agent', 'puppetserver');

describe('importing the CA of a puppetserver that signed agents', { skip, timeout: 400_000 }, () => {
  let ps: Puppetserver | undefined;
  let rm: Ringmaster | undefined;
  let oldIdentity: Identity | undefined;
  let importedSerials = new Map<string, bigint>();
  let importedNext = 0n;
  const oldName = uniqueCertname('agent-ps', 'import.test');
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');
  const identity = (): Identity => oldIdentity ?? assert.fail('the puppetserver-signed agent is missing');

  before(async () => {
    ps = await startPuppetserver({ certname: 'oldserver.test', autosign: true, keylength: 2048, startTimeoutMs: 180_000 });
    const first = await createAgent({ certname: oldName, port: ps.port });
    agents.push(first);
    const boot = await first.sslBootstrap({ waitforcert: 1, maxwaitforcert: 60, timeoutMs: 90_000 });
    assert.equal(boot.code, 0, describeRun('bootstrap against puppetserver', boot));
    oldIdentity = { caCert: first.paths.caCert, crl: first.paths.crl, cert: first.paths.cert, key: first.paths.key };
    // The server must be down before its CA directory changes hands, as in a real migration.
    await ps.stop();
    importedSerials = await signedSerials(join(ps.cadir, 'signed'));
    importedNext = await nextSerial(ps.cadir);
    rm = await startRingmasterFromImport(ps.cadir, { autosign: { allow: ['*.auto.test'] } });
  });
  after(async () => {
    for (const a of agents) await a.cleanup();
    await rm?.cleanup();
    await ps?.cleanup();
  });

  it('lists what the server signed', async () => {
    const states = new Map((await listCerts(ringmaster(), true)).map((s) => [s.name, s.state]));
    assert.equal(states.get(oldName), 'signed');
    assert.equal(states.get('oldserver.test'), 'signed');
  });

  it('keeps the agent working: verify, download its cert, TLS with its client cert', async () => {
    const agent = await createAgent({ certname: oldName, port: ringmaster().port });
    agents.push(agent);
    await installIdentity(agent, identity());
    const original = await readFile(agent.paths.cert, 'utf8');

    const verify = await agent.sslVerify();
    assert.equal(verify.code, 0, describeRun('puppet ssl verify', verify));
    const download = await agent.run(['ssl', 'download_cert']);
    assert.equal(download.code, 0, describeRun('puppet ssl download_cert', download));
    assert.equal(new X509Certificate(await readFile(agent.paths.cert)).fingerprint256, new X509Certificate(original).fingerprint256);

    const res = await httpsRequest({
      port: ringmaster().port,
      path: '/puppet-ca/v1/certificate/ca',
      ca: await readFile(agent.paths.caCert, 'utf8'),
      cert: original,
      key: await readFile(agent.paths.key, 'utf8'),
    });
    assert.equal(res.status, 200, res.body);
  });

  it('continues the serials after those the server issued', async () => {
    const name = uniqueCertname('after', 'auto.test');
    const agent = await createAgent({ certname: name, port: ringmaster().port });
    agents.push(agent);
    const boot = await agent.sslBootstrap({ waitforcert: 0 });
    assert.equal(boot.code, 0, describeRun('bootstrap of a new agent', boot));

    const serial = BigInt(`0x${new X509Certificate(await readFile(agent.paths.cert)).serialNumber}`);
    const max = [...importedSerials.values()].reduce((a, b) => (a > b ? a : b), 0n);
    assert.ok(importedNext > max, `the server's serial file (${importedNext}) is past its serials (${max})`);
    assert.ok(serial >= importedNext, `new serial ${serial} continues from ${importedNext}`);
    const signed = await signedSerials(join(ringmaster().paths.caDir, 'signed'));
    for (const [n, s] of importedSerials) assert.equal(signed.get(n), s, `imported ${n} keeps its serial`);
    assert.equal(new Set(signed.values()).size, signed.size, 'no serial is used twice');
  });
});
