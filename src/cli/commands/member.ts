import type { Command } from 'commander';
import { parseDuration } from '../../lib/duration.ts';
import { RingmasterError } from '../../lib/errors.ts';
import { validateAdminMember } from '../../config/schema.ts';
import { adminRequest, locateAdmin, replyError, type AdminReply } from '../../admin/client.ts';
import type { AdminMemberView, AdminPoolView } from '../../admin/api.ts';
import { addStateOptions, configFrom, exitCodes, type GlobalOptions } from '../common.ts';

// `ringmaster member …`: the running ringmaster's pools and members through its admin API, so a
// compiler can be drained before a restart, enabled after it, and members added or removed at run
// time (kept in <stateDir>/members.json across reloads and restarts).

type Opts = GlobalOptions & { json?: boolean };
type DrainOpts = Opts & { wait?: boolean; timeout: string };
type AddOpts = Opts & { url: string; weight?: string; priority?: string; maxInFlight?: string; compileSlots?: string };

const membersPath = (pool: string, member: string) => `/admin/v1/pools/${encodeURIComponent(pool)}/members/${encodeURIComponent(member)}`;

/** Sends one request to the running instance; prints the JSON with --json; refusals become errors (exit 1). */
async function call(opts: Opts, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<AdminReply> {
  const target = await locateAdmin(await configFrom(opts));
  const reply = await adminRequest(target, method, path, body, timeoutMs);
  if (opts.json) process.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
  if (reply.status >= 400) throw replyError(reply);
  process.exitCode = exitCodes.ok;
  return reply;
}

function say(opts: Opts, line: string): void {
  if (!opts.json) process.stdout.write(`${line}\n`);
}

function stateOf(m: AdminMemberView): string {
  return m.eligible ? 'ready' : (m.reason ?? 'not eligible');
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => `  ${r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}`);
}

export function formatPools(pools: AdminPoolView[]): string {
  if (pools.length === 0) return 'No pools configured.';
  const out: string[] = [];
  for (const p of pools) {
    const queue = p.queued > 0 ? `, ${p.queued} compile(s) queued (oldest ${Math.round(p.oldestWaitMs / 1000)} s)` : '';
    out.push(`pool ${p.name} (${p.policy}): ${p.eligible} of ${p.members.length} member(s) eligible${queue}`);
    if (p.members.length === 0) continue;
    const rows = [['MEMBER', 'URL', 'STATE', 'HEALTH', 'IN FLIGHT', 'COMPILES', 'SOURCE']];
    for (const m of p.members) {
      const ramping = m.usableSlots !== null && m.compileSlots !== null && m.usableSlots < m.compileSlots ? ` (ramping: ${m.usableSlots})` : '';
      const slots = m.compileSlots === null ? '' : `/${m.compileSlots}${ramping}`;
      rows.push([m.name, m.url, stateOf(m), m.activeChecks ? m.health : '-', String(m.inFlight), `${m.compiles}${slots}`, m.source === 'runtime' ? 'run time' : 'config']);
    }
    out.push(...table(rows));
  }
  return out.join('\n');
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new RingmasterError('RM_CLI_USAGE', `${flag}: "${value}" is not a whole number`);
  return n;
}

export function registerMember(program: Command): void {
  const member = program.command('member').description("show, drain, enable, add and remove the running ringmaster's pool members");

  addStateOptions(member.command('list [pool]'))
    .description('pools and their members: state, health, requests in flight, compiles')
    .option('--json', 'print the admin API JSON')
    .action(async (pool: string | undefined, opts: Opts) => {
      const reply = await call(opts, 'GET', pool === undefined ? '/admin/v1/pools' : `/admin/v1/pools/${encodeURIComponent(pool)}`);
      const body = reply.body as { pools?: AdminPoolView[]; pool?: AdminPoolView };
      say(opts, formatPools(body.pools ?? (body.pool ? [body.pool] : [])));
    });

  addStateOptions(member.command('drain <pool> <member>'))
    .description('send the member no new requests; requests in flight finish')
    .option('--wait', 'return only once nothing is in flight on the member (exit 1 after --timeout)')
    .option('--timeout <duration>', 'longest wait with --wait', '10m')
    .option('--json', 'print the admin API JSON')
    .action(async (pool: string, name: string, opts: DrainOpts) => {
      const timeoutMs = parseDuration(opts.timeout);
      if (timeoutMs === undefined || timeoutMs <= 0) throw new RingmasterError('RM_CLI_USAGE', `--timeout: "${opts.timeout}" is not a duration such as 90s or 10m`);
      const wait = opts.wait === true;
      // The answer comes when the member is idle or the server gives up: wait a little longer than it.
      const reply = await call(opts, 'POST', `${membersPath(pool, name)}/drain`, { wait, timeout: opts.timeout }, wait ? timeoutMs + 30_000 : undefined);
      const body = reply.body as { member: AdminMemberView | null; idle: boolean };
      const inFlight = body.member?.inFlight ?? 0;
      say(opts, body.idle ? `member ${name} of pool ${pool} is drained: nothing in flight` : `member ${name} of pool ${pool} is draining; ${inFlight} request(s) in flight will finish`);
    });

  addStateOptions(member.command('enable <pool> <member>'))
    .description('let a drained member take requests again')
    .option('--json', 'print the admin API JSON')
    .action(async (pool: string, name: string, opts: Opts) => {
      const reply = await call(opts, 'POST', `${membersPath(pool, name)}/enable`);
      const m = (reply.body as { member: AdminMemberView | null }).member;
      say(opts, `member ${name} of pool ${pool} is enabled${m && !m.eligible ? ` (not eligible yet: ${m.reason ?? 'unknown'})` : ''}`);
    });

  addStateOptions(member.command('add <pool> <member>'))
    .description('add a member at run time, or replace one added at run time (kept across reloads and restarts)')
    .requiredOption('--url <url>', 'where the compiler listens, e.g. http://10.0.0.7:8141')
    .option('--weight <n>', 'relative share for the weighted policies')
    .option('--priority <n>', 'tier: higher numbers are used only while no lower one is eligible')
    .option('--max-in-flight <n>', 'most requests at once')
    .option('--compile-slots <n>', 'catalog compiles at once (its JRuby count)')
    .option('--json', 'print the admin API JSON')
    .action(async (pool: string, name: string, opts: AddOpts) => {
      const input = {
        url: opts.url,
        weight: integer('--weight', opts.weight),
        priority: integer('--priority', opts.priority),
        maxInFlight: integer('--max-in-flight', opts.maxInFlight),
        compileSlots: integer('--compile-slots', opts.compileSlots),
      };
      const body = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
      // Checked here with the server's own schema, so a typo is a usage error (exit 2) before any request.
      const checked = validateAdminMember(body);
      if (!checked.ok) throw new RingmasterError('RM_CLI_USAGE', checked.problems.map((p) => `${p.path === '(root)' ? '' : `--${p.path.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: `}${p.message}`).join('; '));
      const reply = await call(opts, 'PUT', membersPath(pool, name), body);
      const created = (reply.body as { created: boolean }).created;
      say(opts, `member ${name} ${created ? 'added to' : 'replaced in'} pool ${pool} (${opts.url})`);
    });

  addStateOptions(member.command('remove <pool> <member>'))
    .description('remove a member added at run time; its requests in flight finish first')
    .option('--json', 'print the admin API JSON')
    .action(async (pool: string, name: string, opts: Opts) => {
      const reply = await call(opts, 'DELETE', membersPath(pool, name));
      const inFlight = (reply.body as { inFlight: number }).inFlight;
      say(opts, `member ${name} removed from pool ${pool}${inFlight > 0 ? `; ${inFlight} request(s) in flight will finish` : ''}`);
    });
}
