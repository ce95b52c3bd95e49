/**
 * response-ratelimiting, policy redis, against a private redis-server this
 * file starts on its own port (test/helpers/redis.ts; CI has redis-server but
 * no Redis running) and stops to play outages: counters shared by two
 * gateways, keys that expire, Kong's flat redis_* fields, and Redis down with
 * fault_tolerant true and false, then back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';
import { eventually, sleep } from '../../../test/helpers/process.ts';
import { startRedis, type PrivateRedis } from '../../../test/helpers/redis.ts';

let redis: PrivateRedis;
let upstream: TestUpstream;
let gw: TestGateway;
let peer: TestGateway;
let ipSeq = 1;
const newIp = () => `10.30.0.${ipSeq++}`;

function config(port: number) {
  const rrl = (name: string, c: object) => ({
    name,
    paths: [`/${name}`],
    plugins: [{ name: 'response-ratelimiting', config: { limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 500 }, ...c } }],
  });
  return {
    server: { trusted_ips: ['127.0.0.1'] },
    services: [
      {
        name: 's',
        url: upstream.url,
        routes: [
          rrl('shared', { limits: { videos: { hour: 5 }, images: { day: 50 } } }),
          rrl('flat', { redis: {}, redis_host: '127.0.0.1', redis_port: port, redis_timeout: 500, limits: { videos: { hour: 2 } } }),
          rrl('tolerant', { limits: { videos: { hour: 2 } } }),
          rrl('strict', { fault_tolerant: false, limits: { videos: { hour: 2 } } }),
        ],
      },
    ],
  };
}

before(async () => {
  redis = await startRedis();
  upstream = await startUpstream((req, res) => {
    const report = new URL(req.url!, 'http://x').searchParams.get('report');
    res.writeHead(200, report === null ? {} : { 'x-kong-limit': report });
    res.end('ok');
  });
  gw = await startGateway(config(redis.port));
  peer = await startGateway(config(redis.port));
});

after(async () => {
  await gw?.close();
  await peer?.close();
  await upstream?.close();
  await redis?.stop();
});

/** Hourly and daily windows: never start a test in the last seconds of an hour. */
async function clearOfHourEdge(): Promise<void> {
  const inHour = Date.now() % 3_600_000;
  if (inHour > 3_600_000 - 20_000) await sleep(3_600_000 - inHour + 50);
}

const get = (g: TestGateway, path: string, ip: string, report?: string) =>
  request(g.port, report === undefined ? path : `${path}?report=${encodeURIComponent(report)}`, { headers: { 'x-forwarded-for': ip } });

describe('response-ratelimiting (policy redis)', () => {
  test('two gateways share the counters; keys carry the client and expire after their window', async () => {
    await clearOfHourEdge();
    const ip = newIp();
    const gws = [gw, peer];
    for (let i = 1; i <= 5; i++) {
      const r = await get(gws[i % 2]!, '/shared', ip, 'videos=1, images=3');
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.headers['x-ratelimit-remaining-videos-hour'], String(5 - i));
      assert.equal(r.headers['x-ratelimit-remaining-images-day'], String(50 - 3 * i));
      assert.equal(r.headers['x-kong-limit'], undefined);
    }
    for (const g of gws) {
      // Both gateways see the shared count: a response that consumes videos becomes the 429, one that does not passes.
      const r = await get(g, '/shared', ip, 'videos=1');
      assert.equal(r.status, 429);
      assert.equal(r.json().message, "API rate limit exceeded for 'videos'");
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/, 'the upstream answer is dropped');
      const images = await get(g, '/shared', ip, 'images=1');
      assert.equal(images.status, 200);
      assert.equal(images.headers['x-ratelimit-remaining-videos-hour'], '0');
    }
    const keys = (await redis.command('KEYS', `palisade:ct:*i:${ip}}*`)).split('\r\n').filter((l) => l.startsWith('palisade:'));
    assert.equal(keys.length, 2, `one key per quota window: ${keys}`);
    for (const key of keys) {
      const ttl = Number((await redis.command('PTTL', key)).slice(1));
      const max = key.includes(':videos:') ? 3_601_000 : 86_401_000;
      assert.ok(ttl > 0 && ttl <= max, `${key} TTL ${ttl}`);
    }
  });

  test("Kong's flat redis_* fields", async () => {
    await clearOfHourEdge();
    const ip = newIp();
    assert.equal((await get(gw, '/flat', ip, 'videos=2')).headers['x-ratelimit-remaining-videos-hour'], '0');
    assert.equal((await get(gw, '/flat', ip, 'videos=1')).status, 429);
  });

  test('Redis down: fault_tolerant passes requests (no headers, usage header still removed), false answers 503; counting resumes when it is back', async () => {
    await clearOfHourEdge();
    const ip = newIp();
    assert.equal((await get(gw, '/tolerant', ip, 'videos=1')).headers['x-ratelimit-remaining-videos-hour'], '1');
    assert.equal((await get(gw, '/strict', ip, 'videos=1')).headers['x-ratelimit-remaining-videos-hour'], '1');
    const logsBefore = gw.logs.length;
    await redis.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await get(gw, '/tolerant', ip, 'videos=1');
        assert.equal(r.status, 200, 'fault_tolerant: the request passes');
        assert.equal(r.headers['x-ratelimit-remaining-videos-hour'], undefined);
        assert.equal(r.headers['x-kong-limit'], undefined, 'the usage header never reaches the client');
        const s = await get(gw, '/strict', ip, 'videos=1');
        assert.equal(s.status, 503);
        assert.equal(s.json().message, 'The rate limit could not be checked; try again later');
      }
      const warned = gw.logs.slice(logsBefore).some((l) => l.level === 40 && String(l.msg).startsWith('response-ratelimiting: counter store unavailable'));
      assert.ok(warned, 'the outage is logged');
    } finally {
      await redis.start();
    }
    // Back: the counts from before the outage are gone with the server (nothing on disk), counting works again.
    await eventually(async () => (await get(gw, '/strict', ip)).status === 200, 15_000, 'redis back');
    assert.equal((await get(gw, '/strict', ip, 'videos=2')).headers['x-ratelimit-remaining-videos-hour'], '0');
    await eventually(async () => (await get(gw, '/strict', ip, 'videos=1')).status === 429, 5_000, 'counted again');
    assert.ok(gw.logs.some((l) => l.msg === 'response-ratelimiting: counter store available again'));
  });
});
