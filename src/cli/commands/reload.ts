import type { Command } from 'commander';
import { RingmasterError } from '../../lib/errors.ts';
import { isAlive, readPid, readReloadStatus } from '../../runtime-files.ts';
import { addStateOptions, configFrom, exitCodes, type GlobalOptions } from '../common.ts';

// `ringmaster reload`: asks the running serve of this state directory to re-read its config
// (SIGHUP) and reports what it did, so a script knows whether the new routes are live.

export function registerReload(program: Command): void {
  addStateOptions(program.command('reload'))
    .description('apply a changed routes/pools configuration to the running ringmaster without dropping requests')
    .option('--timeout <seconds>', 'how long to wait for the outcome', '10')
    .action(async (opts: GlobalOptions & { timeout: string }) => {
      const config = await configFrom(opts);
      const pid = await readPid(config.stateDir);
      if (pid === undefined || !isAlive(pid)) {
        throw new RingmasterError('RM_NOT_RUNNING', `no ringmaster is running for state directory ${config.stateDir}`);
      }
      const before = (await readReloadStatus(config.stateDir))?.generation ?? 0;
      process.kill(pid, 'SIGHUP');
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      while (Date.now() < deadline) {
        const status = await readReloadStatus(config.stateDir);
        if (status && status.generation > before) {
          if (!status.ok) throw new RingmasterError('RM_RELOAD_FAILED', status.message);
          process.stdout.write(`reloaded (pid ${pid}): ${status.message}\n`);
          process.exitCode = exitCodes.ok;
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new RingmasterError('RM_RELOAD_FAILED', `ringmaster (pid ${pid}) did not report a reload within ${opts.timeout} s`);
    });
}
