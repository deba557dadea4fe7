import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, systemClock } from '../../lib/clock.ts';
import { isRingmasterError } from '../../lib/errors.ts';
import { createAutosign, type AutosignConfig } from './autosign.ts';
import { TokenStore } from './tokens.ts';

const csrPem = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBfake\n-----END CERTIFICATE REQUEST-----\n';
const hour = 3_600_000;
const off: AutosignConfig = { all: false, allow: [], tokens: false };
let dir = '';
let tokens: TokenStore;
let clock: ManualClock;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringmaster-autosign-'));
  clock = new ManualClock();
  tokens = new TokenStore(join(dir, 'autosign-tokens.json'), { clock });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

function req(certname: string, challengePassword?: string) {
  return { certname, csrPem, challengePassword };
}

void test('nothing configured signs nothing', async () => {
  const autosign = createAutosign(off, { clock: systemClock });
  assert.deepEqual(await autosign.decide(req('a.example.com', 'whatever')), {
    sign: false, mechanism: 'none', reason: 'no autosign rule matched',
  });
});

void test('all signs everything, before any token is spent', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  const autosign = createAutosign({ ...off, all: true, tokens: true }, { tokens, clock: systemClock });
  assert.deepEqual(await autosign.decide(req('a.example.com', token)), { sign: true, mechanism: 'all', reason: 'ca.autosign.all is on' });
  assert.deepEqual(await tokens.consume('a.example.com', token), { ok: true });
});

void test('a valid token signs and is spent', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  const autosign = createAutosign({ ...off, tokens: true }, { tokens, clock: systemClock });
  assert.deepEqual(await autosign.decide(req('a.example.com', token)), {
    sign: true, mechanism: 'token', reason: 'presented a valid one-time autosign token',
  });
  assert.deepEqual(await autosign.decide(req('a.example.com', token)), {
    sign: false, mechanism: 'token', reason: 'token already used; no autosign rule matched',
  });
});

void test('an expired token says so', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  clock.advance(2 * hour);
  const autosign = createAutosign({ ...off, tokens: true }, { tokens, clock });
  assert.deepEqual(await autosign.decide(req('a.example.com', token)), {
    sign: false, mechanism: 'token', reason: 'token expired; no autosign rule matched',
  });
});

void test('a token is tried before the allow list', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  const autosign = createAutosign({ ...off, tokens: true, allow: ['*.example.com'] }, { tokens, clock: systemClock });
  assert.equal((await autosign.decide(req('a.example.com', token))).mechanism, 'token');
});

void test('a failed token falls through to later mechanisms and says why it failed', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  const autosign = createAutosign({ ...off, tokens: true, allow: ['*.example.com'] }, { tokens, clock: systemClock });
  assert.deepEqual(await autosign.decide(req('b.example.com', token)), {
    sign: true, mechanism: 'allowlist', reason: 'token was issued for a different certname; matched *.example.com in ca.autosign.allow',
  });
  assert.deepEqual(await autosign.decide(req('c.example.com', 'not-a-token')), {
    sign: true, mechanism: 'allowlist', reason: 'token not recognised; matched *.example.com in ca.autosign.allow',
  });
});

void test('tokens are ignored when disabled or when the CSR has no challengePassword', async () => {
  const { token } = await tokens.create('a.example.com', hour);
  const disabled = createAutosign(off, { tokens, clock: systemClock });
  assert.equal((await disabled.decide(req('a.example.com', token))).mechanism, 'none');
  const enabled = createAutosign({ ...off, tokens: true }, { tokens, clock: systemClock });
  assert.equal((await enabled.decide(req('a.example.com'))).mechanism, 'none');
  assert.equal((await enabled.decide(req('a.example.com', '  '))).mechanism, 'none');
  assert.deepEqual(await tokens.consume('a.example.com', token), { ok: true });
});

void test('a broken token store does not break the request', async () => {
  await writeFile(tokens.path, 'not json');
  const autosign = createAutosign({ ...off, tokens: true, allow: ['a.example.com'] }, { tokens, clock: systemClock });
  const decision = await autosign.decide(req('a.example.com', 'anything'));
  assert.equal(decision.sign, true);
  assert.match(decision.reason, /^token could not be checked \(.*autosign-tokens\.json.*\); matched a\.example\.com in ca\.autosign\.allow$/);
});

void test('the configured allow list', async () => {
  const autosign = createAutosign({ ...off, allow: ['db.example.com', '*.dev.example.com'] }, { clock: systemClock });
  assert.deepEqual(await autosign.decide(req('x.dev.example.com')), {
    sign: true, mechanism: 'allowlist', reason: 'matched *.dev.example.com in ca.autosign.allow',
  });
  assert.equal((await autosign.decide(req('db.example.com'))).reason, 'matched db.example.com in ca.autosign.allow');
  assert.equal((await autosign.decide(req('web.example.com'))).sign, false);
});

void test('an invalid configured allow list is refused at start-up', () => {
  assert.throws(
    () => createAutosign({ ...off, allow: ['ok.example.com', 'bad entry'] }, { clock: systemClock }),
    (err) => isRingmasterError(err, 'RM_CONFIG_INVALID') && err.message.includes('ca.autosign.allow[1]'),
  );
  assert.throws(() => createAutosign({ ...off, tokens: true }, { clock: systemClock }), (err) => isRingmasterError(err));
});

void test('the allow file is re-read when it changes, and a missing one approves nothing', async () => {
  const file = join(dir, 'autosign.conf');
  const warnings: string[] = [];
  const autosign = createAutosign({ ...off, allowFile: file }, { clock: systemClock, warn: (m) => warnings.push(m) });

  assert.equal((await autosign.decide(req('a.example.com'))).sign, false);
  assert.match(warnings.at(-1) ?? '', /does not exist/);

  await writeFile(file, '# managed by hand\na.example.com\nbad line\n');
  await utimes(file, 1_000, 1_000);
  assert.deepEqual(await autosign.decide(req('a.example.com')), {
    sign: true, mechanism: 'allowlist', reason: `matched a.example.com in ${file}`,
  });
  assert.equal((await autosign.decide(req('b.example.com'))).sign, false);
  assert.deepEqual(warnings.filter((w) => w.includes('bad line')), [`ignoring line 3 of ${file} ("bad line"): contains whitespace`]);

  await writeFile(file, '*.example.com\n');
  await utimes(file, 2_000, 2_000);
  assert.equal((await autosign.decide(req('b.example.com'))).reason, `matched *.example.com in ${file}`);

  await rm(file);
  assert.equal((await autosign.decide(req('b.example.com'))).sign, false);
});

void test('the configured list is consulted before the file', async () => {
  const file = join(dir, 'autosign.conf');
  await writeFile(file, '*\n');
  const autosign = createAutosign({ ...off, allow: ['a.example.com'], allowFile: file }, { clock: systemClock });
  assert.equal((await autosign.decide(req('a.example.com'))).reason, 'matched a.example.com in ca.autosign.allow');
  assert.equal((await autosign.decide(req('b.example.com'))).reason, `matched * in ${file}`);
});

void test('the policy executable decides when nothing earlier approved', async () => {
  const path = await script('policy.sh', '[ "$1" = "good.example.com" ] || { echo "no $1" >&2; exit 1; }\ngrep -q "BEGIN CERTIFICATE REQUEST" && echo "yes $1"');
  const autosign = createAutosign({ ...off, executable: { path, timeoutMs: 5000 } }, { clock: systemClock });
  assert.deepEqual(await autosign.decide(req('good.example.com')), {
    sign: true, mechanism: 'executable', reason: `policy executable ${path} exited 0`,
    output: { stdout: 'yes good.example.com\n', stderr: '' },
  });
  assert.deepEqual(await autosign.decide(req('bad.example.com')), {
    sign: false, mechanism: 'executable', reason: `policy executable ${path} exited 1`,
    output: { stdout: '', stderr: 'no bad.example.com\n' },
  });
});

void test('the allow list is tried before the executable, which then does not run', async () => {
  const marker = join(dir, 'ran');
  const path = await script('policy.sh', `touch '${marker}'\nexit 1`);
  const autosign = createAutosign({ ...off, allow: ['a.example.com'], executable: { path, timeoutMs: 5000 } }, { clock: systemClock });
  assert.equal((await autosign.decide(req('a.example.com'))).mechanism, 'allowlist');
  assert.equal(existsSync(marker), false);
  assert.equal((await autosign.decide(req('b.example.com'))).mechanism, 'executable');
  assert.equal(existsSync(marker), true);
});

void test('a failed token, then the executable: the reason carries both', async () => {
  const path = await script('policy.sh', 'exit 0');
  const autosign = createAutosign({ ...off, tokens: true, executable: { path, timeoutMs: 5000 } }, { tokens, clock: systemClock });
  assert.equal((await autosign.decide(req('a.example.com', 'psk-for-the-script'))).reason, `token not recognised; policy executable ${path} exited 0`);
});

void test('a missing or hanging executable leaves the request pending', async () => {
  const missing = join(dir, 'missing');
  const a = createAutosign({ ...off, executable: { path: missing, timeoutMs: 5000 } }, { clock: systemClock });
  assert.deepEqual(await a.decide(req('a.example.com')), {
    sign: false, mechanism: 'executable', reason: `policy executable ${missing} does not exist`, output: { stdout: '', stderr: '' },
  });
  const sleeper = await script('sleep.sh', 'exec sleep 60');
  const b = createAutosign({ ...off, executable: { path: sleeper, timeoutMs: 200 } }, { clock: systemClock });
  const decision = await b.decide(req('a.example.com'));
  assert.equal(decision.sign, false);
  assert.equal(decision.reason, `policy executable ${sleeper} timed out after 200ms`);
});
