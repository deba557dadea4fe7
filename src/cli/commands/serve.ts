import type { Command } from 'commander';
import { systemClock } from '../../lib/clock.ts';
import { errorMessage, RingmasterError } from '../../lib/errors.ts';
import { createLog } from '../../observability/log.ts';
import { startApp } from '../../app.ts';
import { loadConfig } from '../../config/load.ts';
import { readReloadStatus, removePid, writePid, writeReloadStatus, type ReloadStatus } from '../../runtime-files.ts';
import { addStateOptions, configFrom, type GlobalOptions } from '../common.ts';

export function registerServe(program: Command): void {
  addStateOptions(program.command('serve'))
    .description('run ringmaster: the HTTPS listener, the gateway and the certificate authority')
    .action(async (opts: GlobalOptions) => {
      const config = await configFrom(opts);
      const log = createLog({ level: config.log.level, format: config.log.format });
      // POST /admin/v1/reload takes the same path as SIGHUP, once it exists.
      const hooks: { reload?: () => Promise<ReloadStatus> } = {};
      const adminReload = () => hooks.reload?.() ?? Promise.reject(new RingmasterError('RM_ADMIN_UNAVAILABLE', 'ringmaster is still starting; try the reload again'));
      const app = await startApp(config, { clock: systemClock, log, reload: adminReload });
      await writePid(config.stateDir, process.pid);
      let generation = (await readReloadStatus(config.stateDir))?.generation ?? 0;
      const first = app.listeners[0]?.address();
      const server = config.server.dnsAltNames.includes('puppet') ? 'puppet' : config.server.certname;
      const pools = Object.entries(config.pools).map(([name, p]) => `${name} (${p.members.length} member${p.members.length === 1 ? '' : 's'})`);
      process.stderr.write(
        [
          '',
          `ringmaster is serving; state in ${config.stateDir}${app.created ? ' (new CA created)' : ''}.`,
          pools.length ? `Pools: ${pools.join(', ')}.` : 'No pools configured yet: /puppet/v3/ answers 503 until a `compilers` pool has members (see docs/compilers.md).',
          "Put this in each agent's puppet.conf:",
          '  [main]',
          `  server = ${server}`,
          ...(first && first.port !== 8140 ? [`  serverport = ${first.port}`] : []),
          `Its server certificate answers to: ${config.server.dnsAltNames.join(', ')}.`,
          `Pending certificate requests: ringmaster ca list --state-dir ${config.stateDir}`,
          '',
        ].join('\n') + '\n',
      );

      // SIGHUP (or `ringmaster reload`) re-reads the file and applies routes and pools.
      let reloading: Promise<unknown> = Promise.resolve();
      const reload = async (): Promise<ReloadStatus> => {
        generation++;
        const at = new Date().toISOString();
        try {
          const next = await loadConfig({ configFile: opts.config, stateDir: opts.stateDir });
          const { applied, needsRestart } = app.reload(next);
          const message = `routes and pools applied${needsRestart.length ? `; changes to ${needsRestart.join(', ')} need a restart and were not applied` : ''}`;
          log.info({ generation, ...applied, needsRestart }, message);
          const status = { generation, ok: true, at, message, needsRestart };
          await writeReloadStatus(config.stateDir, status);
          return status;
        } catch (err) {
          log.error({ generation, code: 'RM_RELOAD_FAILED', err: errorMessage(err) }, 'reload refused; the running configuration is kept');
          const status = { generation, ok: false, at, message: errorMessage(err), needsRestart: [] };
          await writeReloadStatus(config.stateDir, status);
          return status;
        }
      };
      // One reload at a time, whoever asked (SIGHUP, `ringmaster reload`, the admin API).
      hooks.reload = () => {
        const next = reloading.then(reload, reload);
        reloading = next.catch(() => undefined);
        return next;
      };
      process.on('SIGHUP', () => {
        void hooks.reload?.().catch(() => undefined);
      });

      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal, drainTimeout: config.shutdown.drainTimeout }, 'stopping: no new connections, finishing requests in flight');
        app
          .close(config.shutdown.drainTimeout)
          .then(() => removePid(config.stateDir, process.pid))
          .then(
            () => {
              log.info('stopped');
              process.exit(0);
            },
            () => process.exit(1),
          );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
