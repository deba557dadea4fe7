import { pino, type Logger, type DestinationStream } from 'pino';

// The only importer of pino. Components take a `Log` and make children carrying their name.
// Secrets never reach a log line: the redaction list covers every field that could hold one.

export type Log = Pick<Logger, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> & { child(bindings: Record<string, unknown>): Log };

export type LogOptions = { level: string; format: 'json' | 'text'; destination?: DestinationStream };

const redact = ['token', 'privateKey', 'privateKeyPem', 'key', 'password', 'challengePassword', '*.token', '*.privateKeyPem', '*.challengePassword'];

export function createLog(options: LogOptions): Log {
  const base = { level: options.level, base: { service: 'ringmaster' }, redact: { paths: redact, censor: '[redacted]' } };
  if (options.format === 'text') {
    const textStream: DestinationStream = {
      write(line: string) {
        const rec = JSON.parse(line) as Record<string, unknown>;
        const { time, level, msg } = rec;
        const rest = Object.fromEntries(Object.entries(rec).filter(([k]) => !['time', 'level', 'msg', 'service', 'pid', 'hostname'].includes(k)));
        const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
        const label = pino.levels.labels[Number(level)] ?? 'log';
        (options.destination ?? process.stdout).write(`${new Date(Number(time)).toISOString()} ${label} ${typeof msg === 'string' ? msg : ''}${extra}\n`);
      },
    };
    return pino(base, textStream);
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}

/** A log that drops everything, for tests and library use. */
export const silentLog: Log = pino({ level: 'silent' });
