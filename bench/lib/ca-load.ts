// Drives the CSR submission flow a Puppet agent uses (PUT certificate_request, then GET
// certificate) against any Puppet-compatible CA, many flows at once.
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { PreparedCsr } from './csr.ts';

export type HttpReply = { status: number; body: string };

function send(agent: Agent, port: number, method: string, path: string, body: string | undefined, timeoutMs: number): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { Accept: 'text/plain', ...(body === undefined ? {} : { 'Content-Type': 'text/plain' }) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export type SigningRun = {
  submitted: number;
  signed: number;
  errors: number;
  /** A few distinct failure descriptions, to tell why without a log. */
  errorSamples: string[];
  wallMs: number;
  /** PUT start to certificate received, for each CSR that ended with a certificate. */
  latenciesMs: number[];
};

/**
 * Pushes every CSR through `maxSockets` concurrent flows over kept-alive connections. Each flow
 * sends a PUT and, right after it, the GET for the certificate, which succeeds only if the CA
 * signed it during the PUT. Flows rather than one shared request queue: with a single queue each
 * GET would wait behind every PUT not yet sent, and the latency would only measure queue position.
 * TLS is not verified: this measures the CA, and both targets use a throw-away CA.
 */
export async function runSigning(
  port: number,
  csrs: readonly PreparedCsr[],
  { maxSockets = 64, timeoutMs = 120_000 }: { maxSockets?: number; timeoutMs?: number } = {},
): Promise<SigningRun> {
  const agent = new Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
  const latenciesMs: number[] = [];
  const samples = new Set<string>();
  let errors = 0;
  const fail = (what: string): void => {
    errors++;
    if (samples.size < 5) samples.add(what);
  };
  const one = async ({ name, pem }: PreparedCsr): Promise<void> => {
    const t0 = performance.now();
    try {
      const put = await send(agent, port, 'PUT', `/puppet-ca/v1/certificate_request/${name}`, pem, timeoutMs);
      if (put.status !== 200) return fail(`PUT ${put.status} ${put.body.slice(0, 160)}`);
      const get = await send(agent, port, 'GET', `/puppet-ca/v1/certificate/${name}`, undefined, timeoutMs);
      if (get.status !== 200 || !get.body.includes('BEGIN CERTIFICATE')) return fail(`GET ${get.status} ${get.body.slice(0, 160)}`);
      latenciesMs.push(performance.now() - t0);
    } catch (err) {
      fail((err as Error).message);
    }
  };
  let next = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: Math.min(maxSockets, csrs.length) }, async () => {
        for (let i = next++; i < csrs.length; i = next++) await one(csrs[i]!);
      }),
    );
  } finally {
    agent.destroy();
  }
  return {
    submitted: csrs.length,
    signed: latenciesMs.length,
    errors,
    errorSamples: [...samples],
    wallMs: performance.now() - started,
    latenciesMs,
  };
}
