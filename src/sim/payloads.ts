import type { Random } from '../lib/random.ts';

// Bodies of the simulated exchange, shaped like Puppet's (JSON catalog, facts, report, file
// metadata) and of realistic sizes, so that the front door parses, buffers and relays what it
// would in production. Their content means nothing; the large parts are built once and reused.

const resourceCache = new Map<number, string>();

/** A JSON array of File resources about `bytes` long. */
function resources(bytes: number): string {
  const cached = resourceCache.get(bytes);
  if (cached !== undefined) return cached;
  const items: string[] = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const item = JSON.stringify({
      type: 'File',
      title: `/etc/sim/file-${String(i).padStart(5, '0')}`,
      tags: ['file', 'sim', 'class'],
      file: '/etc/puppetlabs/code/environments/production/modules/sim/manifests/init.pp',
      line: 10 + i,
      exported: false,
      parameters: { ensure: 'file', mode: '0644', content: 'x'.repeat(200) },
    });
    items.push(item);
    size += item.length + 1;
  }
  const text = `[${items.join(',')}]`;
  resourceCache.set(bytes, text);
  return text;
}

export function catalogBody(p: { certname: string; bytes: number; transactionUuid: string; version: number; compiler: string }): string {
  return `{"tags":["settings","sim"],"name":${JSON.stringify(p.certname)},"version":${p.version},"code_id":null,"catalog_uuid":${JSON.stringify(p.transactionUuid)},`
    + `"catalog_format":2,"environment":"production","server_used":${JSON.stringify(p.compiler)},"resources":${resources(p.bytes)},"edges":[],"classes":["settings","sim"]}`;
}

export function nodeBody(certname: string): string {
  return JSON.stringify({ name: certname, environment: 'production', parameters: { sim: 'true' }, classes: [], facts: {} });
}

function metadata(path: string): Record<string, unknown> {
  return {
    path: `/etc/puppetlabs/code/environments/production/modules/${path}`, relative_path: null, links: 'manage', owner: 0, group: 0, mode: 420,
    checksum: { type: 'sha256', value: '{sha256}4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce' }, type: 'file', destination: null,
  };
}

export function fileMetadataBody(path: string): string {
  return JSON.stringify(metadata(path));
}

export function fileMetadatasBody(path: string): string {
  return JSON.stringify([{ ...metadata(path), relative_path: '.', type: 'directory' }]);
}

/** A random version-4 UUID from the injected generator, as transaction_uuid. */
export function uuidFrom(random: Random): string {
  const b = random.bytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Facts of one node as JSON, about `bytes` long (a real node's facts are 10–20 KB). */
export function factsJson(certname: string, bytes: number): string {
  const base: Record<string, unknown> = {
    name: certname,
    values: {
      clientcert: certname, fqdn: certname, hostname: certname.split('.')[0], domain: certname.split('.').slice(1).join('.'),
      os: { family: 'Debian', name: 'Debian', release: { full: '12.8', major: '12' } }, kernel: 'Linux', processorcount: 4,
      memorysize_mb: 8192, puppetversion: '8.10.0', clientversion: '8.10.0', environment: 'production',
    },
    timestamp: '2026-01-01T00:00:00.000Z',
    expiration: '2026-01-01T00:30:00.000Z',
  };
  const values = base.values as Record<string, unknown>;
  for (let i = 0; JSON.stringify(base).length < bytes; i++) values[`sim_fact_${i}`] = `value-${i}-${'f'.repeat(80)}`;
  return JSON.stringify(base);
}

/** The catalog POST form without its per-run part; the facts are URI-encoded, then form-encoded, as the agent does. */
export function catalogFormPrefix(facts: string): string {
  return `facts_format=application%2Fjson&facts=${encodeURIComponent(encodeURIComponent(facts))}&environment=production&configured_environment=production&check_environment=false`;
}

export function catalogForm(prefix: string, transactionUuid: string): string {
  return `${prefix}&transaction_uuid=${transactionUuid}&job_uuid=&static_catalog=true&checksum_type=sha256.sha384.sha512.sha224.md5`;
}

export function reportBody(p: { certname: string; transactionUuid: string; status: 'changed' | 'unchanged' | 'failed'; time: number }): string {
  const logs = Array.from({ length: 20 }, (_, i) => ({
    level: 'notice', message: `Applied catalog step ${i}`, source: 'Puppet', tags: ['notice'], time: new Date(p.time).toISOString(), file: null, line: null,
  }));
  return JSON.stringify({
    host: p.certname, time: new Date(p.time).toISOString(), configuration_version: p.time, transaction_uuid: p.transactionUuid, catalog_uuid: p.transactionUuid,
    code_id: null, job_id: null, cached_catalog_status: 'not_used', report_format: 12, puppet_version: '8.10.0', status: p.status, noop: false,
    noop_pending: false, environment: 'production', corrective_change: false, logs,
    metrics: { time: { name: 'time', label: 'Time', values: [['total', 'Total', 1.5]] } }, resource_statuses: {},
  });
}
