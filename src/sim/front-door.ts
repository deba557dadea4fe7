import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { resolveConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/schema.ts';
import { startApp } from '../app.ts';
import { silentLog, type Log } from '../observability/log.ts';
import type { AgentTarget } from './agent-http.ts';
import type { SimCompiler } from './compiler.ts';
import { issueSimIdentities, type SimIdentity } from './identities.ts';

// What the fleet needs of the front door under test: where agents connect, the identities it
// accepts, and (when it can tell) how many requests it holds. ringmaster in-process is one;
// a benchmark brings others (HAProxy, nginx) through the same shape.

export type FrontDoorView = {
  /** Requests waiting in the front door's own queue. */
  queued: number;
  /** Requests the front door has sent to each member and not yet seen answered, by member name. */
  inFlight: Record<string, number>;
};

export type FrontDoor = {
  name: string;
  target: AgentTarget;
  identities: SimIdentity[];
  observe?(): FrontDoorView;
  /** Sends the member no new requests (for a rolling restart), when the front door can. */
  drain?(member: string): void | Promise<void>;
  /** Undoes `drain`. */
  enable?(member: string): void | Promise<void>;
  stop(): Promise<void>;
};

export type FrontDoorContext = { compilers: readonly SimCompiler[]; identities: number; random: Random };
export type FrontDoorFactory = (ctx: FrontDoorContext) => Promise<FrontDoor>;

type PoolInput = NonNullable<ConfigInput['pools']>[string];

export type RingmasterDoorOptions = {
  /** Merged over the pool the fleet builds (members are always the simulated compilers). */
  pool?: Omit<PoolInput, 'members'>;
  /** Per-member settings such as maxInFlight, merged into every member. */
  member?: Omit<NonNullable<PoolInput['members']>[number], 'name' | 'url'>;
  log?: Log;
};

/** ringmaster in this process, on a temporary state directory: its CA issues the agents' identities. */
export function ringmasterFrontDoor(o: RingmasterDoorOptions = {}): FrontDoorFactory {
  return async (ctx) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'rm-fleet-'));
    try {
      const config = resolveConfig({
        server: { certname: 'ringmaster.sim.test', dnsAltNames: ['localhost', 'ringmaster.sim.test'] },
        listeners: [{ name: 'agents', address: '127.0.0.1', port: 0 }],
        ca: { keyLength: 2048 },
        pools: {
          compilers: {
            // Probes often enough to see a restarted compiler within a short simulation.
            healthCheck: { active: { interval: '1s', timeout: '1s' } },
            ...o.pool,
            members: ctx.compilers.map((c) => ({ ...o.member, name: c.name, url: c.url })),
          },
        },
        log: { level: 'warn' },
        // A fleet beside a running ringmaster must not take (or fight for) its admin port.
        admin: { enabled: false },
      }, { stateDir });
      const app = await startApp(config, { clock: systemClock, log: o.log ?? silentLog, random: ctx.random });
      try {
        const identities = await issueSimIdentities(app.ca, ctx.identities);
        const port = app.listeners[0]?.address().port ?? 0;
        return {
          name: 'ringmaster',
          target: { port, servername: 'localhost', ca: app.ca.caBundlePem },
          identities,
          observe: () => {
            const snap = app.gateway.pools().get('compilers')?.snapshot();
            const queued = snap?.queued ?? 0;
            return { queued, inFlight: Object.fromEntries((snap?.members ?? []).map((m) => [m.name, m.inFlight])) };
          },
          // As `ringmaster member drain --wait`: no new requests, then wait for the running ones.
          drain: async (member) => {
            const pool = app.gateway.pools().get('compilers');
            pool?.setDraining(member, true);
            await pool?.member(member)?.idle();
          },
          enable: (member) => {
            app.gateway.pools().get('compilers')?.setDraining(member, false);
          },
          stop: async () => {
            await app.close(2000);
            await rm(stateDir, { recursive: true, force: true });
          },
        };
      } catch (err) {
        await app.close(0);
        throw err;
      }
    } catch (err) {
      await rm(stateDir, { recursive: true, force: true });
      throw err;
    }
  };
}
