import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../lib/clock.ts';
import { resolveConfig } from '../config/load.ts';
import { CertificateAuthority } from '../ca/authority.ts';
import { silentLog } from '../observability/log.ts';
import { issueSimIdentities, type SimIdentity } from './identities.ts';

// Helpers for the simulator's tests: plain HTTP calls on fresh connections, polling for a
// condition that real sockets bring about, and a throwaway CA with a server certificate and
// agent identities.

export type HttpReply = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

export function httpCall(port: number, method: string, path: string, o: { headers?: Record<string, string>; body?: string } = {}): Promise<HttpReply> {
  return new Promise<HttpReply>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: o.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Polls in real time: sockets, not the test's clock, decide when requests arrive. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export type TestCa = { caPem: string; server: { key: string; cert: string }; identities: SimIdentity[]; cleanup(): Promise<void> };

/** A CA in a temporary directory, a certificate for 127.0.0.1/localhost, and `agents` identities. */
export async function testCa(agents: number): Promise<TestCa> {
  const stateDir = await mkdtemp(join(tmpdir(), 'rm-sim-'));
  const c = resolveConfig({ ca: { keyLength: 2048 } }, { stateDir });
  const ca = await CertificateAuthority.create({ ...c.ca, stateDir, serverCertname: 'compiler.sim.test' }, { clock: systemClock, log: silentLog });
  const server = await ca.ensureServerCert('compiler.sim.test', ['localhost', '127.0.0.1']);
  const identities = await issueSimIdentities(ca, agents);
  return { caPem: ca.caBundlePem, server: { key: server.keyPem, cert: server.certPem }, identities, cleanup: () => rm(stateDir, { recursive: true, force: true }) };
}
