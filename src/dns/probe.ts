import { request } from 'node:https';
import { errorMessage } from '../lib/errors.ts';
import type { ProbeResult } from '../pool/member.ts';
import type { HostProbe } from './health.ts';

// The health probe of a DNS host: GET https://<name>:<port>/status/v1/simple, 2xx is healthy.
// Another ringmaster instance answers it while its gateway runs, a Puppet Server while it is up.
// It connects to the host's first address when it has one, so it does not depend on the DNS it
// is part of, and checks the certificate against ringmaster's CA and the host's name.

export type ProbeTls = { ca: string[]; verify: boolean };

export function httpsStatusProbe(tls: ProbeTls): HostProbe {
  return (host, timeoutMs, path) =>
    new Promise<ProbeResult>((resolve) => {
      let settled = false;
      const done = (r: ProbeResult): void => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      const req = request(
        {
          host: host.addresses[0] ?? host.name,
          port: host.port,
          path,
          method: 'GET',
          servername: host.name,
          headers: { host: `${host.name}:${host.port}`, accept: 'text/plain' },
          ca: tls.ca,
          rejectUnauthorized: tls.verify,
          agent: false,
          timeout: timeoutMs,
        },
        (res) => {
          res.resume();
          const status = res.statusCode ?? 0;
          done(status >= 200 && status < 300 ? { ok: true } : { ok: false, reason: `status ${status}` });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        done({ ok: false, reason: `no answer within ${timeoutMs} ms` });
      });
      req.on('error', (err) => done({ ok: false, reason: errorMessage(err) }));
      req.end();
    });
}
