// The transaction_uuid an agent names in its catalog request (a query parameter on GET, a form
// field in the POST body), which ties the catalog's compiler to the report that follows. It is
// read off the bytes as they are: turning a POST body (the agent's facts, often 100 KB or more)
// into a string to match a pattern cost a copy per catalog, and the match, a slice of that
// string, kept the whole copy alive for as long as the reports store remembered the node.

const name = 'transaction_uuid=';
const amp = 0x26;
const question = 0x3f;
const uuid = /^[0-9A-Fa-f-]{36}$/;

/** The transaction_uuid field of a form body or query string, if it has a well-formed one. */
export function transactionUuidOf(form: Buffer | string): string | undefined {
  const at = (i: number): number => (typeof form === 'string' ? form.charCodeAt(i) : form[i]!);
  for (let i = form.indexOf(name); i >= 0; i = form.indexOf(name, i + 1)) {
    const start = i + name.length;
    const end = start + 36;
    if (i > 0 && at(i - 1) !== amp && at(i - 1) !== question) continue;
    if (end > form.length || (end < form.length && at(end) !== amp)) continue;
    // A new string of its own, not a slice that keeps the body or the target alive.
    const value = Buffer.from(typeof form === 'string' ? form.slice(start, end) : form.subarray(start, end)).toString('latin1');
    if (uuid.test(value)) return value;
  }
  return undefined;
}
