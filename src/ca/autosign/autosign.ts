import { readFile, stat } from 'node:fs/promises';
import type { Clock } from '../../lib/clock.ts';
import { RingmasterError, errorMessage } from '../../lib/errors.ts';
import { allowListEntryProblem, allowListMatches, parseAllowList } from './allowlist.ts';
import { runPolicyExecutable } from './executable.ts';
import type { ConsumeFailure, TokenStore } from './tokens.ts';

// The one place that decides whether a CSR is signed without an operator. puppetserver has a single
// `autosign` setting that is either true, a list file or an executable; here they can be combined,
// tried in a fixed order from the cheapest and most explicit to the most open-ended, and the first
// one that approves wins. Nothing in here throws into the CSR request: every failure is a "no" with
// a reason the CA can log.

export type AutosignConfig = {
  all: boolean;
  allow: string[];
  /** An autosign.conf-style file, re-read when its mtime changes. */
  allowFile?: string;
  executable?: { path: string; timeoutMs: number };
  tokens: boolean;
};

export type AutosignMechanism = 'all' | 'allowlist' | 'token' | 'executable' | 'none';

export type AutosignDecision = {
  sign: boolean;
  mechanism: AutosignMechanism;
  reason: string;
  output?: { stdout: string; stderr: string };
};

export type AutosignRequest = { certname: string; csrPem: string; challengePassword: string | undefined };

export type Autosign = { decide(req: AutosignRequest): Promise<AutosignDecision> };

export type AutosignDeps = {
  tokens?: TokenStore;
  /** Drives the policy executable's timeout. */
  clock: Clock;
  /** Problems an operator should see once, not on every request: bad lines in the allow file. */
  warn?: (message: string) => void;
};

const tokenFailures: Record<ConsumeFailure, string> = {
  unknown: 'token not recognised',
  expired: 'token expired',
  used: 'token already used',
  'wrong-certname': 'token was issued for a different certname',
};

type AllowFileState = { key: string; entries: string[] };

function allowFileReader(path: string, warn: (message: string) => void): () => Promise<string[]> {
  let state: AllowFileState | undefined;
  let lastProblem: string | undefined;
  const problem = (message: string): string[] => {
    if (message !== lastProblem) warn(message);
    lastProblem = message;
    state = undefined;
    // Unreadable means nothing from it is approved; a stale copy could approve a name just removed.
    return [];
  };
  return async () => {
    try {
      const info = await stat(path);
      const key = `${info.ino}:${info.size}:${info.mtimeMs}`;
      if (state?.key === key) return state.entries;
      const { entries, invalid } = parseAllowList((await readFile(path, 'utf8')).split('\n'));
      for (const bad of invalid) warn(`ignoring line ${bad.line} of ${path} (${JSON.stringify(bad.text)}): ${bad.reason}`);
      state = { key, entries };
      lastProblem = undefined;
      return entries;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // As in puppetserver, a missing list file approves nothing and is not an error.
      if (code === 'ENOENT') return problem(`autosign allow file ${path} does not exist; it approves nothing`);
      return problem(`cannot read autosign allow file ${path}: ${errorMessage(err)}`);
    }
  };
}

function checkConfig(config: AutosignConfig, deps: AutosignDeps): void {
  const problems = config.allow.flatMap((entry, i) => {
    const why = allowListEntryProblem(entry);
    return why === undefined ? [] : [`ca.autosign.allow[${i}] ${JSON.stringify(entry)}: ${why}`];
  });
  if (problems.length > 0) throw new RingmasterError('RM_CONFIG_INVALID', `invalid autosign allow list: ${problems.join('; ')}`);
  if (config.tokens && deps.tokens === undefined) {
    throw new RingmasterError('RM_INTERNAL', 'autosign tokens are enabled but no token store was given');
  }
}

export function createAutosign(config: AutosignConfig, deps: AutosignDeps): Autosign {
  checkConfig(config, deps);
  const warn = deps.warn ?? (() => undefined);
  const allow = [...config.allow];
  const allowFile = config.allowFile;
  const readAllowFile = allowFile === undefined ? undefined : allowFileReader(allowFile, warn);
  const tokens = config.tokens ? deps.tokens : undefined;

  async function tryToken(store: TokenStore, certname: string, presented: string): Promise<{ ok: true } | { ok: false; note: string }> {
    try {
      const result = await store.consume(certname, presented);
      return result.ok ? result : { ok: false, note: tokenFailures[result.reason] };
    } catch (err) {
      return { ok: false, note: `token could not be checked (${errorMessage(err)})` };
    }
  }

  return {
    async decide({ certname, csrPem, challengePassword }) {
      if (config.all) return { sign: true, mechanism: 'all', reason: 'ca.autosign.all is on' };

      // A token that fails is not the end: the same CSR may still be on an allow list, or the
      // challengePassword may be a pre-shared key meant for the policy executable.
      let tokenNote: string | undefined;
      if (tokens !== undefined && challengePassword !== undefined && challengePassword.trim() !== '') {
        const token = await tryToken(tokens, certname, challengePassword);
        if (token.ok) return { sign: true, mechanism: 'token', reason: 'presented a valid one-time autosign token' };
        tokenNote = token.note;
      }
      const withNote = (reason: string): string => (tokenNote === undefined ? reason : `${tokenNote}; ${reason}`);

      const configured = allowListMatches(allow, certname);
      if (configured !== undefined) {
        return { sign: true, mechanism: 'allowlist', reason: withNote(`matched ${configured} in ca.autosign.allow`) };
      }
      if (allowFile !== undefined && readAllowFile !== undefined) {
        const fromFile = allowListMatches(await readAllowFile(), certname);
        if (fromFile !== undefined) {
          return { sign: true, mechanism: 'allowlist', reason: withNote(`matched ${fromFile} in ${allowFile}`) };
        }
      }

      if (config.executable !== undefined) {
        const run = await runPolicyExecutable({
          path: config.executable.path,
          certname,
          csrPem,
          timeoutMs: config.executable.timeoutMs,
          clock: deps.clock,
        });
        return {
          sign: run.sign,
          mechanism: 'executable',
          reason: withNote(run.reason),
          output: { stdout: run.stdout, stderr: run.stderr },
        };
      }

      return { sign: false, mechanism: tokenNote === undefined ? 'none' : 'token', reason: withNote('no autosign rule matched') };
    },
  };
}
