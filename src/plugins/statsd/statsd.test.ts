/**
 * statsd: the lines a real UDP (and TCP) StatsD listener receives — Kong's
 * metric names, stat types and values, consumer and status metrics,
 * allow_status_codes, tag styles, packet combining, hostname_in_prefix,
 * sampling, requests that matched no service.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { eventually, request } from '../../../test/helpers/process.ts';

/** A consumer whose username holds every StatsD and tag-style separator. */
const EVIL = 'e.vil:1|c@0.5#tag,x=y [z]\nforged:1|c';

let upstream: TestUpstream;
let gw: TestGateway;
let udp: Socket;
let tcp: Server;
const datagrams: string[] = [];
const tcpLines: string[] = [];
const lines = () => datagrams.flatMap((d) => d.split('\n')).filter((l) => l !== '');
const withPrefix = (p: string) => lines().filter((l) => l.startsWith(`${p}.`));

/** Waits until a line matching `re` arrives; returns it. */
async function line(re: RegExp, from: () => string[] = lines): Promise<string> {
  let hit: string | undefined;
  await eventually(() => (hit = from().find((l) => re.test(l))) !== undefined, 10000, `a statsd line matching ${re}\n${from().join('\n')}`);
  return hit!;
}

before(async () => {
  upstream = await startUpstream();
  udp = createSocket('udp4');
  udp.on('message', (m) => datagrams.push(m.toString('utf8')));
  await new Promise<void>((ok) => udp.bind(0, '127.0.0.1', () => ok()));
  tcp = createServer((s) => {
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      tcpLines.push(...parts.filter((p) => p !== ''));
    });
  });
  await new Promise<void>((ok) => tcp.listen(0, '127.0.0.1', () => ok()));
  const port = udp.address().port;
  const statsd = (config: object) => ({ name: 'statsd', config: { host: '127.0.0.1', port, ...config } });
  const counter = (name: string, extra: object = {}) => ({ name, stat_type: 'counter', sample_rate: 1, ...extra });
  const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [statsd(config)] });
  gw = await startGateway({
    consumers: [
      { username: 'alice', custom_id: 'cust-1', keyauth_credentials: [{ key: 'alice-key' }] },
      { username: EVIL, custom_id: `${EVIL}-c`, keyauth_credentials: [{ key: 'evil-key' }] },
    ],
    services: [
      {
        name: 'api.v1',
        url: upstream.url,
        routes: [
          { name: 'auth', paths: ['/auth'], plugins: [{ name: 'key-auth', config: {} }] },
          route('filtered', { prefix: 'filt', allow_status_codes: ['400-499'], metrics: [counter('status_count')] }),
          route('dog', { prefix: 'dog', tag_style: 'dogstatsd', metrics: [counter('request_count'), counter('status_count'), { name: 'latency', stat_type: 'timer' }] }),
          route('influx', { prefix: 'infl', tag_style: 'influxdb', metrics: [counter('status_count')] }),
          route('librato', { prefix: 'lib', tag_style: 'librato', metrics: [counter('request_count')] }),
          route('signalfx', { prefix: 'sfx', tag_style: 'signalfx', metrics: [counter('request_count')] }),
          route('packed', { prefix: 'pack', udp_packet_size: 1000, queue: { max_coalescing_delay: 0.05 } }),
          route('host', { prefix: 'hn', hostname_in_prefix: true, metrics: [counter('request_count')] }),
          { ...route('ids', {}), plugins: [statsd({ prefix: 'ids', service_identifier_default: 'service_id', metrics: [counter('request_count'), counter('request_per_user', { consumer_identifier: 'username' })] }), { name: 'key-auth', config: {} }] },
          {
            ...route('evil', {}),
            plugins: [
              statsd({ prefix: 'evil', consumer_identifier_default: 'username', metrics: [counter('request_per_user'), counter('status_count_per_user'), counter('status_count_per_user_per_route'), { name: 'unique_users', stat_type: 'set' }] }),
              { name: 'key-auth', config: {} },
            ],
          },
          {
            ...route('evildog', {}),
            plugins: [statsd({ prefix: 'evildog', tag_style: 'dogstatsd', consumer_identifier_default: 'username', metrics: [counter('request_per_user')] }), { name: 'key-auth', config: {} }],
          },
          {
            ...route('evilinflux', {}),
            plugins: [statsd({ prefix: 'evilinflux', tag_style: 'influxdb', metrics: [counter('status_count_per_user')] }), { name: 'key-auth', config: {} }],
          },
          route('sampled', { prefix: 'samp', metrics: [counter('request_count', { sample_rate: 0.5 })] }),
          route('meter', { prefix: 'met', metrics: [{ name: 'request_size', stat_type: 'meter' }, { name: 'response_size', stat_type: 'histogram' }, { name: 'kong_latency', stat_type: 'gauge', sample_rate: 1 }] }),
          { name: 'tcp', paths: ['/tcp'], plugins: [{ name: 'statsd', config: { host: '127.0.0.1', port: (tcp.address() as { port: number }).port, use_tcp: true, prefix: 'tcp', metrics: [counter('request_count')] } }] },
        ],
      },
      {
        // No name: Kong names it by its host (service_name_or_host), also when no upstream was called.
        url: upstream.url,
        routes: [
          route('unnamed', { prefix: 'un', metrics: [counter('status_count')] }),
          { ...route('unnamed-keyed', {}), plugins: [statsd({ prefix: 'unk', metrics: [counter('status_count')] }), { name: 'key-auth', config: {} }] },
        ],
      },
    ],
    plugins: [statsd({})],
  });
});

after(async () => {
  await gw.close();
  await upstream.close();
  udp.close();
  tcp.close();
});

describe('statsd', () => {
  test("Kong's default metrics for an authenticated request", async () => {
    const r = await request(gw.port, '/auth', { headers: { apikey: 'alice-key' } });
    assert.equal(r.status, 200);
    const routeId = gw.gateway.runtime.routes.find((x) => x.ref.name === 'auth')!.ref.id;
    const s = 'kong.service.api_v1'; // dots of the service name become underscores (Kong)
    assert.equal(await line(/^kong\.service\.api_v1\.request\.count:/), `${s}.request.count:1|c`);
    assert.equal(await line(/^kong\.service\.api_v1\.status\.200:/), `${s}.status.200:1|c`);
    assert.match(await line(/^kong\.service\.api_v1\.latency:/), /^kong\.service\.api_v1\.latency:\d+(\.\d+)?\|ms$/);
    assert.match(await line(/\.upstream_latency:/), /^kong\.service\.api_v1\.upstream_latency:\d+(\.\d+)?\|ms$/);
    assert.match(await line(/\.kong_latency:/), /^kong\.service\.api_v1\.kong_latency:\d+(\.\d+)?\|ms$/);
    const reqSize = Number(/:(\d+)\|c$/.exec(await line(/^kong\.service\.api_v1\.request\.size:/))![1]);
    assert.ok(reqSize >= 40, `request.size ${reqSize} counts the request head`);
    const resSize = Number(/:(\d+)\|c$/.exec(await line(/^kong\.service\.api_v1\.response\.size:/))![1]);
    assert.equal(resSize, Buffer.byteLength(r.body), 'response.size is the body sent');
    assert.equal(await line(/user\.uniques/), `${s}.user.uniques:cust-1|s`, 'consumer_identifier_default is custom_id');
    assert.equal(await line(/user\.cust-1\.request\.count/), `${s}.user.cust-1.request.count:1|c`);
    assert.equal(await line(/^kong\.service\.api_v1\.user\.cust-1\.status\./), `${s}.user.cust-1.status.200:1|c`);
    assert.equal(await line(/workspace\./), `${s}.workspace.default.status.200:1|c`);
    assert.equal(await line(/^kong\.route\./), `kong.route.${routeId}.user.cust-1.status.200:1|c`);
    assert.ok(!lines().some((l) => l.includes('shdict')), 'shdict_usage sends nothing');
  });

  test('a refused request: status 401, no consumer metrics, no upstream latency', async () => {
    datagrams.length = 0;
    assert.equal((await request(gw.port, '/auth')).status, 401);
    await line(/^kong\.service\.api_v1\.status\.401:1\|c$/);
    await line(/^kong\.service\.api_v1\.kong_latency:/);
    assert.ok(!lines().some((l) => l.includes('.user.') || l.includes('upstream_latency')), lines().join('\n'));
  });

  test('requests that match no service: global.unmatched', async () => {
    assert.equal((await request(gw.port, '/nowhere')).status, 404);
    assert.equal(await line(/^kong\.global\.unmatched\.status\./), 'kong.global.unmatched.status.404:1|c');
  });

  test('allow_status_codes: only the listed ranges are sent', async () => {
    await request(gw.port, '/filtered'); // 200: not in 400-499
    await request(gw.port, '/filtered/x', { method: 'TRACE' }); // still 200 from the echo upstream
    await request(gw.port, '/dog'); // a later request of another route shows the first ones were processed
    await line(/^dog\./);
    assert.deepEqual(withPrefix('filt'), []);
  });

  test('tag styles: dogstatsd, influxdb, librato, signalfx', async () => {
    await request(gw.port, '/dog');
    const tags = 'workspace:default,service:api.v1,route:dog';
    assert.equal(await line(/^dog\.request\.count/), `dog.request.count:1|c|#${tags}`);
    assert.equal(await line(/^dog\.status\.count/), `dog.status.count:1|c|#${tags},status:200`);
    assert.match(await line(/^dog\.latency/), new RegExp(`^dog\\.latency:[\\d.]+\\|ms\\|#${tags}$`));
    await request(gw.port, '/influx');
    assert.equal(await line(/^infl\./), 'infl.status.count,workspace=default,service=api.v1,route=influx,status=200:1|c');
    await request(gw.port, '/librato');
    assert.equal(await line(/^lib\./), 'lib.request.count#workspace=default,service=api.v1,route=librato:1|c');
    await request(gw.port, '/signalfx');
    assert.equal(await line(/^sfx\./), 'sfx.request.count[workspace=default,service=api.v1,route=signalfx]:1|c');
  });

  test('udp_packet_size: the lines of a request are combined into packets', async () => {
    await request(gw.port, '/packed');
    await line(/^pack\.service\.api_v1\.request\.count:1\|c$/);
    await eventually(() => datagrams.some((d) => d.startsWith('pack.') && d.split('\n').length > 3), 5000, 'a combined packet');
    assert.ok(datagrams.filter((d) => d.startsWith('pack.')).every((d) => Buffer.byteLength(d) <= 1000));
  });

  test('hostname_in_prefix, service and consumer identifiers', async () => {
    await request(gw.port, '/host');
    assert.equal(await line(/^hn\./), `hn.node.${hostname().replace(/\./g, '_')}.service.api_v1.request.count:1|c`);
    await request(gw.port, '/ids', { headers: { apikey: 'alice-key' } });
    const svcId = gw.gateway.runtime.services[0]!.ref.id;
    assert.equal(await line(/^ids\.service\.[^.]+\.request\.count/), `ids.service.${svcId}.request.count:1|c`);
    assert.equal(await line(/^ids\..*user/), `ids.service.${svcId}.user.alice.request.count:1|c`);
  });

  test("a service without a name is named by its configured host (Kong's service_name_or_host), refused requests too", async () => {
    await request(gw.port, '/unnamed');
    assert.equal(await line(/^un\./), 'un.service.127_0_0_1.status.200:1|c');
    await request(gw.port, '/unnamed-keyed');
    assert.equal(await line(/^unk\./), 'unk.service.127_0_0_1.status.401:1|c');
  });

  test('consumer usernames and custom ids cannot corrupt lines: separators and dots become underscores', async () => {
    const safe = 'e_vil_1_c_0_5_tag_x_y__z__forged_1_c';
    // The status is whatever the request got (the newline in X-Consumer-Username may make the upstream call fail): what matters are the lines.
    const status: number[] = [];
    for (const path of ['/evil', '/evildog', '/evilinflux']) status.push((await request(gw.port, path, { headers: { apikey: 'evil-key' } })).status);
    const routeId = gw.gateway.runtime.routes.find((x) => x.ref.name === 'evil')!.ref.id;
    assert.equal(await line(/^evil\.service\.api_v1\.user\.[^.]+\.request\.count/), `evil.service.api_v1.user.${safe}.request.count:1|c`);
    assert.equal(await line(/^evil\.service\.api_v1\.user\.[^.]+\.status\./), `evil.service.api_v1.user.${safe}.status.${status[0]}:1|c`);
    assert.equal(await line(/^evil\.route\./), `evil.route.${routeId}.user.${safe}.status.${status[0]}:1|c`);
    assert.equal(await line(/^evil\..*uniques/), 'evil.service.api_v1.user.uniques:e.vil_1_c_0.5_tag_x_y__z__forged_1_c|s', 'a set member keeps its dots');
    assert.equal(
      await line(/^evildog\./),
      'evildog.user.request.count:1|c|#workspace:default,service:api.v1,route:evildog,consumer:e.vil_1_c_0.5_tag_x_y__z__forged_1_c',
    );
    assert.equal(await line(/^evilinflux\./), `evilinflux.user.status.count,workspace=default,service=api.v1,route=evilinflux,consumer=e.vil_1_c_0.5_tag_x_y__z__forged_1_c-c,status=${status[2]}:1|c`);
    const wellFormed = /^[^\s:|@#]+:[^\s:|]+\|[a-z]+(\|@[\d.]+)?(\|#[^\s|]*)?$/;
    const evil = lines().filter((l) => l.startsWith('evil'));
    assert.equal(evil.length, 6, evil.join('\n'));
    for (const l of evil) assert.match(l, wellFormed);
    assert.ok(!lines().some((l) => l.startsWith('forged')), 'no forged line');
  });

  test('stat types meter, histogram and gauge', async () => {
    await request(gw.port, '/meter');
    assert.match(await line(/^met\.service\.api_v1\.request\.size/), /^met\.service\.api_v1\.request\.size:\d+\|m$/);
    assert.match(await line(/^met\.service\.api_v1\.response\.size/), /^met\.service\.api_v1\.response\.size:\d+\|h$/);
    assert.match(await line(/^met\.service\.api_v1\.kong_latency/), /^met\.service\.api_v1\.kong_latency:[\d.]+\|g$/);
  });

  test('sample_rate: a fraction of the events, marked @rate', async () => {
    const n = 60;
    for (let i = 0; i < n; i++) await request(gw.port, '/sampled');
    await request(gw.port, '/host');
    await eventually(() => withPrefix('hn').length >= 2, 5000, 'the marker request');
    const got = withPrefix('samp');
    assert.ok(got.every((l) => l === 'samp.service.api_v1.request.count:1|c|@0.5'), got.join('\n'));
    assert.ok(got.length > 5 && got.length < n - 5, `${got.length} of ${n} sent at rate 0.5`);
  });

  test('use_tcp: newline-terminated lines over TCP', async () => {
    await request(gw.port, '/tcp');
    assert.equal(await line(/^tcp\./, () => tcpLines), 'tcp.service.api_v1.request.count:1|c');
  });

  test('config errors: counters need a sample_rate, ranges must be ranges', async () => {
    const bad = (config: object) => startGateway({ plugins: [{ name: 'statsd', config }] });
    await assert.rejects(bad({ metrics: [{ name: 'request_count', stat_type: 'counter' }] }), /sample_rate is required/);
    await assert.rejects(bad({ allow_status_codes: ['200'] }), /pattern/);
    await assert.rejects(bad({ metrics: [{ name: 'latency', stat_type: 'timer', sample_rate: 2 }] }), /at most 1/);
  });
});
