import { readFile } from 'node:fs/promises';
import { dirname, resolve, join } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import { validateConfig, defaultHostNames, type ParsedConfig, type ConfigProblem } from './schema.ts';

// Loading is the only place YAML is read and the only place relative paths are resolved, so
// every command (serve, ca …, config check) finds the same state directory the same way:
// --state-dir, else the file's stateDir (relative to the file), else ./var.

export type Config = ParsedConfig & {
  stateDir: string;
  configFile: string | undefined;
  server: { certname: string; dnsAltNames: string[] };
  ca: ParsedConfig['ca'] & { dir: string };
};

export type LoadOptions = { configFile?: string | undefined; stateDir?: string | undefined; cwd?: string };

export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RingmasterError('RM_CONFIG_UNREADABLE', `cannot read config file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    throw new RingmasterError('RM_CONFIG_UNREADABLE', `config file ${path} is not valid YAML${where}: ${errorMessage(err).split('\n')[0] ?? ''}`, { cause: err });
  }
}

export function formatProblems(file: string | undefined, problems: ConfigProblem[]): string {
  const head = `${file ?? 'configuration'}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  return [head, ...problems.map((p) => `  ${p.path}: ${p.message}`)].join('\n');
}

export function resolveConfig(input: unknown, options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const result = validateConfig(input);
  if (!result.ok) {
    throw new RingmasterError('RM_CONFIG_INVALID', formatProblems(options.configFile, result.problems), { details: { problems: result.problems } });
  }
  const parsed = result.config;
  const base = options.configFile ? dirname(resolve(cwd, options.configFile)) : cwd;
  const stateDir = options.stateDir ? resolve(cwd, options.stateDir) : parsed.stateDir ? resolve(base, parsed.stateDir) : resolve(cwd, 'var');
  const hostNames = defaultHostNames();
  const certname = parsed.server.certname ?? hostNames[0] ?? 'ringmaster';
  const dnsAltNames = parsed.server.dnsAltNames ?? [...new Set([...hostNames, 'puppet'])];
  return {
    ...parsed,
    stateDir,
    configFile: options.configFile ? resolve(cwd, options.configFile) : undefined,
    server: { certname, dnsAltNames },
    ca: {
      ...parsed.ca,
      dir: parsed.ca.dir ? resolve(base, parsed.ca.dir) : join(stateDir, 'ca'),
      ...(parsed.ca.external ? { external: { ...parsed.ca.external, caFile: resolve(base, parsed.ca.external.caFile) } } : {}),
    },
    accessLog: { ...parsed.accessLog, destination: parsed.accessLog.destination === 'stdout' ? 'stdout' : resolve(base, parsed.accessLog.destination) },
    pools: Object.fromEntries(
      Object.entries(parsed.pools).map(([name, p]) => [name, p.upstreamTls.ca ? { ...p, upstreamTls: { ...p.upstreamTls, ca: resolve(base, p.upstreamTls.ca) } } : p]),
    ),
  };
}

export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const input = options.configFile ? await readConfigFile(options.configFile) : {};
  return resolveConfig(input, options);
}
