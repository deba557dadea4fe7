import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.ts';
import { createLog } from '../../observability/log.ts';
import { startApp } from '../../app.ts';
import { addStateOptions, configFrom, type GlobalOptions } from '../common.ts';

export function registerServe(program: Command): void {
  addStateOptions(program.command('serve'))
    .description('run ringmaster: the HTTPS listener and the certificate authority')
    .action(async (opts: GlobalOptions) => {
      const config = await configFrom(opts);
      const log = createLog({ level: config.log.level, format: config.log.format });
      const app = await startApp(config, { clock: systemClock, log });
      const first = app.listeners[0]?.address();
      const server = config.server.dnsAltNames.includes('puppet') ? 'puppet' : config.server.certname;
      process.stderr.write(
        [
          '',
          `ringmaster is serving; state in ${config.stateDir}${app.created ? ' (new CA created)' : ''}.`,
          "Put this in each agent's puppet.conf:",
          '  [main]',
          `  server = ${server}`,
          ...(first && first.port !== 8140 ? [`  serverport = ${first.port}`] : []),
          `Its server certificate answers to: ${config.server.dnsAltNames.join(', ')}.`,
          `Pending certificate requests: ringmaster ca list --state-dir ${config.stateDir}`,
          '',
        ].join('\n') + '\n',
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping: no new connections, finishing requests in flight');
        app.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
