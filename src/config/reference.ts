import { configJsonSchema } from './schema.ts';

// Renders the configuration reference from the schema itself, so the page cannot drift from what
// `config check` enforces (src/config/reference.test.ts compares it with docs/configuration.md).

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  /** A record (pools by name): its entries' schema. */
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
};

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((e) => `\`${String(e)}\``).join(' \\| ');
  if (s.anyOf) {
    const types = [...new Set(s.anyOf.map(typeOf))];
    return types.includes('string') && types.includes('number') ? 'duration' : types.join(' \\| ');
  }
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'integer' && s.minimum !== undefined && s.maximum !== undefined) return `integer ${s.minimum}–${s.maximum}`;
  return Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
}

/** The fields of every alternative of a union of objects (`to: {pool} | {service}`), each once. */
function unionProperties(s: JsonSchema): Record<string, JsonSchema> | undefined {
  if (!s.anyOf || !s.anyOf.every((a) => a.type === 'object' && a.properties)) return undefined;
  // The first alternative that has a field documents it (its default included).
  const out: Record<string, JsonSchema> = {};
  for (const a of s.anyOf) for (const [k, v] of Object.entries(a.properties ?? {})) out[k] ??= v;
  return out;
}

function rows(s: JsonSchema, path: string, out: string[]): void {
  const props = s.properties ?? (s.type === 'array' && s.items ? (s.items.properties ?? unionProperties(s.items)) : unionProperties(s));
  if (path !== '') {
    const dflt = s.default === undefined || (typeof s.default === 'object' && s.default !== null && !Array.isArray(s.default)) ? '' : `\`${JSON.stringify(s.default)}\``;
    out.push(`| \`${path}\` | ${typeOf(s)} | ${dflt} | ${(s.description ?? '').replace(/\|/g, '\\|')} |`);
  }
  // A map by name (`pools`): its entries are documented once, under `<name>`.
  const entry = s.additionalProperties;
  if (!props && typeof entry === 'object' && (entry.properties || entry.type === 'object')) {
    rows({ ...entry, description: entry.description ?? 'One entry, by name.' }, `${path}.<name>`, out);
    return;
  }
  if (!props) return;
  const prefix = path === '' ? '' : s.type === 'array' ? `${path}[].` : `${path}.`;
  for (const [key, child] of Object.entries(props)) rows(child, `${prefix}${key}`, out);
}

export function renderConfigReference(): string {
  const out = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
  rows(configJsonSchema() as JsonSchema, '', out);
  return `${out.join('\n')}\n`;
}
