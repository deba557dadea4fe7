// The third-party front doors of the fleet comparison, each in front of the same simulated
// compilers: HAProxy in TCP mode (the compilers terminate the agents' TLS themselves, as in the
// Vox Pupuli and PE setups) with `leastconn` or `roundrobin`, and nginx as an L7 proxy with
// `least_conn`, terminating TLS and passing the identity in X-Client-* headers. Rolling restarts
// drain through HAProxy's runtime API; nginx (open source) has no drain, so its restart is bare.
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { FrontDoorFactory } from '../../src/sim/front-door.ts';
import type { SimIdentity } from '../../src/sim/identities.ts';
import { startHaproxy, startNginx } from './gateway-doors.ts';

export type FleetTls = { caPem: string; caFile: string; serverChainFile: string; serverKeyFile: string; identities: SimIdentity[] };

/** One command on HAProxy's runtime API (a unix socket); resolves with its answer. */
function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let out = '';
    c.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.end(`${command}\n`);
  });
}

export function haproxyDoor(dir: string, tls: FleetTls, balance: 'leastconn' | 'roundrobin'): FrontDoorFactory {
  return async (ctx) => {
    const socket = join(dir, 'admin.sock');
    const door = await startHaproxy(dir, ctx.compilers.map((c) => ({ name: c.name, port: c.port })), { balance, adminSocket: socket, serverOptions: 'check inter 1s fall 2 rise 2' });
    const port = door.port;
    return {
      name: `haproxy-${balance}`,
      target: { port, servername: 'localhost', ca: tls.caPem },
      identities: tls.identities,
      async drain(member: string) {
        await haproxyCommand(socket, `set server compilers/${member} state drain`);
        // HAProxy in TCP mode sees connections, not requests: wait until none is open to the member.
        for (let i = 0; i < 600; i++) {
          const state = await haproxyCommand(socket, 'show servers conn compilers');
          const line = state.split('\n').find((l) => l.includes(`compilers/${member} `));
          const used = Number(line?.trim().split(/\s+/)[4] ?? '0');
          if (!line || used === 0) return;
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async enable(member: string) {
        await haproxyCommand(socket, `set server compilers/${member} state ready`);
      },
      stop: () => door.stop(),
    };
  };
}

export function nginxDoor(dir: string, tls: FleetTls): FrontDoorFactory {
  return async (ctx) => {
    const servers = ctx.compilers.map((c) => `127.0.0.1:${c.port} max_fails=1 fail_timeout=10s`);
    const door = await startNginx(dir, { serverChain: tls.serverChainFile, serverKey: tls.serverKeyFile, ca: tls.caFile }, servers, { workerConnections: 20000, balance: 'least_conn' });
    return { name: 'nginx-least_conn', target: { port: door.port, servername: 'localhost', ca: tls.caPem }, identities: tls.identities, stop: () => door.stop() };
  };
}
