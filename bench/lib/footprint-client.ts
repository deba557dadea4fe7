// The client of the footprint benchmark, run as its own process (forked by gateway-procs.ts):
// it holds many idle agent connections open on a front door, or plays whole agent runs, each on
// a new TLS connection as a Puppet agent does (one connection per run, kept alive within it).
import { Agent, request } from 'node:https';
import type { Identity } from './gateway-load.ts';

export type FootprintJob =
  | { op: 'hold'; port: number; ca: string; identities: Identity[]; count: number; concurrency: number }
  | { op: 'release' }
  | { op: 'runs'; port: number; ca: string; identities: Identity[]; runs: number; concurrency: number };

export type FootprintReply =
  | { op: 'holding'; open: number; failed: number; errors: string[]; ms: number }
  | { op: 'released' }
  | { op: 'ran'; runs: number; failed: number; errors: string[]; ms: number };

const headers = { accept: 'application/json', 'x-puppet-version': '8.10.0' };
const facts = Buffer.from(`facts_format=application%2Fjson&facts=${encodeURIComponent(JSON.stringify({ name: 'agent', values: { padding: 'f'.repeat(14_000) } }))}`);

function get(agent: Agent, port: number, path: string, method = 'GET', body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, agent, servername: 'localhost', headers: body ? { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } : headers, timeout: 60_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const agentFor = (job: { ca: string; identities: Identity[] }, i: number): Agent => {
  const id = job.identities[i % job.identities.length]!;
  // One socket per simulated agent; no TLS session cache, so every connection is a full handshake.
  return new Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0, ca: job.ca, cert: id.cert, key: id.key });
};

async function pool<T>(count: number, concurrency: number, one: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await one(next++);
  }));
}

const held: Agent[] = [];

async function hold(job: Extract<FootprintJob, { op: 'hold' }>): Promise<FootprintReply> {
  const t0 = performance.now();
  let failed = 0;
  const errors = new Set<string>();
  await pool(job.count, job.concurrency, async (i) => {
    const agent = agentFor(job, i);
    try {
      const status = await get(agent, job.port, `/puppet/v3/node/agent-${i % job.identities.length}.bench.test?environment=production`);
      if (status !== 200) throw new Error(`status ${status}`);
      held.push(agent);
    } catch (err) {
      failed++;
      if (errors.size < 5) errors.add((err as Error).message);
      agent.destroy();
    }
  });
  return { op: 'holding', open: held.length, failed, errors: [...errors], ms: performance.now() - t0 };
}

/** One agent run: pluginsync metadata, the catalog, eight file metadata, on one new connection. */
async function run(job: Extract<FootprintJob, { op: 'runs' }>, i: number): Promise<void> {
  const agent = agentFor(job, i);
  const name = `agent-${i % job.identities.length}.bench.test`;
  try {
    const statuses = [await get(agent, job.port, `/puppet/v3/node/${name}?environment=production`)];
    statuses.push(await get(agent, job.port, `/puppet/v3/catalog/${name}?environment=production`, 'POST', facts));
    for (let f = 0; f < 8; f++) statuses.push(await get(agent, job.port, `/puppet/v3/file_metadata/modules/m${f}/files/app.conf?environment=production`));
    if (statuses.some((s) => s !== 200)) throw new Error(`statuses ${statuses.join(',')}`);
  } finally {
    agent.destroy();
  }
}

async function runs(job: Extract<FootprintJob, { op: 'runs' }>): Promise<FootprintReply> {
  const t0 = performance.now();
  let failed = 0;
  const errors = new Set<string>();
  await pool(job.runs, job.concurrency, async (i) => {
    try {
      await run(job, i);
    } catch (err) {
      failed++;
      if (errors.size < 5) errors.add((err as Error).message);
    }
  });
  return { op: 'ran', runs: job.runs - failed, failed, errors: [...errors], ms: performance.now() - t0 };
}

if (process.send) {
  process.on('message', (job: FootprintJob) => {
    const reply = (r: FootprintReply): void => void process.send?.(r);
    if (job.op === 'hold') void hold(job).then(reply);
    else if (job.op === 'runs') void runs(job).then(reply);
    else {
      for (const a of held.splice(0)) a.destroy();
      reply({ op: 'released' });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
