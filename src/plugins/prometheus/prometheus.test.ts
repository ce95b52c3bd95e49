/**
 * prometheus: metric values after known traffic (requests by status, route,
 * consumer and source; histogram counts; bandwidth; security decisions by
 * plugin and outcome; upstream target health), then real `palisade start`
 * processes: /metrics on the status listener without the admin token, config
 * reload counters, and the sum over two cluster workers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { eventually, freePorts, request, spawnPalisade, TempDir, type PalisadeProcess } from '../../../test/helpers/process.ts';

type Samples = { name: string; labels: Record<string, string>; value: number }[];

/** Parse Prometheus exposition text (the sample lines). */
function parse(text: string): Samples {
  const out: Samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
}

describe('prometheus: values after known traffic', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const scrape = async () => parse(await gw.gateway.metrics.text());

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] }, { custom_id: 'c-bob', keyauth_credentials: [{ key: 'bob-key' }] }],
      upstreams: [
        {
          name: 'pool',
          targets: [{ target: `127.0.0.1:${upstream.port}` }, { target: '127.0.0.1:1' }],
          healthchecks: { passive: { unhealthy: { tcp_failures: 1 } } },
        },
        { name: 'unchecked', targets: [{ target: `127.0.0.1:${upstream.port}` }] },
      ],
      services: [
        {
          name: 'api',
          url: upstream.url,
          routes: [
            { name: 'open', paths: ['/open'] },
            { name: 'secure', paths: ['/secure'], plugins: [{ name: 'key-auth', config: {} }] },
            { name: 'limited', paths: ['/limited'], plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'ip' } }] },
            { name: 'refused', paths: ['/refused'], plugins: [{ name: 'request-termination', config: { status_code: 403 } }] },
          ],
        },
        { name: 'pooled', host: 'pool', port: 80, protocol: 'http', routes: [{ name: 'pooled', paths: ['/pooled'] }] },
        { host: 'pool', port: 80, protocol: 'http', routes: [{ name: 'nameless', paths: ['/nameless'] }] }, // Kong labels it by its host
        { name: 'quiet', url: upstream.url, routes: [{ paths: ['/quiet'] }], plugins: [{ name: 'prometheus', config: { status_code_metrics: false, decision_metrics: false } }] },
        {
          name: 'exporters', // their own metrics are registered when they are compiled
          url: upstream.url,
          routes: [{ paths: ['/exporters'] }],
          plugins: [
            { name: 'statsd', config: { host: '127.0.0.1', port: 9 } },
            { name: 'opentelemetry', config: { traces_endpoint: 'http://127.0.0.1:9/v1/traces', sampling_rate: 0 } },
          ],
        },
      ],
      plugins: [
        {
          name: 'prometheus',
          config: { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true },
        },
      ],
    });
    const send = async (path: string, n: number, headers: Record<string, string> = {}) => {
      for (let i = 0; i < n; i++) await request(gw.port, path, { headers });
    };
    await send('/open', 3);
    await send('/secure', 2); // no key: 401
    await send('/secure', 4, { apikey: 'alice-key' });
    await send('/secure', 1, { apikey: 'bob-key' });
    await send('/limited', 3); // 2 pass, the third is refused: 429
    await send('/refused', 2); // the gateway answers: the upstream is never called
    await send('/nowhere', 2); // no route: 404, not counted (no service)
    await send('/quiet', 2); // the service's own prometheus instance records no status codes
    await send('/pooled', 2); // one of the two tries hits the dead target, which is ejected
    await send('/nameless', 1);
  });

  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('kong_http_requests_total by service, route, code, source and consumer', async () => {
    const s = await scrape();
    const req = (labels: Record<string, string>) => value(s, 'kong_http_requests_total', labels);
    assert.equal(req({ service: 'api', route: 'open', code: '200', source: 'service', consumer: '' }), 3);
    assert.equal(req({ service: 'api', route: 'secure', code: '401', source: 'kong', consumer: '' }), 2);
    assert.equal(req({ service: 'api', route: 'secure', code: '200', consumer: 'alice' }), 4);
    assert.equal(req({ service: 'api', route: 'secure', code: '200', consumer: 'c-bob' }), 1, 'a consumer without username is labelled with its custom_id');
    assert.equal(req({ route: 'limited', code: '200' }), 2);
    assert.equal(req({ route: 'limited', code: '429', source: 'kong' }), 1);
    assert.equal(req({ code: '404' }), undefined, 'requests that matched no service are not counted (Kong)');
    assert.equal(req({ service: 'quiet' }), undefined, 'the more specific instance (status_code_metrics off) wins for its service');
    assert.equal(req({ service: 'pooled', code: '200' }), 2);
    assert.equal(req({ service: 'pool', route: 'nameless', code: '200' }), 1, "a service without a name is labelled with its host, as in Kong (not its id)");
    const paths = s.filter((x) => x.name === 'kong_http_requests_total').flatMap((x) => Object.values(x.labels));
    assert.ok(!paths.some((v) => v.startsWith('/')), 'no raw paths in labels');
  });

  test('latency histograms: one observation per request; upstream only when the upstream was called', async () => {
    const s = await scrape();
    assert.equal(value(s, 'kong_request_latency_ms_count', { service: 'api', route: 'open' }), 3);
    assert.equal(value(s, 'kong_kong_latency_ms_count', { service: 'api', route: 'secure' }), 7);
    assert.equal(value(s, 'kong_upstream_latency_ms_count', { service: 'api', route: 'secure' }), 5, 'the two 401s never reached the upstream');
    assert.equal(value(s, 'kong_upstream_latency_ms_count', { route: 'limited' }), 2);
    assert.equal(value(s, 'kong_request_latency_ms_count', { route: 'refused' }), 2);
    assert.ok(!s.some((x) => x.name.startsWith('kong_upstream_latency_ms') && x.labels.route === 'refused'), 'no upstream series for a route whose requests never reached it');
    const inf = value(s, 'kong_request_latency_ms_bucket', { route: 'open', le: '+Inf' });
    assert.equal(inf, 3);
    const sum = value(s, 'kong_request_latency_ms_sum', { route: 'open' })!;
    assert.ok(sum > 0 && sum < 30000, `latency sum ${sum} ms`);
    // The gateway's own time has buckets below 1 ms.
    assert.ok(s.some((x) => x.name === 'kong_kong_latency_ms_bucket' && x.labels.le === '0.25'));
  });

  test('kong_bandwidth_bytes: ingress and egress per route and consumer', async () => {
    const s = await scrape();
    const ingress = value(s, 'kong_bandwidth_bytes', { route: 'secure', direction: 'ingress', consumer: 'alice' })!;
    const egress = value(s, 'kong_bandwidth_bytes', { route: 'secure', direction: 'egress', consumer: 'alice' })!;
    // Each request head carries at least "GET /secure HTTP/1.1" and the apikey header.
    assert.ok(ingress >= 4 * 40, `ingress ${ingress}`);
    // The echo upstream answers with the request it saw (well over 100 bytes each).
    assert.ok(egress >= 4 * 100, `egress ${egress}`);
  });

  test('palisade_security_decisions_total by plugin and outcome', async () => {
    const s = await scrape();
    const d = (labels: Record<string, string>) => value(s, 'palisade_security_decisions_total', labels);
    assert.equal(d({ plugin: 'key-auth', outcome: 'authenticated', route: 'secure' }), 5);
    assert.equal(d({ plugin: 'key-auth', outcome: 'deny', route: 'secure' }), 2);
    assert.equal(d({ plugin: 'rate-limiting', outcome: 'deny', route: 'limited' }), 1);
    assert.equal(d({ outcome: 'allow' }), undefined);
  });

  test('kong_upstream_target_health: states of the targets of the configured upstreams', async () => {
    const s = await scrape();
    const h = (target: string, state: string, upstream = 'pool') => value(s, 'kong_upstream_target_health', { upstream, target, state });
    const live = `127.0.0.1:${upstream.port}`;
    assert.equal(h(live, 'healthy'), 1);
    assert.equal(h(live, 'unhealthy'), 0);
    assert.equal(h('127.0.0.1:1', 'unhealthy'), 1);
    assert.equal(h('127.0.0.1:1', 'healthy'), 0);
    assert.equal(h(live, 'healthchecks_off', 'unchecked'), 1);
    assert.equal(value(s, 'kong_upstream_target_health', { subsystem: 'http' })! > 0, true);
  });

  test('process metrics, the error counter and the config metrics are there', async () => {
    const s = await scrape();
    assert.equal(value(s, 'kong_nginx_metric_errors_total'), 0);
    assert.ok(value(s, 'process_resident_memory_bytes')! > 0);
    assert.ok(value(s, 'nodejs_eventloop_lag_seconds') !== undefined);
    assert.equal(value(s, 'palisade_config_info', { version: gw.gateway.runtime.version }), 1);
  });

  test('every metric the Grafana dashboard queries is exported', async () => {
    const text = await gw.gateway.metrics.text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    exported.add('palisade_worker_restarts_total'); // cluster primary only (checked in the --workers 2 test)
    const dashboard = readFileSync(new URL('../../../examples/observability/grafana-dashboard.json', import.meta.url), 'utf8');
    const queried = new Set([...dashboard.matchAll(/\b((?:kong|palisade|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')));
    assert.ok(queried.size >= 15, [...queried].join());
    assert.deepEqual([...queried].filter((m) => !exported.has(m)), []);
  });

  test('a reload keeps the values; a config without the plugin stops upstream health', async () => {
    const before = value(await scrape(), 'kong_http_requests_total', { route: 'open' });
    await gw.reload({ services: [{ name: 'api', url: upstream.url, routes: [{ name: 'open', paths: ['/open'] }] }] });
    await request(gw.port, '/open');
    const s = await scrape();
    assert.equal(value(s, 'kong_http_requests_total', { route: 'open' }), before, 'no plugin, no new counts; old counts stay');
    assert.equal(value(s, 'kong_upstream_target_health'), undefined, 'the gauge is empty once no config version asks for it');
    assert.equal(value(s, 'palisade_config_reloads_total'), 1);
  });
});

describe('prometheus: /metrics of a real palisade process', () => {
  const dir = new TempDir();
  let upstream: TestUpstream;
  const token = 'metrics-test-admin-token';
  const procs: PalisadeProcess[] = [];

  const config = (extraRoute = false) =>
    JSON.stringify({
      _format_version: '3.0',
      server: { access_log: 'off', watch: false, shutdown_timeout: 2000 },
      admin: { token },
      services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'r', paths: ['/r'] }, ...(extraRoute ? [{ name: 'x', paths: ['/x'] }] : [])] }],
      plugins: [{ name: 'prometheus', config: { status_code_metrics: true } }],
    });

  async function start(file: string, workers: number) {
    const [port, admin] = (await freePorts(2)) as [number, number];
    const p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', String(workers)]);
    procs.push(p);
    await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
    const metrics = async () => {
      const r = await request(admin, '/metrics');
      assert.equal(r.status, 200, r.body);
      assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      return parse(r.body);
    };
    return { port, admin, metrics };
  }

  before(async () => {
    upstream = await startUpstream();
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await upstream.close();
    dir.remove();
  });

  test('served without the admin token (the rest of the admin API needs it); reload counters', async () => {
    const file = dir.write('one.json', config());
    const g = await start(file, 1);
    assert.equal((await request(g.admin, '/config')).status, 401, 'the admin API needs the token');
    for (let i = 0; i < 5; i++) assert.equal((await request(g.port, '/r')).status, 200);
    let s = await g.metrics();
    assert.equal(value(s, 'kong_http_requests_total', { route: 'r', code: '200' }), 5);
    assert.equal(value(s, 'palisade_config_reloads_total'), 0);
    assert.equal(value(s, 'palisade_config_reload_failures_total'), 0);
    const auth = { authorization: `Bearer ${token}` };
    dir.write('one.json', config(true));
    assert.equal((await request(g.admin, '/config/reload', { method: 'POST', headers: auth })).status, 200);
    dir.write('one.json', '{ not json');
    assert.equal((await request(g.admin, '/config/reload', { method: 'POST', headers: auth })).status, 400);
    s = await g.metrics();
    assert.equal(value(s, 'palisade_config_reloads_total'), 1);
    assert.equal(value(s, 'palisade_config_reload_failures_total'), 1);
    assert.equal(value(s, 'kong_http_requests_total', { route: 'r', code: '200' }), 5, 'counts survive the reload');
  });

  test('--workers 2: /metrics is the whole gateway (every worker summed)', async () => {
    const file = dir.write('two.json', config());
    const g = await start(file, 2);
    const n = 20;
    for (let i = 0; i < n; i++) assert.equal((await request(g.port, '/r')).status, 200); // each on a new connection: spread over both workers
    await eventually(async () => value(await g.metrics(), 'kong_http_requests_total', { route: 'r', code: '200' }) === n, 10000, `${n} requests counted`);
    const s = await g.metrics();
    assert.equal(value(s, 'palisade_config_reloads_total'), 0, 'the primary counts reloads once');
    assert.equal(value(s, 'palisade_worker_restarts_total'), 0);
    assert.equal(s.filter((x) => x.name === 'nodejs_version_info').length, 1, 'one version line, not one per worker');
    assert.ok(value(s, 'process_resident_memory_bytes')! > 0);
  });
});
