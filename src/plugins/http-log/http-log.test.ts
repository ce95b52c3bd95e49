import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { startHttpCollector, type HttpCollector } from '../../../test/helpers/collectors.ts';
import { eventually, freePort } from '../../../test/helpers/process.ts';

const SECRET = 'secretvalue-9f3a';

function config(upstream: TestUpstream, collector: HttpCollector, pluginConfig: object, extra: object = {}) {
  return {
    services: [
      {
        name: 'svc',
        url: `${upstream.url}/base`,
        routes: [
          { name: 'open', paths: ['/open'], strip_path: true },
          { name: 'keyed', paths: ['/keyed'], plugins: [{ name: 'key-auth', config: { key_names: ['x-custom-key'] } }] },
        ],
      },
    ],
    consumers: [{ username: 'alice', keyauth_credentials: [{ key: SECRET }] }],
    plugins: [{ name: 'http-log', config: { http_endpoint: `${collector.url}/logs?source=gw`, ...pluginConfig } }],
    ...extra,
  };
}

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

/** Sequential requests through the gateway on one keep-alive connection; latencies in ms. */
async function measure(gw: TestGateway, n: number): Promise<number[]> {
  const agent = new Agent({ connections: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await request(`${gw.url}/open/x`, { dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
      out.push(performance.now() - t0);
    }
  } finally {
    await agent.close();
  }
  return out;
}

describe('http-log', () => {
  let upstream: TestUpstream;
  before(async () => {
    upstream = await startUpstream();
  });
  after(async () => {
    await upstream?.close();
  });

  test('batches of log records arrive at the collector as JSON arrays, in Kong shape with Palisade fields', async () => {
    const collector = await startHttpCollector();
    const gw = await startGateway(config(upstream, collector, { queue: { max_batch_size: 5, max_coalescing_delay: 0.2 }, headers: { 'X-Collector-Token': 't0k' } }));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await request(`${gw.url}/open/item/${i}?page=${i}&flag`);
        await r.body.dump();
        ids.push(r.headers['x-request-id'] as string);
      }
      await eventually(() => collector.records().length === 12, 10000, '12 records');
      for (const r of collector.received) {
        assert.equal(r.method, 'POST');
        assert.equal(r.url, '/logs?source=gw');
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['x-collector-token'], 't0k');
        assert.ok(Array.isArray(JSON.parse(r.body)), 'max_batch_size > 1 sends a JSON array');
      }
      assert.ok(collector.received.length < 12, `batched: ${collector.received.length} requests for 12 records`);
      const records = collector.records();
      assert.deepEqual(records.map((r) => r.request_id).sort(), [...ids].sort());
      const rec = records.find((r) => r.request.uri === '/open/item/3?page=3&flag')!;
      assert.ok(rec, 'record of /open/item/3');
      assert.equal(rec.request.method, 'GET');
      assert.equal(rec.request.url, `http://127.0.0.1:${gw.port}/open/item/3?page=3&flag`);
      assert.deepEqual(rec.request.querystring, { page: '3', flag: true });
      assert.equal(rec.request.id, rec.request_id);
      assert.ok(rec.request.size > 0);
      assert.equal(rec.upstream_uri, '/base/item/3?page=3&flag');
      assert.equal(rec.response.status, 200);
      assert.equal(rec.response.headers['x-request-id'], rec.request_id);
      assert.ok(rec.response.size > 0);
      assert.equal(rec.route.name, 'open');
      assert.equal(rec.service.name, 'svc');
      assert.equal(rec.consumer, undefined);
      assert.equal(rec.client_ip, '127.0.0.1');
      assert.equal(rec.source, 'upstream');
      assert.equal(rec.upstream_attempts, 1);
      assert.deepEqual(rec.tries, [{ ip: '127.0.0.1', port: upstream.port }]);
      assert.ok(rec.latencies.request >= rec.latencies.proxy && rec.latencies.proxy >= 0, JSON.stringify(rec.latencies));
      assert.ok(Math.abs(rec.latencies.kong + rec.latencies.proxy - rec.latencies.request) < 0.01);
      assert.ok(Math.abs(rec.started_at - Date.now()) < 60000);
      assert.deepEqual(rec.decisions, []);
      assert.match(rec.config_version, /^[0-9a-f]{12}$/);
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('max_batch_size 1 sends one JSON object per request; decisions and the consumer are in the record', async () => {
    const collector = await startHttpCollector();
    const gw = await startGateway(config(upstream, collector, {}));
    try {
      const ok = await request(`${gw.url}/keyed`, { headers: { 'x-custom-key': SECRET } });
      await ok.body.dump();
      const denied = await request(`${gw.url}/keyed`, { headers: { 'x-custom-key': 'wrong' } });
      await denied.body.dump();
      assert.equal(denied.statusCode, 401);
      await eventually(() => collector.received.length === 2, 10000, 'two requests');
      for (const r of collector.received) assert.ok(!Array.isArray(JSON.parse(r.body)));
      const [a, b] = collector.records();
      assert.equal(a.consumer.username, 'alice');
      assert.equal(a.authenticated_entity.consumer_id, a.consumer.id);
      assert.deepEqual(a.decisions, [{ plugin: 'key-auth', outcome: 'authenticated', reason: 'credentials accepted', status: 0 }]);
      assert.equal(b.response.status, 401);
      assert.equal(b.source, 'gateway');
      assert.equal(b.upstream_uri, '');
      assert.equal(b.latencies.proxy, -1);
      assert.equal(b.decisions[0].plugin, 'key-auth');
      assert.equal(b.decisions[0].outcome, 'deny');
      assert.equal(b.decisions[0].status, 401);
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('credentials, cookies, API keys and configured fields never reach the collector', async () => {
    const collector = await startHttpCollector();
    const gw = await startGateway(config(upstream, collector, { redact: ['client_ip', 'request.headers.X-Email', 'x-trace-secret', 'consumer.username'] }));
    try {
      const headers = {
        authorization: `Bearer ${SECRET}-bearer`,
        'proxy-authorization': `Basic ${SECRET}-proxy`,
        cookie: `session=${SECRET}-cookie`,
        'x-api-key': `${SECRET}-apikey`,
        'x-custom-key': SECRET,
        'x-email': 'alice@example.com',
        'x-trace-secret': `${SECRET}-trace`,
        'x-honeycomb-team': `${SECRET}-team`,
        'x-visible': 'kept',
      };
      const r = await request(`${gw.url}/keyed/a?apikey=${SECRET}-q1&x-custom-key=${SECRET}-q2&x-trace-secret=${SECRET}-q3&token=${SECRET}-q4&page=2`, { headers });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
      await eventually(() => collector.received.length === 1, 10000, 'one record');
      const raw = collector.received[0]!.body;
      assert.ok(!raw.includes(SECRET), `no secret in ${raw}`);
      assert.ok(!raw.includes('alice@example.com'));
      const rec = JSON.parse(raw);
      for (const h of ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-custom-key', 'x-email', 'x-trace-secret', 'x-honeycomb-team']) assert.equal(rec.request.headers[h], 'REDACTED', h);
      assert.equal(rec.request.headers['x-visible'], 'kept');
      assert.deepEqual(rec.request.querystring, { apikey: 'REDACTED', 'x-custom-key': 'REDACTED', 'x-trace-secret': 'REDACTED', token: 'REDACTED', page: '2' });
      assert.equal(rec.request.uri, '/keyed/a?apikey=REDACTED&x-custom-key=REDACTED&x-trace-secret=REDACTED&token=REDACTED&page=2');
      assert.match(rec.upstream_uri, /apikey=REDACTED&x-custom-key=REDACTED/);
      assert.equal(rec.client_ip, 'REDACTED');
      assert.equal(rec.consumer.username, 'REDACTED');
      assert.ok(rec.consumer.id);
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('the header and query names auth plugins read credentials from are redacted, whatever key_in_* say; headers named like secrets too', async () => {
    const collector = await startHttpCollector();
    const gw = await startGateway({
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            { name: 'partner', paths: ['/partner'], plugins: [{ name: 'key-auth', config: { key_names: ['x-partner'], key_in_query: false } }] },
            { name: 'assert', paths: ['/assert'], plugins: [{ name: 'jwt', config: { header_names: ['x-assertion'], uri_param_names: ['assertion'], cookie_names: ['jwt_session'] } }] },
          ],
        },
      ],
      consumers: [{ username: 'alice', keyauth_credentials: [{ key: SECRET }] }],
      plugins: [{ name: 'http-log', config: { http_endpoint: `${collector.url}/logs` } }],
    });
    try {
      const a = await request(`${gw.url}/partner/a?x-partner=${SECRET}-q&page=1`, {
        headers: { 'x-partner': SECRET, 'x-session-token': `${SECRET}-st`, 'x-apikey': `${SECRET}-ak`, 'x-client-secret': `${SECRET}-cs`, 'x-request-signature': `${SECRET}-sig`, 'x-page': 'kept' },
      });
      await a.body.dump();
      assert.equal(a.statusCode, 200, 'the key in the header authenticates');
      const b = await request(`${gw.url}/assert/b?assertion=${SECRET}-jq`, { headers: { 'x-assertion': `Bearer ${SECRET}-jh`, cookie: `jwt_session=${SECRET}-jc` } });
      await b.body.dump();
      assert.equal(b.statusCode, 401);
      await eventually(() => collector.records().length === 2, 10000, 'two records');
      const raw = collector.received.map((r) => r.body).join('\n');
      assert.ok(!raw.includes(SECRET), `no secret in ${raw}`);
      const [ra, rb] = [collector.records().find((r) => r.route.name === 'partner')!, collector.records().find((r) => r.route.name === 'assert')!];
      for (const h of ['x-partner', 'x-session-token', 'x-apikey', 'x-client-secret', 'x-request-signature']) assert.equal(ra.request.headers[h], 'REDACTED', h);
      assert.equal(ra.request.headers['x-page'], 'kept');
      assert.deepEqual(ra.request.querystring, { 'x-partner': 'REDACTED', page: '1' });
      assert.equal(ra.request.uri, '/partner/a?x-partner=REDACTED&page=1');
      assert.equal(rb.request.headers['x-assertion'], 'REDACTED');
      assert.equal(rb.request.headers.cookie, 'REDACTED');
      assert.deepEqual(rb.request.querystring, { assertion: 'REDACTED' });
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('query names of Object.prototype are plain names in the record (prototype-less maps)', async () => {
    const collector = await startHttpCollector();
    const gw = await startGateway(config(upstream, collector, {}));
    try {
      const r = await request(`${gw.url}/open/p?constructor=c1&__proto__=p1&toString=t1&toString=t2&hasOwnProperty`);
      await r.body.dump();
      await eventually(() => collector.received.length === 1, 10000, 'one record');
      const q = JSON.parse(collector.received[0]!.body).request.querystring;
      assert.equal(Object.getPrototypeOf(q), Object.prototype, 'JSON.parse of the wire record');
      assert.ok(Object.hasOwn(q, '__proto__'), `__proto__ is a member: ${collector.received[0]!.body}`);
      assert.equal(q.__proto__, 'p1');
      assert.equal(q.constructor, 'c1');
      assert.deepEqual(q.toString, ['t1', 't2']);
      assert.equal(q.hasOwnProperty, true);
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('a stalled collector does not slow the gateway down; a full queue drops the oldest entries and counts them', async () => {
    const healthy = await startHttpCollector();
    const stalled = await startHttpCollector('stall');
    const base = await startGateway(config(upstream, healthy, { queue: { max_batch_size: 1 } }));
    const slow = await startGateway(config(upstream, stalled, { queue: { max_batch_size: 1, max_entries: 20 }, timeout: 60000 }));
    try {
      await measure(base, 20); // warm-up
      await measure(slow, 20);
      const baseline = p99(await measure(base, 200));
      const withStall = p99(await measure(slow, 200));
      assert.ok(withStall <= Math.max(baseline * 5, baseline + 50), `p99 ${withStall.toFixed(2)} ms with a stalled collector vs ${baseline.toFixed(2)} ms`);
      await eventually(() => slow.logs.some((l) => l.msg === 'log queue full: dropping the oldest entries'), 10000, 'a drop warning');
      const warn = slow.logs.find((l) => l.msg === 'log queue full: dropping the oldest entries')!;
      assert.equal(warn.level, 40);
      assert.ok((warn.dropped as number) >= 1);
      assert.equal(warn.max_entries, 20);
      const metrics = await slow.gateway.metrics.text();
      const m = /palisade_log_dropped_total\{plugin="http-log",reason="queue_full"\} (\d+)/.exec(metrics);
      assert.ok(m && Number(m[1]) >= 200 - 20, `dropped entries counted in the metric: ${m?.[0]}`);
      await eventually(() => healthy.records().length === 220, 10000, 'every record at the healthy collector');
      assert.ok(stalled.received.length === 0);
    } finally {
      await base.close();
      await slow.close();
      await healthy.close();
      await stalled.close();
    }
  });

  test('a dead collector: requests are unaffected, failed batches are retried with backoff, then dropped and counted', async () => {
    const dead = await startHttpCollector('fail');
    const gw = await startGateway(config(upstream, dead, { queue: { max_batch_size: 10, max_coalescing_delay: 0.05, max_retry_time: 0.5, initial_retry_delay: 0.05, max_retry_delay: 0.2 } }));
    try {
      const lat = await measure(gw, 30);
      assert.ok(p99(lat) < 1000, `p99 ${p99(lat)} ms`);
      await eventually(() => gw.logs.some((l) => l.msg === 'log batch could not be delivered: dropped'), 15000, 'a delivery failure');
      const err = gw.logs.find((l) => l.msg === 'log batch could not be delivered: dropped')!;
      assert.ok((err.attempts as number) >= 3, `retried: ${err.attempts} attempts`);
      assert.match(String(err.err), /returned status code 500 and body collector down/);
      assert.ok(dead.received.length >= 3, 'the collector saw the retries');
    } finally {
      await gw.close();
      await dead.close();
    }
    // Nothing listening at all: connection refused, same outcome.
    const port = await freePort();
    const refused = await startGateway({
      ...config(upstream, dead, {}),
      plugins: [{ name: 'http-log', config: { http_endpoint: `http://127.0.0.1:${port}/`, queue: { max_retry_time: 0.3, initial_retry_delay: 0.05 } } }],
    });
    try {
      assert.ok(p99(await measure(refused, 20)) < 1000);
      await eventually(() => refused.logs.some((l) => l.msg === 'log batch could not be delivered: dropped' && /ECONNREFUSED/.test(String(l.err))), 15000, 'ECONNREFUSED');
      const metrics = await refused.gateway.metrics.text();
      assert.match(metrics, /palisade_log_dropped_total\{plugin="http-log",reason="delivery_failed"\} [1-9]/);
    } finally {
      await refused.close();
    }
  });

  test('a reload while batches are being retried: they keep their max_retry_time and arrive once the collector is back', async () => {
    const collector = await startHttpCollector('fail');
    const plugin = { queue: { max_coalescing_delay: 0.05, initial_retry_delay: 0.05, max_retry_delay: 0.5 } };
    const gw = await startGateway(config(upstream, collector, plugin));
    try {
      for (let i = 0; i < 3; i++) await (await request(`${gw.url}/open/before${i}`)).body.dump();
      await eventually(() => collector.received.length >= 2, 5000, 'failed attempts');
      await gw.reload(config(upstream, collector, plugin, { _format_version: '3.0' }));
      // Past the 5 s a retired queue gets to hand over what it holds: its transport used to be closed then.
      await new Promise((r) => setTimeout(r, 5500));
      const failedAttempts = collector.received.length;
      collector.mode = 'ok';
      const delivered = () => new Set(collector.received.slice(failedAttempts).flatMap((r) => [JSON.parse(r.body) as { request: { uri: string } } | { request: { uri: string } }[]].flat().map((x) => x.request.uri)));
      await eventually(() => delivered().size === 3, 5000, 'the three records');
      assert.deepEqual([...delivered()].sort(), ['/open/before0', '/open/before1', '/open/before2']);
    } finally {
      await gw.close();
      await collector.close();
    }
  });

  test('a collector that answers 200 and trickles its body does not hold the queue: a batch is delivered at the head, the body cut after timeout', async () => {
    const got: string[] = [];
    const trickles: NodeJS.Timeout[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        got.push((JSON.parse(body) as { request: { uri: string } }).request.uri);
        res.writeHead(200, { 'content-type': 'text/plain' });
        trickles.push(setInterval(() => res.write('.'), 300));
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const gw = await startGateway({
      services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
      plugins: [{ name: 'http-log', config: { http_endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/logs`, timeout: 500, queue: { max_retry_time: 5 } } }],
    });
    try {
      for (let i = 0; i < 4; i++) await (await request(`${gw.url}/r${i}`)).body.dump();
      // One connection (concurrency_limit 1): each trickling answer holds it for `timeout` at most.
      await eventually(() => got.length === 4, 8000, 'four records, each in its own batch');
      assert.deepEqual(got.sort(), ['/r0', '/r1', '/r2', '/r3']);
      assert.ok(!gw.logs.some((l) => l.msg === 'log batch failed: retrying'), 'no batch was retried');
    } finally {
      for (const t of trickles) clearInterval(t);
      collector.closeAllConnections();
      collector.close();
      await gw.close();
    }
  });

  test('concurrency_limit -1 and a stalled collector: batches in flight count against max_entries', async () => {
    const stalled = await startHttpCollector('stall');
    const gw = await startGateway(config(upstream, stalled, { queue: { max_batch_size: 1, max_entries: 20, concurrency_limit: -1 }, timeout: 60000 }));
    try {
      await measure(gw, 100);
      const dropped = async () => Number(/palisade_log_dropped_total\{plugin="http-log",reason="queue_full"\} (\d+)/.exec(await gw.gateway.metrics.text())?.[1] ?? 0);
      await eventually(async () => (await dropped()) >= 80, 10000, 'at most 20 entries held, the rest dropped and counted');
    } finally {
      await gw.close();
      await stalled.close();
    }
  });

  test("a collector's error body is read only in part: a body without end still fails the batch", async () => {
    let answered = 0;
    const endless = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        answered++;
        res.writeHead(500, { 'content-type': 'text/plain' });
        const chunk = 'x'.repeat(16 * 1024);
        const until = Date.now() + 20000; // longer than the test waits
        const pump = () => {
          if (Date.now() > until) return void res.end();
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      });
    });
    await new Promise<void>((ok) => endless.listen(0, '127.0.0.1', () => ok()));
    const port = (endless.address() as AddressInfo).port;
    const gw = await startGateway({
      ...config(upstream, { url: `http://127.0.0.1:${port}` } as HttpCollector, {}),
      plugins: [{ name: 'http-log', config: { http_endpoint: `http://127.0.0.1:${port}/`, queue: { max_retry_time: -1 } } }],
    });
    try {
      await (await request(`${gw.url}/open/x`)).body.dump();
      await eventually(() => gw.logs.some((l) => l.msg === 'log batch could not be delivered: dropped'), 10000, 'the batch failed');
      const err = gw.logs.find((l) => l.msg === 'log batch could not be delivered: dropped')!;
      assert.match(String(err.err), /returned status code 500 and body x{200}$/);
      assert.equal(answered, 1);
    } finally {
      await gw.close();
      endless.closeAllConnections();
      endless.close();
    }
  });

  test('config errors: custom_fields_by_lua, forbidden headers, user info with an Authorization header', async () => {
    const collector = await startHttpCollector();
    try {
      const bad = (c: object) => startGateway(config(upstream, collector, c));
      await assert.rejects(bad({ custom_fields_by_lua: { x: 'return 1' } }), /custom_fields_by_lua is not supported/);
      await assert.rejects(bad({ headers: { Host: 'x' } }), /cannot contain 'Host' header/);
      await assert.rejects(bad({ headers: { 'content-type': 'x' } }), /cannot contain 'Content-Type' header/);
      await assert.rejects(
        startGateway({ ...config(upstream, collector, {}), plugins: [{ name: 'http-log', config: { http_endpoint: 'http://u:p@127.0.0.1:1/', headers: { Authorization: 'x' } } }] }),
        /both an 'Authorization' header and user info/,
      );
      await assert.rejects(bad({ queue: { concurrency_limit: 2 } }), /concurrency_limit/);
      await assert.rejects(bad({ redact: ['a..b'] }), /redact/);
    } finally {
      await collector.close();
    }
  });

  test('user info in http_endpoint becomes Basic authentication; a reload delivers what the retired instance still held', async () => {
    const collector = await startHttpCollector();
    const withUser = (delay: number) => ({
      ...config(upstream, collector, {}),
      plugins: [{ name: 'http-log', config: { http_endpoint: `http://log%20user:p%40ss@127.0.0.1:${collector.port}/in`, queue: { max_batch_size: 50, max_coalescing_delay: delay } } }],
    });
    const gw = await startGateway(withUser(30));
    try {
      for (let i = 0; i < 3; i++) await (await request(`${gw.url}/open/r${i}`)).body.dump();
      await gw.reload(withUser(0.05)); // the old instance waits 30 s to fill its batch: a reload hands it over at once
      await eventually(() => collector.records().length === 3, 5000, 'records of the retired instance');
      assert.equal(collector.received[0]!.headers.authorization, `Basic ${Buffer.from('log user:p@ss').toString('base64')}`);
    } finally {
      await gw.close();
      await collector.close();
    }
  });
});
