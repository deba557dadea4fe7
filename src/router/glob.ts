// `*` globs for certnames, environments and extension values, as operators write them in
// autosign.conf and HAProxy ACLs: `*` matches any run of characters, everything else is literal.

export type Matcher = (value: string) => boolean;

export function globMatcher(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns.filter((p) => p.includes('*')).map(globRegExp);
  if (globs.length === 0) return (v) => exact.has(v);
  return (v) => exact.has(v) || globs.some((g) => g.test(v));
}

function globRegExp(pattern: string): RegExp {
  const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`, 's');
}

/** A stable share in [0, 10000) of a name, the same in every process and release (FNV-1a 32). */
export function hashShare(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 10000;
}
