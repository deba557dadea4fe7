import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/load.ts';
import { createLog, type Log } from '../observability/log.ts';

export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

export type GlobalOptions = { config?: string; stateDir?: string };

/** Every command finds its state the same way: --state-dir, else the config's stateDir, else ./var. */
export function addStateOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--state-dir <dir>', 'state directory (default: the config file\'s stateDir, else ./var)');
}

export async function configFrom(opts: GlobalOptions): Promise<Config> {
  return loadConfig({ configFile: opts.config, stateDir: opts.stateDir });
}

/** Commands other than serve log warnings and errors only, as text on stderr. */
export function cliLog(config: Config): Log {
  return createLog({ level: config.log.level === 'debug' || config.log.level === 'trace' ? config.log.level : 'warn', format: 'text', destination: process.stderr });
}
