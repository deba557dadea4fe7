import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import { errorCodes, type ErrorCode } from '../lib/error-codes.ts';
import type { Config } from '../config/load.ts';
import { SslDir } from '../ca/ssl-dir.ts';
import { isAlive, readAdminEndpoint, readPid } from '../runtime-files.ts';
import { tokenFileOf } from './auth.ts';

// The admin API as the CLI on ringmaster's host uses it: the running serve of the state directory
// (pid file, then the port it recorded), ringmaster's own certificate and key from the ssldir as
// the client identity, and the server verified as ringmaster's certificate under ringmaster's CA.

export type AdminTarget = {
  host: string;
  port: number;
  certname: string;
  ca: string;
  identity?: { cert: string; key: string } | undefined;
  token?: string | undefined;
};
export type AdminReply = { status: number; body: unknown };

export async function locateAdmin(config: Config): Promise<AdminTarget> {
  const pid = await readPid(config.stateDir);
  if (pid === undefined || !isAlive(pid)) throw new RingmasterError('RM_NOT_RUNNING', `no ringmaster is running for state directory ${config.stateDir}`);
  const endpoint = await readAdminEndpoint(config.stateDir);
  if (!endpoint || endpoint.pid !== pid) {
    throw new RingmasterError('RM_ADMIN_UNAVAILABLE', `ringmaster (pid ${pid}) has no admin API: admin.enabled is false or its admin listener could not start (see its log)`);
  }
  const ssl = new SslDir(join(config.stateDir, 'ssl'));
  let ca: string;
  try {
    ca = await readFile(ssl.caPath, 'utf8');
  } catch (err) {
    throw new RingmasterError('RM_ADMIN_UNAVAILABLE', `cannot read the CA certificate ${ssl.caPath}: ${errorMessage(err)}`, { cause: err });
  }
  const identity = await ssl.read(config.server.certname).catch(() => undefined);
  const tokenFile = tokenFileOf(config);
  const token = tokenFile ? (await readFile(tokenFile, 'utf8').catch(() => '')).trim() || undefined : undefined;
  if (!identity && !token) {
    throw new RingmasterError('RM_ADMIN_AUTH_REQUIRED', `cannot read ringmaster's certificate and key for ${config.server.certname} in ${ssl.dir}: run as the user ringmaster runs as (or root), or set admin.tokenFile`);
  }
  const host = endpoint.address === '0.0.0.0' ? '127.0.0.1' : endpoint.address === '::' ? '::1' : endpoint.address;
  return { host, port: endpoint.port, certname: config.server.certname, ca, identity: identity && { cert: identity.certPem, key: identity.keyPem }, token };
}

/** One request; any HTTP answer resolves (the caller reads the status), only transport failures reject. */
export function adminRequest(target: AdminTarget, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<AdminReply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.host,
        port: target.port,
        method,
        path,
        ca: target.ca,
        servername: target.certname,
        // The chain is verified against ringmaster's CA; the name to expect is its certname,
        // whatever address the admin API was reached on.
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          cert.subject.CN === target.certname ? undefined : new Error(`the admin API presented a certificate for ${String(cert.subject.CN)}, not ${target.certname}`),
        ...(target.identity ? { cert: target.identity.cert, key: target.identity.key } : {}),
        headers: {
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
          ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
        },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: { error: { code: 'RM_INTERNAL', message: `the admin API answered ${res.statusCode} with a body that is not JSON` } } });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (err) => reject(new RingmasterError('RM_ADMIN_UNAVAILABLE', `cannot reach the admin API at ${target.host}:${target.port}: ${errorMessage(err)}`, { cause: err })));
    req.end(payload);
  });
}

/** The RingmasterError an error answer stands for. */
export function replyError(reply: AdminReply): RingmasterError {
  const error = (reply.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' && error.code in errorCodes ? (error.code as ErrorCode) : 'RM_INTERNAL';
  const message = typeof error?.message === 'string' ? error.message : `the admin API answered ${reply.status}`;
  return new RingmasterError(code, message, { status: reply.status });
}
