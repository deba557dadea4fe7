import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Metrics } from './metrics.ts';
import { parsePrometheusText } from '../../test/helpers/prometheus.ts';

// docs/grafana-dashboard.json is valid JSON and every metric name its queries use is one
// ringmaster exposes, so a renamed metric cannot leave an empty panel behind.

type Target = { expr?: string };
type Panel = { id: number; type: string; title: string; targets?: Target[]; panels?: Panel[] };
type Dashboard = { uid: string; title: string; panels: Panel[]; templating: { list: { definition?: string }[] } };

test('the Grafana dashboard is valid JSON whose queries name only metrics that exist', async () => {
  const text = await readFile(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
  const dashboard = JSON.parse(text) as Dashboard;
  assert.equal(dashboard.uid, 'ringmaster');

  const m = new Metrics({ read: () => Promise.resolve({ pools: [] }), now: () => 0 });
  const exposed = parsePrometheusText((await m.scrape()).body);
  const histograms = new Set([...exposed.values()].filter((f) => f.type === 'histogram').map((f) => f.name));
  const exists = (name: string) => exposed.has(name) || ['_bucket', '_sum', '_count'].some((s) => name.endsWith(s) && histograms.has(name.slice(0, -s.length)));

  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const queries = [...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')), ...dashboard.templating.list.map((v) => v.definition ?? '')];
  const used = new Set(queries.flatMap((q) => [...q.matchAll(/\bringmaster_[a-zA-Z0-9_:]*/g)].map((x) => x[0])));
  assert.ok(used.size >= 30, `the dashboard uses ${used.size} metrics`);
  assert.deepEqual([...used].filter((n) => !exists(n)), [], 'metrics the dashboard names that ringmaster does not expose');
  for (const p of panels.filter((p) => p.type !== 'row')) assert.ok((p.targets ?? []).length > 0, `panel ${p.title} has a query`);
  // Every request metric appears somewhere on the dashboard.
  for (const name of ['ringmaster_http_requests_total', 'ringmaster_http_request_duration_seconds_bucket', 'ringmaster_compile_queue_depth', 'ringmaster_pool_member_in_flight', 'ringmaster_tls_handshake_failures_total', 'ringmaster_ca_crl_expiry_seconds', 'ringmaster_reports_total', 'ringmaster_dns_responses_total']) {
    assert.ok(used.has(name), name);
  }
});
