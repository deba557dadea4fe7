import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowListEntryProblem, allowListMatches, parseAllowList } from './allowlist.ts';

void test('entries match certnames as puppetserver autosign.conf does', async (t) => {
  const cases: [entry: string, certname: string, matches: boolean][] = [
    ['*', 'anything.example.com', true],
    ['*', 'localhost', true],
    ['*.foo.bar', 'a.foo.bar', true],
    ['*.foo.bar', 'a.b.c.foo.bar', true],
    // puppetserver's docstring: (glob-matches? "*.baz" "baz") => true
    ['*.foo.bar', 'foo.bar', true],
    ['*.baz', 'baz', true],
    // (glob-matches? "*.QUX" "0.1.qux") => true
    ['*.QUX', '0.1.qux', true],
    ['*.foo.bar', 'A.FOO.BAR', true],
    ['*.foo.bar', 'bar', false],
    ['*.foo.bar', 'afoo.bar', false],
    ['*.foo.bar', 'a.foo.bar.evil.com', false],
    ['*.foo.bar', 'foo.bar.baz', false],
    ['agent.example.com', 'agent.example.com', true],
    ['agent.example.com', 'other.example.com', false],
    ['agent.example.com', 'agent.example.com.evil', false],
    ['agent.example.com', 'x.agent.example.com', false],
    // exact entries are compared exactly, as puppetserver's (= line subject) does
    ['Agent.example.com', 'agent.example.com', false],
    // invalid entries never match
    ['a b', 'a b', false],
    ['foo#bar', 'foo#bar', false],
    ['*foo.bar', 'afoo.bar', false],
    ['*.', 'anything', false],
    ['a.*.bar', 'a.x.bar', false],
  ];
  for (const [entry, certname, matches] of cases) {
    await t.test(`${entry} vs ${certname}`, () => {
      assert.equal(allowListMatches([entry], certname), matches ? entry : undefined);
    });
  }
});

void test('allowListMatches returns the first entry that matched', () => {
  const entries = ['db.example.com', '*.example.com', '*'];
  assert.equal(allowListMatches(entries, 'web.example.com'), '*.example.com');
  assert.equal(allowListMatches(entries, 'db.example.com'), 'db.example.com');
  assert.equal(allowListMatches(entries, 'x.other.org'), '*');
  assert.equal(allowListMatches([], 'x.other.org'), undefined);
});

void test('entry validation', async (t) => {
  const cases: [entry: string, problem: string | undefined][] = [
    ['*', undefined],
    ['*.example.com', undefined],
    ['node-1.example.com', undefined],
    ['', 'empty entry'],
    ['foo # comment', "contains '#'"],
    ['#foo', "contains '#'"],
    ['foo bar', 'contains whitespace'],
    ['foo\tbar', 'contains whitespace'],
    ['foo ', 'contains whitespace'],
    ['*.', 'glob has an empty label'],
    ['*..com', 'glob has an empty label'],
    ['*.*.com', "'*' is only allowed as the whole first label"],
    ['*foo.com', "'*' is only allowed alone or as the first label of '*.domain'"],
    ['a*.com', "'*' is only allowed alone or as the first label of '*.domain'"],
  ];
  for (const [entry, problem] of cases) {
    await t.test(JSON.stringify(entry), () => {
      assert.equal(allowListEntryProblem(entry), problem);
    });
  }
});

void test('parseAllowList reads autosign.conf lines', () => {
  const text = [
    '# autosign.conf',
    '',
    '   ',
    'agent1.example.com',
    '*.dev.example.com',
    'bad entry',
    'trailing # comment',
    '  # indented comments are not comments to puppetserver either',
    'crlf.example.com\r',
    '*',
  ].join('\n');
  const { entries, invalid } = parseAllowList(text.split('\n'));
  assert.deepEqual(entries, ['agent1.example.com', '*.dev.example.com', 'crlf.example.com', '*']);
  assert.deepEqual(invalid, [
    { line: 6, text: 'bad entry', reason: 'contains whitespace' },
    { line: 7, text: 'trailing # comment', reason: "contains '#'" },
    { line: 8, text: '  # indented comments are not comments to puppetserver either', reason: "contains '#'" },
  ]);
});

void test('parseAllowList of nothing is empty', () => {
  assert.deepEqual(parseAllowList([]), { entries: [], invalid: [] });
  assert.deepEqual(parseAllowList(['']), { entries: [], invalid: [] });
});
