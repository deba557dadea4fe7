import { Command, CommanderError } from 'commander';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import { registerServe } from './commands/serve.ts';
import { registerCa } from './commands/ca.ts';
import { registerConfig } from './commands/config.ts';
import { registerCompiler } from './commands/compiler.ts';
import { registerReload } from './commands/reload.ts';
import { registerBench } from './commands/bench.ts';
import { registerMember } from './commands/member.ts';
import { registerReports } from './commands/reports.ts';
import { registerDns } from './commands/dns.ts';
import { exitCodes } from './common.ts';

// The `ringmaster` command. One file per command group; this file only wires them and turns
// errors into exit codes: 0 success, 1 the operation failed (for some name), 2 usage or config.

const program = new Command('ringmaster')
  .description('Puppet-aware front door for Puppet Server and OpenVox Server compilers')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerServe(program);
registerCa(program);
registerConfig(program);
registerCompiler(program);
registerReload(program);
registerBench(program);
registerMember(program);
registerReports(program);
registerDns(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : exitCodes.usage;
  } else if (err instanceof RingmasterError) {
    process.stderr.write(`ringmaster: ${err.code}: ${err.message}\n`);
    process.exitCode = ['RM_CONFIG_INVALID', 'RM_CONFIG_UNREADABLE', 'RM_CLI_USAGE'].includes(err.code) ? exitCodes.usage : exitCodes.failed;
  } else {
    process.stderr.write(`ringmaster: RM_INTERNAL: ${errorMessage(err)}\n`);
    process.exitCode = exitCodes.failed;
  }
}
