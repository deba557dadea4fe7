// puppetserver's autosign.conf rules (`line-matches?`, `glob-matches?` in its certificate-authority
// namespace), shared by the `ca.autosign.allow` list in our configuration and autosign.conf-style
// files, so an operator can move a list between the two without it changing meaning.

export type AllowListProblem = { line: number; text: string; reason: string };

/**
 * Why an entry can never be used, or undefined when it is a valid entry. puppetserver rejects `#`
 * and spaces; any whitespace is rejected here because a tab or a stray CR is never intended.
 * puppetserver also treats any entry that merely starts with `*` as a glob (`*foo.bar` becomes
 * "anything under bar"), and `*.` as matching everything; those read like typos, so they are
 * reported instead of being honoured.
 */
export function allowListEntryProblem(entry: string): string | undefined {
  if (entry === '') return 'empty entry';
  if (entry.includes('#')) return "contains '#'";
  if (/\s/.test(entry)) return 'contains whitespace';
  if (entry === '*') return undefined;
  if (entry.startsWith('*.')) {
    const labels = entry.slice(2).split('.');
    if (labels.some((l) => l === '')) return 'glob has an empty label';
    if (labels.some((l) => l.includes('*'))) return "'*' is only allowed as the whole first label";
    return undefined;
  }
  if (entry.includes('*')) return "'*' is only allowed alone or as the first label of '*.domain'";
  return undefined;
}

/**
 * Reads entries the way puppetserver reads autosign.conf: blank lines and lines starting with `#`
 * are skipped, invalid lines are reported (with 1-based line numbers) and left out.
 */
export function parseAllowList(lines: string[]): { entries: string[]; invalid: AllowListProblem[] } {
  const entries: string[] = [];
  const invalid: AllowListProblem[] = [];
  lines.forEach((raw, index) => {
    // A file written on Windows still splits cleanly on \n; the CR is not part of the entry.
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '' || text.startsWith('#')) return;
    const reason = allowListEntryProblem(text);
    if (reason === undefined) entries.push(text);
    else invalid.push({ line: index + 1, text, reason });
  });
  return { entries, invalid };
}

function reversedLabels(name: string): string[] {
  return name.toLowerCase().split('.').reverse();
}

/** `*.foo.bar` matches `foo.bar` and anything below it, ignoring case, as puppetserver does. */
function globMatches(glob: string, certname: string): boolean {
  const suffix = reversedLabels(glob.slice(2));
  const name = reversedLabels(certname);
  if (name.length < suffix.length) return false;
  return suffix.every((label, i) => name[i] === label);
}

/** One entry against one certname; invalid entries match nothing. */
export function allowListEntryMatches(entry: string, certname: string): boolean {
  if (allowListEntryProblem(entry) !== undefined) return false;
  if (entry === '*') return true;
  if (entry.startsWith('*.')) return globMatches(entry, certname);
  return entry === certname;
}

/** The first entry that matches the certname, for the log, or undefined. */
export function allowListMatches(entries: readonly string[], certname: string): string | undefined {
  return entries.find((entry) => allowListEntryMatches(entry, certname));
}
