// HOCON (Puppet Server's config format) as far as the generated files need it. Every string is
// written as a JSON string: HOCON reads those verbatim, while an unquoted value would treat
// characters such as ':', '$', '#' or '//' specially (an IPv6 host, a path with '#').

export function hoconString(value: string): string {
  return JSON.stringify(value);
}

export type HoconValue = string | number | boolean;

/** One object of scalar fields, e.g. `webserver: { … }`, with an optional comment per field. */
export function hoconObject(key: string, fields: [string, HoconValue, string?][]): string {
  const lines = fields.flatMap(([k, v, comment]) => [
    ...(comment ? comment.split('\n').map((c) => `    # ${c}`) : []),
    `    ${k}: ${typeof v === 'string' ? hoconString(v) : String(v)}`,
  ]);
  return [`${key}: {`, ...lines, '}'].join('\n');
}
