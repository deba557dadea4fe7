import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRingmasterError } from '../lib/errors.ts';
import { checkOutputDir, writeOutputDir } from './output-dir.ts';
import type { GeneratedFile } from './files.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rm-compiler-out-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const files: GeneratedFile[] = [
  { path: 'conf.d/webserver.conf', content: 'webserver: {}\n', mode: 0o644 },
  { path: 'ssl/certs/c1.pem', content: 'CERT\n', mode: 0o644 },
  { path: 'ssl/private_keys/c1.pem', content: 'KEY\n', mode: 0o600 },
];
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
const notEmpty = (err: unknown) => isRingmasterError(err, 'RM_CLI_USAGE') && err.message.includes('not empty');

test('writes the files with their modes into a new directory, leaving no temporary entry', async (t) => {
  const root = await tempDir(t);
  const out = join(root, 'deep', 'c1');
  await checkOutputDir(out, false);
  await writeOutputDir(out, files, { force: false });
  assert.equal(await readFile(join(out, 'ssl/private_keys/c1.pem'), 'utf8'), 'KEY\n');
  assert.equal(await mode(join(out, 'ssl/private_keys/c1.pem')), 0o600);
  assert.equal(await mode(join(out, 'ssl/certs/c1.pem')), 0o644);
  assert.equal((await mode(join(out, 'ssl/private_keys'))) & 0o007, 0, 'the key directory is not world-readable');
  assert.deepEqual(await readdir(join(root, 'deep')), ['c1']);
});

test('an empty directory is filled; a non-empty one is refused unless forced, then replaced whole', async (t) => {
  const root = await tempDir(t);
  const out = join(root, 'c1');
  await mkdir(out);
  await writeOutputDir(out, files, { force: false });
  await assert.rejects(checkOutputDir(out, false), notEmpty);
  await assert.rejects(writeOutputDir(out, files, { force: false }), notEmpty);
  assert.deepEqual(await readdir(root), ['c1'], 'the refused attempt left nothing');
  await writeFile(join(out, 'stale'), 'x');
  await checkOutputDir(out, true);
  await writeOutputDir(out, files, { force: true });
  assert.deepEqual((await readdir(out)).sort(), ['conf.d', 'ssl']);
  assert.deepEqual(await readdir(root), ['c1']);
});

test('a file in the way is refused; a failure midway leaves nothing', async (t) => {
  const root = await tempDir(t);
  await writeFile(join(root, 'file'), 'x');
  await assert.rejects(checkOutputDir(join(root, 'file'), true), (err: unknown) => isRingmasterError(err, 'RM_CLI_USAGE'));
  const bad: GeneratedFile[] = [...files, { path: '../escape', content: '', mode: 0o644 }];
  await assert.rejects(writeOutputDir(join(root, 'c1'), bad, { force: false }), /leaves the output directory/);
  const twice: GeneratedFile[] = [...files, files[0] as GeneratedFile];
  await assert.rejects(writeOutputDir(join(root, 'c1'), twice, { force: false }), /EEXIST/);
  assert.deepEqual(await readdir(root), ['file']);
});
