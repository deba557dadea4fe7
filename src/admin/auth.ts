import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { Config } from '../config/load.ts';
import { oids } from '../ca/oids.ts';
import type { Peer } from '../listener/peer.ts';
import { globMatcher } from '../router/glob.ts';

// Who may use the admin API. A verified client certificate is admitted when it is ringmaster's
// own (the CLI on this host reads it from the ssldir), matches `admin.allow`, or carries
// pp_cli_auth (the operator certificates `ringmaster ca generate --cli-auth` mints, which the CA
// API already treats as administrators). Otherwise a bearer token equal to `admin.tokenFile`'s
// content is admitted, for automation that holds no certificate (an autoscaling hook).

export type AdminAuthSettings = { ownCertname: string; allow: readonly string[]; tokenFile: string | undefined };
export type Credentials = { peer: Peer; authorization: string | undefined };
/** Resolves with who is asking (certname, or "token"), or rejects with the RM_* refusal. */
export type AdminAuth = (c: Credentials) => Promise<string>;

/** `admin.tokenFile` relative to the config file, as every other path in it. */
export function tokenFileOf(config: Pick<Config, 'admin' | 'configFile'>): string | undefined {
  const file = config.admin.tokenFile;
  if (file === undefined) return undefined;
  return resolve(config.configFile ? dirname(config.configFile) : process.cwd(), file);
}

export function createAdminAuth(settings: AdminAuthSettings, log: Log, readToken: (path: string) => Promise<string> = (p) => readFile(p, 'utf8')): AdminAuth {
  const allowed = globMatcher(settings.allow);
  return async ({ peer, authorization }) => {
    if (peer.kind === 'rejected') {
      throw new RingmasterError('RM_TLS_PEER_REJECTED', `client certificate${peer.certname ? ` for ${peer.certname}` : ''} refused: ${peer.reason}`);
    }
    if (peer.kind === 'verified') {
      const cliAuth = peer.cert.extensions.some((e) => e.oid === oids.ppCliAuth && e.text === 'true');
      if (peer.certname === settings.ownCertname || cliAuth || allowed(peer.certname)) return peer.certname;
    }
    if (authorization !== undefined) {
      const presented = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization)?.[1];
      if (presented !== undefined && settings.tokenFile !== undefined) {
        const expected = await currentToken(settings.tokenFile, readToken, log);
        if (expected !== undefined && sameSecret(presented, expected)) return 'token';
      }
      throw new RingmasterError('RM_ADMIN_TOKEN_INVALID', settings.tokenFile === undefined ? 'bearer tokens are not accepted: admin.tokenFile is not set' : 'the bearer token is not valid');
    }
    if (peer.kind === 'verified') {
      throw new RingmasterError('RM_AUTH_FORBIDDEN', `${peer.certname} may not use the admin API (needs ringmaster's own certificate, pp_cli_auth, or a name in admin.allow)`);
    }
    throw new RingmasterError('RM_ADMIN_AUTH_REQUIRED', 'the admin API needs a client certificate signed by ringmaster\'s CA, or a bearer token');
  };
}

async function currentToken(path: string, readToken: (path: string) => Promise<string>, log: Log): Promise<string | undefined> {
  try {
    const token = (await readToken(path)).trim();
    // An empty file must not make an empty token valid.
    return token === '' ? undefined : token;
  } catch (err) {
    log.error({ tokenFile: path, err: errorMessage(err) }, 'cannot read admin.tokenFile; bearer tokens are refused');
    return undefined;
  }
}

/** Constant-time comparison; hashing first gives both sides one length, so the length leaks nothing either. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
