// A validator for the subset of JSON Schema the admin API's OpenAPI document uses (type with
// null, properties, required, additionalProperties, items, enum, pattern, minimum, anyOf, local
// $ref), and the lookup of an answer's schema by method, path and status. Small enough to read
// whole, so the tests depend on no schema library; a keyword it does not know is an error rather
// than silently passing.

type Schema = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>; components: { schemas: Record<string, Schema> } };

const known = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'pattern', 'minimum', 'anyOf', '$ref', 'format', 'description']);

/** Problems found, each as `<json path>: <what>`; empty when the value matches. */
export function validate(schema: Schema, value: unknown, doc: Pick<Doc, 'components'>, at = '$'): string[] {
  for (const k of Object.keys(schema)) if (!known.has(k)) return [`${at}: the schema uses "${k}", which this validator does not implement`];
  if (typeof schema.$ref === 'string') {
    const name = /^#\/components\/schemas\/(.+)$/.exec(schema.$ref)?.[1];
    const target = name === undefined ? undefined : doc.components.schemas[name];
    return target ? validate(target, value, doc, at) : [`${at}: unresolvable $ref ${schema.$ref}`];
  }
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as Schema[]).map((s) => validate(s, value, doc, at));
    if (results.some((r) => r.length === 0)) return [];
    return [`${at}: matches none of anyOf (${results.map((r) => r[0]).join(' | ')})`];
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => isType(t, value))) return [`${at}: expected ${types.join(' or ')}, got ${describe(value)}`];
  }
  const problems: string[] = [];
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof schema.pattern === 'string' && typeof value === 'string' && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: "${value}" does not match ${schema.pattern}`);
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) problems.push(`${at}: ${value} is below ${schema.minimum}`);
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((v, i) => problems.push(...validate(schema.items as Schema, v, doc, `${at}[${i}]`)));
  if (isObject(value)) {
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in value)) problems.push(`${at}: missing required property "${r}"`);
    for (const [k, v] of Object.entries(value)) {
      const p = props[k];
      if (p) problems.push(...validate(p, v, doc, `${at}.${k}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: property "${k}" is not in the schema`);
      else if (isObject(schema.additionalProperties)) problems.push(...validate(schema.additionalProperties, v, doc, `${at}.${k}`));
    }
  }
  return problems;
}

function isType(t: string, v: unknown): boolean {
  switch (t) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'array': return Array.isArray(v);
    case 'object': return isObject(v);
    default: return false;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** The document's path template for a concrete path; literal segments beat parameters (`/reports/stats` over `/reports/{id}`). */
export function matchPath(doc: Pick<Doc, 'paths'>, pathname: string): string | undefined {
  const segments = pathname.split('/');
  let best: { template: string; literals: number } | undefined;
  for (const template of Object.keys(doc.paths)) {
    const parts = template.split('/');
    if (parts.length !== segments.length) continue;
    let literals = 0;
    const fits = parts.every((p, i) => {
      if (/^\{[^}]+\}$/.test(p)) return segments[i] !== '';
      literals++;
      return p === segments[i];
    });
    if (fits && (!best || literals > best.literals)) best = { template, literals };
  }
  return best?.template;
}

/** Problems with an answer: an undocumented path, method or status, or a body that does not match. */
export function checkAnswer(doc: Doc, method: string, pathname: string, status: number, body: unknown): string[] {
  const template = matchPath(doc, pathname);
  // An unknown path is 404 and a method the path lacks 405, both with the document's Error.
  const error = doc.components.schemas.Error;
  if (!template) return status === 404 && error ? validate(error, body, doc).map((p) => `${pathname} 404: ${p}`) : [`${pathname}: no path in the document matches`];
  const operation = doc.paths[template]?.[method.toLowerCase()];
  if (!operation) return status === 405 && error ? validate(error, body, doc).map((p) => `${method} ${template} 405: ${p}`) : [`${method} ${template}: not in the document`];
  const response = operation.responses[String(status)] ?? operation.responses.default;
  if (!response) return [`${method} ${template}: status ${status} is not documented (documented: ${Object.keys(operation.responses).join(', ')})`];
  const schema = response.content?.['application/json']?.schema;
  if (!schema) return body === undefined ? [] : [`${method} ${template} ${status}: a body that the document does not describe`];
  return validate(schema, body, doc).map((p) => `${method} ${template} ${status}: ${p}`);
}
