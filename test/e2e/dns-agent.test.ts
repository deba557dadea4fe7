// A real Puppet 7 agent finds ringmaster through DNS SRV records that ringmaster serves itself.
// The agent runs in a mount namespace whose /etc/resolv.conf points at ringmaster's responder
// (127.x.y.z:53; tests run as root), with `use_srv_records = true`, `srv_domain = example.test`,
// and a `server` name that does not exist: only `_x-puppet-ca._tcp` and `_x-puppet._tcp` can lead it
// to ringmaster. It bootstraps its certificate through ringmaster's CA, then completes
// `puppet agent --test` with a catalog from a real Puppet Server compiler behind ringmaster.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { writeFile, rm as remove } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAgent, describeRun, makeTempDir, pollUntil, puppetBin, runProcess, skipUnlessInstalled, type Agent, type RunResult } from '../helpers/puppet.ts';
import { freePort } from '../helpers/puppetserver.ts';
import { startRingmaster, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';
import { startCompiler, type Compiler } from '../helpers/compiler.ts';

const skip = skipUnlessInstalled('puppetserver', 'puppet-agent') || (process.getuid?.() === 0 ? false : 'needs root: the agent runs in a mount namespace and the responder binds port 53');

const domain = 'example.test';
const manifest = 'notify { "found ringmaster through SRV": }\n';
const succeeded = (r: RunResult): boolean => r.code === 0 || r.code === 2;

describe('a puppet agent with use_srv_records finds ringmaster through its DNS responder', { skip, timeout: 600_000 }, () => {
  // A loopback address of its own, so port 53 is free there whatever else runs on this machine.
  const dnsAddress = `127.53.${randomInt(1, 250)}.${randomInt(1, 250)}`;
  let rm: Ringmaster | undefined;
  let compiler: Compiler | undefined;
  let tree = '';
  let resolvConf = '';
  const agents: Agent[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  const options = (pools?: RingmasterOptions['pools']): RingmasterOptions => ({
    server: { certname: `rm.${domain}`, dnsAltNames: [`rm.${domain}`, 'localhost'] },
    autosign: { all: true },
    ...(pools ? { pools } : {}),
    dns: {
      enabled: true,
      address: dnsAddress,
      port: 53,
      zones: [{
        name: domain,
        ns: ['ns1'],
        // rm is this instance: its SRV port is the port its listener got.
        hosts: { ns1: { addresses: [dnsAddress], check: 'none' }, rm: { addresses: ['127.0.0.1'], check: 'self' } },
        srv: [
          { service: 'x-puppet', targets: [{ host: 'rm' }] },
          { service: 'x-puppet-ca', targets: [{ host: 'rm' }] },
        ],
      }],
    },
  });

  /** `puppet …` for this agent inside a mount namespace whose /etc/resolv.conf names the responder. */
  const inNamespace = (a: Agent, args: readonly string[], timeoutMs = 180_000): Promise<RunResult> =>
    runProcess(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, puppetBin, ...args, '--confdir', a.paths.confdir, '--vardir', a.paths.vardir],
      { env: { ...process.env, HOME: a.paths.root, LANG: 'C.UTF-8' }, cwd: a.paths.root, timeoutMs },
    );

  before(async () => {
    rm = await startRingmaster(options());
    await pollUntil('the DNS responder to listen', () => ringmaster().dnsPort, { timeoutMs: 20_000 });
    tree = await makeTempDir('dns-agent');
    resolvConf = join(tree, 'resolv.conf');
    await writeFile(resolvConf, `nameserver ${dnsAddress}\noptions timeout:2 attempts:2\n`);
    const port = await freePort();
    const out = join(tree, 'c1');
    const g = await ringmaster().cli(['compiler', 'config', 'c1', '--out', out, '--install-dir', out, '--ssldir', join(out, 'ssl'), '--confdir', join(tree, 'c1-confdir'), '--listen', `127.0.0.1:${port}`]);
    assert.equal(g.code, 0, describeRun('ringmaster compiler config c1', g));
    compiler = await startCompiler({ configDir: out, name: 'c1', manifest });
    await ringmaster().rewriteConfig(options({ compilers: { members: [{ name: 'c1', url: compiler.url }] } }));
    const reload = await ringmaster().cli(['reload']);
    assert.equal(reload.code, 0, describeRun('ringmaster reload', reload));
  });

  after(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await compiler?.cleanup();
    await rm?.cleanup();
    if (tree) await remove(tree, { recursive: true, force: true });
  });

  it('bootstraps through _x-puppet-ca._tcp and completes a run through _x-puppet._tcp', async () => {
    const agent = await createAgent({
      certname: `srv-agent.${domain}`,
      // No such name: if the agent did not use SRV it would fail here.
      server: `no-such-server.${domain}`,
      port: 1,
      extraConf: { use_srv_records: 'true', srv_domain: domain },
    });
    agents.push(agent);
    const url = (service: string, path: string): RegExp => new RegExp(`Resolved service '${service}' to https://rm\\.example\\.test:${ringmaster().port}${path}`);

    const boot = await inNamespace(agent, ['ssl', 'bootstrap', '--waitforcert', '0', '--debug']);
    assert.equal(boot.code, 0, describeRun('puppet ssl bootstrap (in the namespace)', boot) + `\n--- ringmaster\n${ringmaster().logs().slice(-3000)}`);
    assert.match(boot.stdout, url('ca', '/puppet-ca/v1'));
    assert.match(boot.stdout, /Completed SSL initialization/);

    const run = await inNamespace(agent, ['agent', '--test', '--debug', '--waitforcert', '0']);
    assert.ok(succeeded(run), describeRun('puppet agent --test (in the namespace)', run) + `\n--- ringmaster\n${ringmaster().logs().slice(-3000)}`);
    assert.match(run.stdout, url('puppet', '/puppet/v3'));
    assert.match(run.stdout, /Notice: found ringmaster through SRV/);
    assert.match(run.stdout, /Applied catalog/);
  });
});
