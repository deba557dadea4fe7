import { pino, type Logger, type DestinationStream } from 'pino';

export type { DestinationStream };

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

/** Where access-log lines go: JSON objects or text lines, one per request. */
export type AccessSink = { json(fields: Record<string, unknown>): void; line(text: string): void; reopen(): void; close(): Promise<void> };

/**
 * The access log's own pino, apart from the service log: no level, pid or hostname on its lines,
 * and `time` written by the caller. Standard output is written synchronously, as the service log
 * is, so lines of the two never interleave; a file is appended asynchronously and reopened by
 * `reopen()` (logrotate).
 */
export function createAccessSink(destination: 'stdout' | { file: string } | DestinationStream): AccessSink {
  const file = typeof destination === 'object' && 'file' in destination ? pino.destination({ dest: destination.file, sync: false, append: true, mkdir: true, minLength: 0 }) : undefined;
  const stream: DestinationStream = destination === 'stdout' ? pino.destination({ dest: 1, sync: true }) : (file ?? (destination as DestinationStream));
  const logger = pino({ base: null, timestamp: false, formatters: { level: () => ({ type: 'access' }) } }, stream);
  return {
    json: (fields) => logger.info(fields),
    line: (text) => void stream.write(`${text}\n`),
    reopen: () => file?.reopen(),
    close: () =>
      new Promise<void>((resolve) => {
        if (!file) return resolve();
        file.once('close', () => resolve());
        file.once('error', () => resolve());
        file.end();
      }),
  };
}

/** A log that drops everything, for tests and library use. */
export const silentLog: Log = pino({ level: 'silent' });
