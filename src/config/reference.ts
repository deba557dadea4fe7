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
    const types = s.anyOf.map(typeOf);
    return types.includes('string') && types.includes('number') ? 'duration' : types.join(' \\| ');
  }
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'integer' && s.minimum !== undefined && s.maximum !== undefined) return `integer ${s.minimum}–${s.maximum}`;
  return Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
}

function rows(s: JsonSchema, path: string, out: string[]): void {
  const props = s.properties ?? (s.type === 'array' && s.items?.properties ? s.items.properties : undefined);
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
