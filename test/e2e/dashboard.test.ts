// The web dashboard in real headless Chromium against a running `ringmaster serve` with a pool of
// scripted compilers, stored reports and a real Puppet agent waiting for its certificate: the
// pages load without console errors and show that fleet, a drain and an enable from the pools
// page take effect, and the agent's request signed on the CA page gets it its certificate; a
// second ringmaster using the first as its external CA shows that CA on its CA page.
// Screenshots of every page go to test-results/dashboard/.
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteReportStore } from '../../src/reports/sqlite-store.ts';
import { newReport } from '../../src/reports/store-conformance.ts';
import { openBrowser, skipUnlessChromium, type Session } from '../helpers/browser.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { createAgent, describeRun, pollUntil, skipUnlessInstalled, uniqueCertname, type Agent, type RunResult } from '../helpers/puppet.ts';
import { httpsRequest, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const skip = skipUnlessChromium() || skipUnlessInstalled('puppet-agent');

describe('the dashboard in Chromium', { skip, timeout: 300_000 }, () => {
  let rm: Ringmaster;
  let external: Ringmaster | undefined;
  let a: Backend;
  let b: Backend;
  let browser: Session;
  let agent: Agent | undefined;
  let ca: string;
  let failedId = 0;
  const token = randomBytes(24).toString('hex');
  const held: (() => void)[] = [];
  const base = () => `https://127.0.0.1:${rm.adminPort}`;

  const adminGet = async (path: string): Promise<unknown> => {
    const r = await httpsRequest({ port: rm.adminPort!, path, ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body) as unknown;
  };
  const member = async (name: string) => ((await adminGet(`/admin/v1/pools/compilers/members/${name}`)) as { member: { draining: boolean; inFlight: number } }).member;

  before(async () => {
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    for (const backend of [a, b]) {
      backend.handle((req, res) => {
        const send = () => res.writeHead(200, { 'content-type': 'application/json', 'x-backend': backend.name }).end('{}');
        if (req.url?.includes('/hold/')) held.push(send);
        else send();
      });
    }
    rm = await startRingmaster({
      pools: { compilers: { members: [{ name: 'a', url: a.url, maxInFlight: 4 }, { name: 'b', url: b.url, maxInFlight: 4 }], healthCheck: { active: { interval: '500ms' } } } },
      admin: { tokenFile: 'admin-token' },
      // The second ringmaster of the external-CA case uses this one as its CA.
      autosign: { allow: ['rm-external.test'] },
      prepare: async ({ configFile }) => writeFile(join(configFile, '..', 'admin-token'), `${token}\n`, { mode: 0o600 }),
    });
    ca = await readFile(rm.paths.caCert, 'utf8');
    // A fleet's last hour, through the store API: three nodes every five minutes, a few failures.
    const store = await SqliteReportStore.openIn(rm.stateDir);
    const now = Date.now();
    for (let i = 0; i < 36; i++) {
      const node = ['web01.example.com', 'web02.example.com', 'db01.example.com'][i % 3]!;
      const status = node === 'db01.example.com' && i > 20 ? 'failed' : i % 4 === 0 ? 'changed' : 'unchanged';
      const id = await store.add(newReport({ node, status, receivedAt: now - (36 - i) * 100_000, compiler: i % 2 ? 'a' : 'b' }));
      if (status === 'failed') failedId = id;
    }
    await store.close();
    browser = await openBrowser();
  });

  after(async () => {
    for (const release of held.splice(0)) release();
    await browser?.close();
    await agent?.cleanup();
    await external?.cleanup();
    await rm?.cleanup();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('asks for the token, then shows the fleet from the stored reports', async () => {
    const { page } = browser;
    await page.goto(`${base()}/`);
    await page.getByTestId('login').waitFor();
    await browser.screenshot('0-login');
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-submit').click();
    await page.getByTestId('nodes-seen').waitFor();
    assert.equal(await page.getByTestId('nodes-seen').locator('.card-value').textContent(), '3');
    assert.equal(await page.getByTestId('last-failed').locator('.card-value').textContent(), '1');
    assert.equal(await page.getByTestId('last-unchanged').locator('.card-value').textContent(), '2');
    assert.ok(Number(await page.getByTestId('failures').locator('.card-value').textContent()) > 0);
    assert.ok(Number(await page.getByTestId('runs-per-minute').locator('.card-value').textContent()) > 0);
    assert.ok((await page.locator('svg.chart rect.s-unchanged').count()) > 0, 'the runs-over-time chart has bars');
    assert.equal(await page.getByTestId('recent-failures').locator('tbody tr').first().locator('td').nth(1).textContent(), 'db01.example.com');
    await browser.screenshot('1-fleet');
  });

  it('pools: live health and load; Drain empties a member and Enable brings it back', async () => {
    const { page } = browser;
    const inFlight = httpsRequest({ port: rm.port, path: '/puppet/v3/node/hold/1?environment=production', ca });
    await pollUntil('a request held by a member', () => held[0], { timeoutMs: 5000, intervalMs: 10 });
    await page.goto(`${base()}/#/pools`);
    const rowA = page.getByTestId('member-compilers-a');
    await rowA.waitFor();
    await pollUntil('both members healthy on the page', async () => ((await page.getByTestId('members-compilers').locator('.b-ok', { hasText: 'healthy' }).count()) === 2 ? true : undefined), { timeoutMs: 15_000, intervalMs: 200 });
    await pollUntil('the held request shown in flight', async () => (/^1 \/ 4$/.test((await page.getByTestId('members-compilers').locator('td[data-testid^="inflight-"]', { hasText: '1 / 4' }).first().textContent().catch(() => '')) ?? '') ? true : undefined), { timeoutMs: 10_000, intervalMs: 200 });
    assert.ok((await page.locator('svg.chart rect.load').count()) >= 1, 'the member load chart is drawn');
    await browser.screenshot('2-pools-load');
    for (const release of held.splice(0)) release();
    assert.equal((await inFlight).status, 200);

    await page.getByTestId('drain-compilers-a').click();
    await page.getByTestId('flash').filter({ hasText: 'a is draining' }).waitFor();
    await page.locator('[data-testid="member-compilers-a"][data-draining="true"]').waitFor();
    const drained = await member('a');
    assert.equal(drained.draining, true);
    assert.equal(drained.inFlight, 0);
    for (let i = 0; i < 4; i++) {
      const r = await httpsRequest({ port: rm.port, path: '/puppet/v3/node/x.test?environment=production', ca });
      assert.equal(r.headers['x-backend'], 'b', 'a drained member gets no requests');
    }
    await browser.screenshot('3-pools-drained');
    await page.getByTestId('enable-compilers-a').click();
    await page.locator('[data-testid="member-compilers-a"][data-draining="false"]').waitFor();
    assert.equal((await member('a')).draining, false);
  });

  it('CA: a real agent waiting with waitforcert gets its certificate once signed on the page', async () => {
    const { page } = browser;
    const name = uniqueCertname('dash');
    agent = await createAgent({ certname: name, port: rm.port });
    const bootstrap: Promise<RunResult> = agent.sslBootstrap({ waitforcert: 1, maxwaitforcert: 120, timeoutMs: 150_000 });
    await page.goto(`${base()}/#/ca`);
    const row = page.getByTestId(`csr-${name}`);
    await row.waitFor({ timeout: 60_000 });
    await browser.screenshot('4-ca-pending');
    await page.getByTestId(`sign-${name}`).click();
    await page.getByTestId('flash').filter({ hasText: `Signed ${name}` }).waitFor();
    await row.waitFor({ state: 'detached' });
    const boot = await bootstrap;
    assert.equal(boot.code, 0, describeRun('puppet ssl bootstrap', boot));
    const cert = new X509Certificate(await readFile(agent.paths.cert));
    assert.equal(cert.subject, `CN=${name}`);
    assert.ok(cert.checkIssued(new X509Certificate(ca)));
    await browser.screenshot('5-ca-signed');
  });

  it('node page: run history with the compiler of each run; report page: the failed resources', async () => {
    const { page } = browser;
    await page.goto(`${base()}/#/nodes`);
    await page.getByTestId('node-db01.example.com').waitFor();
    await browser.screenshot('6-nodes');
    await page.getByTestId('node-db01.example.com').getByRole('link').click();
    await page.getByTestId('runs').waitFor();
    assert.equal(await page.getByTestId('runs').locator('tbody tr').count(), 12);
    const compilers = await page.getByTestId('runs').locator('td[data-testid^="compiler-"]').allTextContents();
    assert.deepEqual([...new Set(compilers)].sort(), ['a', 'b']);
    await browser.screenshot('7-node');
    await page.getByTestId(`run-${failedId}`).getByRole('link').click();
    await page.getByTestId('failed-resources').waitFor();
    const resources = await page.getByTestId('failed-resources').locator('tbody tr td:first-child').allTextContents();
    assert.ok(resources.includes('Exec[migrate-db]'), resources.join(', '));
    await browser.screenshot('8-report');
  });

  it('CA page with an external CA: that CA, the CRL in use and ringmaster\'s own certificate, nothing to sign', async () => {
    const { page } = browser;
    // A second ringmaster with `ca.enabled: false`, whose CA is the first one, reached as a pool.
    external = await startRingmaster({
      server: { certname: 'rm-external.test', dnsAltNames: [] },
      ca: { enabled: false, external: { pool: 'ca', caFile: rm.paths.caCert, crlRefresh: '1s', waitForCert: '30s' } },
      pools: {
        ca: { members: [{ name: 'first', url: `https://localhost:${rm.port}` }], healthCheck: { active: { enabled: false } } },
        compilers: { members: [{ name: 'a', url: a.url }], healthCheck: { active: { enabled: false } } },
      },
      admin: { tokenFile: 'admin-token' },
      prepare: async ({ configFile }) => writeFile(join(configFile, '..', 'admin-token'), `${token}\n`, { mode: 0o600 }),
    });
    const caSubject = new X509Certificate(ca).subject.replace(/\n/g, ',');
    await page.goto(`https://127.0.0.1:${external.adminPort}/#/ca`);
    // Another origin: the token is asked for again.
    await page.getByTestId('login').waitFor();
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('token-submit').click();
    await page.getByTestId('external-ca').waitFor();
    assert.equal(await page.getByTestId('external-ca-crl-failures').locator('.card-value').textContent(), '0');
    assert.match((await page.getByTestId('external-ca-own').locator('.card-label').textContent()) ?? '', /^rm-external\.test expires$/);
    assert.match((await page.getByTestId('external-ca-expires').locator('.card-value').textContent()) ?? '', /^\d+ d$/);
    const line = (await page.getByTestId('external-ca-subject').textContent()) ?? '';
    assert.ok(line.includes('reached through pool ca'), line);
    assert.ok(line.includes(caSubject.replace(/^CN=/, '')), `${line} names ${caSubject}`);
    assert.equal(await page.getByTestId('pending').count(), 0, 'no pending-requests table');
    await browser.screenshot('9-ca-external');
  });

  it('no page logged a console error or threw', () => {
    assert.deepEqual(browser.problems, []);
  });
});
