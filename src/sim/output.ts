import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FleetResult } from './fleet-result.ts';
import { renderFleetReport } from './report.ts';

// Where a fleet simulation leaves its result: fleet.json for machines and fleet.html for people.

export async function writeFleetOutput(result: FleetResult, dir: string): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'fleet.json');
  const html = join(dir, 'fleet.html');
  await writeFile(json, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(html, renderFleetReport(result));
  return { json, html };
}
