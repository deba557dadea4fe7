import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { readConfigFile, formatProblems } from '../../config/load.ts';
import { validateConfig } from '../../config/schema.ts';
import { renderConfigReference } from '../../config/reference.ts';
import { exitCodes } from '../common.ts';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('check and document the configuration file');

  config
    .command('check <file>')
    .description('validate a configuration file and list every problem with its path')
    .action(async (file: string) => {
      const result = validateConfig(await readConfigFile(file));
      if (result.ok) {
        process.stdout.write(`${file}: ok\n`);
        return;
      }
      process.stderr.write(`${formatProblems(file, result.problems)}\n`);
      process.exitCode = exitCodes.usage;
    });

  config
    .command('docs')
    .description('print the configuration reference (Markdown) generated from the schema')
    .option('--out <file>', 'write it to a file instead')
    .action(async (opts: { out?: string }) => {
      const text = renderConfigReference();
      if (opts.out) await writeFile(opts.out, text);
      else process.stdout.write(text);
    });
}
