import { readFileSync } from 'node:fs';
import { errorMessage } from '../lib/errors.ts';
import type { PoolConfig } from '../gateway/config.ts';
import { MemberConnections } from '../upstream/connections.ts';
import { pemBlocks } from './x509.ts';
import type { CaFetch } from './external.ts';

// ringmaster's own requests to an external CA (its certificate request, the CRL), made to the
// members of the CA's pool in their configured order until one answers. They present no client
// certificate (ringmaster may not have one yet; these CA endpoints need none) and verify the
// member against the pool's `upstreamTls.ca`, else `ca.external.caFile`.

const timeoutMs = 30_000;
const maxBodyBytes = 4 * 1024 * 1024;

export function caFetchOver(pool: PoolConfig, caFile: string): { fetch: CaFetch; close: () => Promise<void> } {
  let members: MemberConnections[] | undefined;
  const connections = (): MemberConnections[] => {
    if (members) return members;
    const ca = pemBlocks(readFileSync(pool.upstreamTls.ca ?? caFile, 'utf8'), 'CERTIFICATE');
    members = pool.members.map((m) => new MemberConnections(m.url, {
      connectTimeoutMs: pool.timeouts.connect,
      keepAliveMs: pool.timeouts.keepAlive,
      tls: { verify: pool.upstreamTls.verify, ca, serverName: pool.upstreamTls.serverName, client: undefined },
    }));
    return members;
  };
  const fetch: CaFetch = async (r) => {
    const failures: string[] = [];
    for (const [i, member] of connections().entries()) {
      try {
        return await once(member, r);
      } catch (err) {
        failures.push(`${pool.members[i]?.name ?? i}: ${errorMessage(err)}`);
      }
    }
    throw new Error(failures.length ? failures.join('; ') : 'the CA pool has no members');
  };
  return { fetch, close: async () => void (await Promise.all((members ?? []).map((m) => m.close()))) };
}

function once(member: MemberConnections, r: Parameters<CaFetch>[0]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let size = 0;
    const chunks: Buffer[] = [];
    const body = r.body === undefined ? undefined : Buffer.from(r.body);
    const headers: Record<string, string> = { accept: 'text/plain, application/json' };
    if (body) headers['content-type'] = r.contentType ?? 'text/plain';
    member.exchange({ method: r.method, path: r.path, headers, body, headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs }, {
      head: (h) => (status = h.status),
      data: (c) => {
        size += c.length;
        if (size <= maxBodyBytes) chunks.push(c);
      },
      end: () => (size > maxBodyBytes ? reject(new Error(`answer larger than ${maxBodyBytes} bytes`)) : resolve({ status, body: Buffer.concat(chunks).toString('utf8') })),
      error: reject,
    });
  });
}
