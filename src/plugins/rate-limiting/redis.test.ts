/**
 * rate-limiting, policy redis, against a private redis-server this file
 * starts on its own port (test/helpers/redis.ts) and stops to play outages:
 * the atomic script, expiring keys, the script cache, the connection forms,
 * two gateway processes on one Redis, and Redis outages with fault_tolerant
 * true and false, and the recovery.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { eventually, freePort, freePorts, request, sleep, spawnPalisade, TempDir, type PalisadeProcess, type Response } from '../../../test/helpers/process.ts';
import { startRedis, type PrivateRedis } from '../../../test/helpers/redis.ts';

let redis: PrivateRedis;
let upstream: TestUpstream;
let gw: TestGateway;
let ipSeq = 1;
const newIp = () => `10.7.0.${ipSeq++}`;
const count = (rs: Response[], status: number) => rs.filter((r) => r.status === status).length;

function routes(port: number) {
  const rl = (name: string, config: object) => ({
    name,
    paths: [`/${name}`],
    plugins: [{ name: 'rate-limiting', config: { limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 500 }, ...config } }],
  });
  return [
    rl('fixed', { minute: 5, algorithm: 'fixed' }),
    rl('sliding', { second: 10 }),
    rl('url', { minute: 2, redis: { url: `redis://127.0.0.1:${port}/3`, timeout: 500 } }),
    { name: 'flat', paths: ['/flat'], plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'ip', policy: 'redis', redis_host: '127.0.0.1', redis_port: port, redis_timeout: 500 } }] },
    rl('tolerant', { minute: 2 }),
    rl('strict', { minute: 2, fault_tolerant: false }),
  ];
}

const get = (path: string, headers: Record<string, string> = {}) => request(gw.port, path, { headers });

before(async () => {
  redis = await startRedis();
  upstream = await startUpstream();
  gw = await startGateway({ server: { trusted_ips: ['127.0.0.1'] }, services: [{ name: 's', url: upstream.url, routes: routes(redis.port) }] });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await redis?.stop();
});

async function clearOfMinuteEdge(): Promise<void> {
  const inMinute = Date.now() % 60_000;
  if (inMinute > 50_000) await sleep(60_000 - inMinute + 50);
}

describe('policy redis', () => {
  test('exactly the limit, counted atomically; keys carry a TTL', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    const rs = await Promise.all(Array.from({ length: 12 }, () => get('/fixed', { 'x-forwarded-for': ip })));
    assert.equal(count(rs, 200), 5);
    assert.equal(count(rs, 429), 7);
    const keys = (await redis.command('KEYS', `palisade:rl:*i:${ip}}*`)).split('\r\n').filter((l) => l.startsWith('palisade:'));
    assert.equal(keys.length, 1, `one key for one window: ${keys}`);
    const ttl = Number((await redis.command('PTTL', keys[0]!)).slice(1));
    assert.ok(ttl > 0 && ttl <= 61_000, `TTL ${ttl}`);
    const refused = rs.find((r) => r.status === 429)!;
    assert.equal(refused.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(refused.json().message, 'API rate limit exceeded');
  });

  test('sliding window at the edge: the same arithmetic as the local policy', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ip = newIp();
      const burst = async (n: number, offset: number) => {
        await sleep(1000 - (Date.now() % 1000) + offset);
        const t0 = Date.now();
        const rs = await Promise.all(Array.from({ length: n }, () => get('/sliding', { 'x-forwarded-for': ip })));
        const t1 = Date.now();
        return { ok: count(rs, 200), f0: (t0 % 1000) / 1000, f1: (t1 % 1000) / 1000, straddled: Math.floor(t0 / 1000) !== Math.floor(t1 / 1000) };
      };
      const a = await burst(13, 20);
      if (a.straddled) continue;
      assert.equal(a.ok, 10);
      const b = await burst(10, 60);
      if (b.straddled) continue;
      const low = Math.min(10, Math.ceil(10 * b.f0));
      const high = Math.ceil(10 * b.f1);
      assert.ok(b.ok >= low && b.ok <= high && b.ok < 10, `admitted ${b.ok}, expected ${low}..${high}`);
      return;
    }
    assert.fail('no burst fitted in one second in 5 attempts');
  });

  test('the script survives a flushed script cache (EVALSHA falls back to EVAL)', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    assert.equal((await get('/fixed', { 'x-forwarded-for': ip })).status, 200);
    assert.match(await redis.command('SCRIPT', 'FLUSH'), /^\+OK/);
    const rs: number[] = [];
    for (let i = 0; i < 5; i++) rs.push((await get('/fixed', { 'x-forwarded-for': ip })).status);
    assert.deepEqual(rs, [200, 200, 200, 200, 429]);
  });

  test('redis.url (with a database) and the flat redis_host / redis_port fields of older Kong files', async () => {
    await clearOfMinuteEdge();
    for (const path of ['/url', '/flat']) {
      const ip = newIp();
      const rs: number[] = [];
      for (let i = 0; i < 3; i++) rs.push((await get(path, { 'x-forwarded-for': ip })).status);
      assert.deepEqual(rs, [200, 200, 429], path);
    }
    const db3 = new Redis({ port: redis.port, host: '127.0.0.1', db: 3, lazyConnect: true });
    try {
      const keys = await db3.keys('palisade:rl:*');
      assert.ok(keys.length >= 1, 'the url route counts in database 3');
    } finally {
      db3.disconnect();
    }
  });

  test('two gateway processes on one Redis together admit exactly the limit', async () => {
    const dir = new TempDir();
    const procs: PalisadeProcess[] = [];
    try {
      const file = dir.write(
        'two.json',
        JSON.stringify({
          _format_version: '3.0',
          server: { access_log: 'off', watch: false },
          services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/shared'], plugins: [{ name: 'rate-limiting', config: { minute: 50, policy: 'redis', redis: { host: '127.0.0.1', port: redis.port } } }] }] }],
        }),
      );
      const ports = await freePorts(4);
      for (let i = 0; i < 2; i++) {
        procs.push(spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${ports[2 * i]}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${ports[2 * i + 1]}`, '--workers', '1']));
      }
      await Promise.all(procs.map((p) => p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'")));
      await clearOfMinuteEdge();
      const statuses: number[] = [];
      // Both gateways at once, 10 requests in flight on each.
      await Promise.all(
        [ports[0]!, ports[2]!].flatMap((port) => {
          let sent = 0;
          return Array.from({ length: 10 }, async () => {
            while (sent < 100) {
              sent++;
              statuses.push((await request(port, '/shared', { agent: undefined })).status);
            }
          });
        }),
      );
      assert.equal(statuses.length, 200);
      assert.equal(statuses.filter((s) => s === 200).length, 50, `admitted in total${procs.map((p) => p.output).join('')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 150);
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      dir.remove();
    }
  });

  test('Redis down: fault_tolerant passes unchecked (one warning, counted), false answers 503; both recover when Redis is back', async () => {
    const ip = newIp();
    const logsBefore = gw.logs.length;
    await redis.stop();
    const tolerant: Response[] = [];
    for (let i = 0; i < 4; i++) tolerant.push(await get('/tolerant', { 'x-forwarded-for': ip }));
    assert.deepEqual(tolerant.map((r) => r.status), [200, 200, 200, 200], 'over the limit, yet passed: Redis is down');
    assert.deepEqual(Object.keys(tolerant[0]!.headers).filter((h) => /ratelimit/.test(h)), [], 'no rate-limit headers without a count');
    const strict = await get('/strict', { 'x-forwarded-for': ip });
    assert.equal(strict.status, 503);
    assert.match(String(strict.headers['content-type']), /^application\/problem\+json/);
    assert.ok(strict.json().message.length > 0);
    assert.ok(!/127\.0\.0\.1|ECONNREFUSED|redis/i.test(strict.body), 'no internals in the answer');
    await get('/strict', { 'x-forwarded-for': ip });
    const warnings = gw.logs.slice(logsBefore).filter((l) => l.level === 40 && String(l.msg).startsWith('rate-limiting: counter store unavailable'));
    assert.equal(warnings.length, 2, `one warning per plugin instance within 10 s: ${JSON.stringify(warnings)}`);
    assert.ok(warnings.some((w) => w.fault_tolerant === true && /pass without rate limiting/.test(String(w.msg))));
    assert.ok(warnings.some((w) => w.fault_tolerant === false && /503/.test(String(w.msg))));
    assert.ok(!JSON.stringify(warnings).includes('password'));

    await redis.start();
    await eventually(async () => (await get('/strict', { 'x-forwarded-for': newIp() })).status === 200, 10000, 'the strict route to work again');
    await clearOfMinuteEdge();
    const after: number[] = [];
    for (let i = 0; i < 3; i++) after.push((await get('/tolerant', { 'x-forwarded-for': ip })).status);
    assert.deepEqual(after, [200, 200, 429], 'limits are enforced again');
    assert.ok(gw.logs.slice(logsBefore).some((l) => l.msg === 'rate-limiting: counter store available again'));
  });

  test('Redis unreachable from the start: waits at most its connect timeout, then fails open or closed', async () => {
    const dead = await freePort();
    const g = await startGateway({
      services: [
        {
          name: 's',
          url: upstream.url,
          routes: [
            { name: 'open', paths: ['/open'], plugins: [{ name: 'rate-limiting', config: { minute: 1, policy: 'redis', redis: { host: '127.0.0.1', port: dead, timeout: 300 } } }] },
            { name: 'closed', paths: ['/closed'], plugins: [{ name: 'rate-limiting', config: { minute: 1, policy: 'redis', fault_tolerant: false, redis: { host: '127.0.0.1', port: dead, timeout: 300 } } }] },
          ],
        },
      ],
    });
    try {
      const t0 = Date.now();
      assert.equal((await request(g.port, '/open')).status, 200);
      assert.equal((await request(g.port, '/open')).status, 200);
      assert.equal((await request(g.port, '/closed')).status, 503);
      assert.ok(Date.now() - t0 < 3000, `answers stay fast (${Date.now() - t0} ms)`);
    } finally {
      await g.close();
    }
  });
});

describe('connection forms', () => {
  const limited = async (port: number, path: string) => {
    const ip = newIp();
    const rs: number[] = [];
    for (let i = 0; i < 3; i++) rs.push((await request(port, path, { headers: { 'x-forwarded-for': ip } })).status);
    return rs;
  };
  const gateway = (routes: object[]) => startGateway({ server: { trusted_ips: ['127.0.0.1'] }, services: [{ name: 's', url: upstream.url, routes }] });
  const rl = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'ip', policy: 'redis', fault_tolerant: false, ...config } }] });

  test('Redis Sentinel: the master is found through the sentinel', async () => {
    await clearOfMinuteEdge();
    const sentinel = await startRedis({ sentinelOf: redis.port });
    const g = await gateway([rl('sentinel', { redis: { sentinel_master: 'mymaster', sentinel_role: 'master', sentinel_nodes: [{ host: '127.0.0.1', port: sentinel.port }], timeout: 1000 } })]);
    try {
      assert.deepEqual(await limited(g.port, '/sentinel'), [200, 200, 429]);
    } finally {
      await g.close();
      await sentinel.stop();
    }
  });

  test('Redis Cluster (one node holding every slot)', async () => {
    await clearOfMinuteEdge();
    const node = await startRedis({ cluster: true });
    const g = await gateway([rl('cluster', { redis: { cluster_nodes: [{ ip: '127.0.0.1', port: node.port }], timeout: 1000 } })]);
    try {
      assert.deepEqual(await limited(g.port, '/cluster'), [200, 200, 429]);
      assert.match(await node.command('DBSIZE'), /^:[1-9]/, 'counted in the cluster node');
    } finally {
      await g.close();
      await node.stop();
    }
  });

  test("TLS: rediss:// works unverified (Kong's default); with ssl_verify an unknown CA is refused (fail closed)", async () => {
    await clearOfMinuteEdge();
    const tls = await startRedis({ tls: true });
    const g = await gateway([
      rl('tls', { redis: { url: `rediss://localhost:${tls.tlsPort}`, timeout: 1000 } }),
      rl('tls-verify', { redis: { host: '127.0.0.1', port: tls.tlsPort, ssl: true, ssl_verify: true, server_name: 'localhost', timeout: 1000 } }),
    ]);
    try {
      assert.deepEqual(await limited(g.port, '/tls'), [200, 200, 429]);
      assert.ok(g.logs.some((l) => l.msg === 'redis TLS without certificate verification (ssl_verify: false)'));
      assert.equal((await request(g.port, '/tls-verify')).status, 503, 'the test CA is not trusted by this process');
    } finally {
      await g.close();
      await tls.stop();
    }
  });

  test('TLS with ssl_verify against a trusted CA (NODE_EXTRA_CA_CERTS), in a gateway process', async () => {
    const tls = await startRedis({ tls: true });
    const dir = new TempDir();
    let p: PalisadeProcess | null = null;
    try {
      const [port, admin] = await freePorts(2);
      const file = dir.write(
        'tls.json',
        JSON.stringify({
          _format_version: '3.0',
          server: { access_log: 'off', watch: false },
          services: [{ name: 's', url: upstream.url, routes: [rl('v', { limit_by: 'consumer', redis: { host: '127.0.0.1', port: tls.tlsPort, ssl: true, ssl_verify: true, server_name: 'localhost', timeout: 1000 } })] }],
        }),
      );
      p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', '1'], {
        env: { NODE_EXTRA_CA_CERTS: new URL('../../../test/fixtures/tls/ca.crt', import.meta.url).pathname },
      });
      await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
      await clearOfMinuteEdge();
      const rs: number[] = [];
      for (let i = 0; i < 3; i++) rs.push((await request(port!, '/v')).status);
      assert.deepEqual(rs, [200, 200, 429], p.output);
    } finally {
      await p?.kill();
      dir.remove();
      await tls.stop();
    }
  });
});
