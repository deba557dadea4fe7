import type { Command } from 'commander';
import { RingmasterError } from '../../lib/errors.ts';
import { zoneName } from '../../dns/names.ts';
import { renderZonefiles } from '../../dns/zonefile.ts';
import { addStateOptions, configFrom, type GlobalOptions } from '../common.ts';

// `ringmaster dns …`: the DNS responder's zones for operators who keep their own DNS servers.

export function registerDns(program: Command): void {
  const dns = program.command('dns').description('the DNS responder: SRV and A answers for the Puppet service names');

  addStateOptions(dns.command('zonefile'))
    .description("print the configured zones as a BIND zone file (or dnsmasq lines), every target listed, for DNS servers of your own")
    .option('--zone <name>', 'only this zone')
    .option('--format <format>', 'bind or dnsmasq', 'bind')
    .action(async (opts: GlobalOptions & { zone?: string; format: string }) => {
      if (opts.format !== 'bind' && opts.format !== 'dnsmasq') throw new RingmasterError('RM_CLI_USAGE', `--format: expected bind or dnsmasq, got ${opts.format}`);
      const config = await configFrom(opts);
      const zones = renderZonefiles(config, opts.format).filter((z) => opts.zone === undefined || z.zone === zoneName(opts.zone));
      if (zones.length === 0) {
        throw new RingmasterError('RM_DNS_ZONE_INVALID', opts.zone === undefined ? 'no DNS zone is configured (dns.zones)' : `no zone ${zoneName(opts.zone)} in dns.zones`);
      }
      process.stdout.write(zones.map((z) => z.text).join('\n'));
    });
}
