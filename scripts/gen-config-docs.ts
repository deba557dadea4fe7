// Regenerates the reference table at the end of docs/configuration.md from the schema.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigReference } from '../src/config/reference.ts';

const file = new URL('../docs/configuration.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const start = doc.indexOf('| key | type | default | meaning |');
if (start === -1) throw new Error('docs/configuration.md has no reference table to replace');
writeFileSync(file, doc.slice(0, start) + renderConfigReference());
