/**
 * rate-limiting, policy local, one process: window edges of both algorithms,
 * several limits at once, every limit_by, the headers (Kong's and the IETF
 * draft's), hide_client_headers, the refusal, reloads, config errors.
 * Each test counts a client of its own (its own X-Forwarded-For address,
 * header value or consumer), so tests do not share counters.
 * (Cluster workers: cluster.test.ts; Redis: redis.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request, sleep, type Response } from '../../../test/helpers/process.ts';

let upstream: TestUpstream;
let gw: TestGateway;
let ipSeq = 1;
/** A client address of its own for each use (the gateway trusts X-Forwarded-For from 127.0.0.1). */
const newIp = () => `10.9.${Math.floor(ipSeq / 250)}.${ipSeq++ % 250}`;

const route = (name: string, config: object, extra: object = {}) => ({ name, paths: [`/${name}`], plugins: [{ name: 'rate-limiting', config }], ...extra });

function baseConfig(up: TestUpstream) {
  return {
    server: { trusted_ips: ['127.0.0.1'] },
    consumer_groups: [{ name: 'gold' }],
    consumers: [
      { username: 'alice', groups: ['gold'], keyauth_credentials: [{ key: 'alice-key-1' }, { key: 'alice-key-2' }] },
      { username: 'bob', groups: ['gold'], keyauth_credentials: [{ key: 'bob-key' }] },
      { username: 'carol', keyauth_credentials: [{ key: 'carol-key' }] },
    ],
    services: [
      {
        name: 'svc',
        url: up.url,
        routes: [
          route('fixed', { second: 5, algorithm: 'fixed', limit_by: 'ip' }),
          route('sliding', { second: 10, limit_by: 'ip' }),
          route('multi', { second: 3, minute: 5, algorithm: 'fixed', limit_by: 'ip' }),
          route('ip', { minute: 2, limit_by: 'ip' }),
          route('header', { minute: 2, limit_by: 'header', header_name: 'X-Tenant' }),
          { name: 'path', paths: ['/p'], plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'path', path: '/p/exact' } }] },
          route('open', { minute: 2 }),
          { ...route('consumer', { minute: 2 }), plugins: [{ name: 'key-auth', config: {} }, { name: 'rate-limiting', config: { minute: 2 } }] },
          { ...route('credential', {}), plugins: [{ name: 'key-auth', config: {} }, { name: 'rate-limiting', config: { minute: 2, limit_by: 'credential' } }] },
          { ...route('group', {}), plugins: [{ name: 'key-auth', config: {} }, { name: 'rate-limiting', config: { minute: 2, limit_by: 'consumer-group' } }] },
          route('hidden', { minute: 1, limit_by: 'ip', hide_client_headers: true }),
          route('custom', { minute: 1, limit_by: 'ip', error_code: 503, error_message: 'Slow down' }),
          route('fraction', { minute: 2.5, limit_by: 'ip', algorithm: 'fixed' }),
          route('kong-flat', {
            minute: 1,
            limit_by: 'ip',
            redis_host: null,
            redis_port: 6379,
            redis_timeout: 2000,
            redis_database: 0,
            sync_rate: -1,
            policy: 'local',
            second: null,
            header_name: null,
            path: null,
            // A Kong 3.x export: every field present, unset ones null.
            redis: { host: null, port: 6379, timeout: 2000, username: null, password: null, database: 0, ssl: false, ssl_verify: false, server_name: null, sentinel_addresses: null, cluster_addresses: null, cloud_authentication: { auth_provider: null } },
          }),
        ],
      },
    ],
  };
}

const get = (path: string, headers: Record<string, string> = {}) => request(gw.port, path, { headers });
const count = (rs: Response[], status: number) => rs.filter((r) => r.status === status).length;

/** Sleep until `offset` ms after the next boundary of `windowMs` (wall clock, as the gateway's windows). */
async function nextWindow(windowMs: number, offset: number): Promise<void> {
  const now = Date.now();
  await sleep(windowMs - (now % windowMs) + offset);
}

/**
 * Fire `n` requests at once, `offset` ms after the next second boundary, and
 * return them with the fraction of the second elapsed when the first was sent
 * and when the last answered; `straddled` when they did not all fit in one
 * second (the caller then starts over with a new client, so that exact counts
 * can be asserted on a loaded machine).
 */
async function burstInOneSecond(n: number, path: string, headers: Record<string, string>, offset: number) {
  await nextWindow(1000, offset);
  const t0 = Date.now();
  const rs = await Promise.all(Array.from({ length: n }, () => get(path, headers)));
  const t1 = Date.now();
  return { rs, f0: (t0 % 1000) / 1000, f1: (t1 % 1000) / 1000, straddled: Math.floor(t0 / 1000) !== Math.floor(t1 / 1000) };
}

before(async () => {
  upstream = await startUpstream();
  gw = await startGateway(baseConfig(upstream));
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('window edges', () => {
  test('fixed: exactly the limit in a second, and a whole new quota right after the boundary', async () => {
    let ip = '';
    // One client: its first second, then the very next one.
    for (let attempt = 0; attempt < 5; attempt++) {
      ip = newIp();
      const a = await burstInOneSecond(8, '/fixed', { 'x-forwarded-for': ip }, 20);
      if (a.straddled) continue;
      assert.equal(count(a.rs, 200), 5, 'first second');
      assert.equal(count(a.rs, 429), 3);
      const b = await burstInOneSecond(8, '/fixed', { 'x-forwarded-for': ip }, 20);
      if (b.straddled) continue;
      assert.equal(count(b.rs, 200), 5, 'the next second: the previous one does not count (fixed window: a burst of 2× the limit at the edge)');
      return;
    }
    assert.fail('no burst fitted in one second in 5 attempts');
  });

  test('sliding: after a full second, the next one only frees the share of it that has slid out', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const h = { 'x-forwarded-for': newIp() };
      // A new client has no previous window: exactly the limit.
      const a = await burstInOneSecond(13, '/sliding', h, 20);
      if (a.straddled) continue;
      assert.equal(count(a.rs, 200), 10, 'a fresh client gets exactly the limit');
      // Right after the boundary, usage = 10 × (1 − f) + admitted: a request passes while admitted < 10 × f.
      const b = await burstInOneSecond(10, '/sliding', h, 60);
      if (b.straddled) continue;
      const ok = count(b.rs, 200);
      const low = Math.min(10, Math.ceil(10 * b.f0));
      const high = Math.ceil(10 * b.f1);
      assert.ok(ok >= low && ok <= high, `admitted ${ok}, expected ${low}..${high} (f ${b.f0}..${b.f1})`);
      assert.ok(ok < 10, 'never the whole quota again right after the edge');
      // Two idle seconds later the previous window is empty again: the full limit.
      await sleep(1100);
      const c = await burstInOneSecond(12, '/sliding', h, 20);
      if (c.straddled) continue;
      assert.equal(count(c.rs, 200), 10);
      return;
    }
    assert.fail('no burst fitted in one second in 5 attempts');
  });

  test('several limits at once: the second and the minute both count, the first full one refuses', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      // Stay clear of a minute boundary (the minute limit is asserted exactly).
      if (Date.now() % 60_000 > 50_000) await nextWindow(60_000, 50);
      const h = { 'x-forwarded-for': newIp() };
      const a = await burstInOneSecond(5, '/multi', h, 20);
      if (a.straddled) continue;
      assert.equal(count(a.rs, 200), 3, 'the second limit (3) refuses first');
      const refusedBySecond = a.rs.find((r) => r.status === 429)!;
      assert.equal(refusedBySecond.headers['x-ratelimit-remaining-second'], '0');
      assert.equal(refusedBySecond.headers['x-ratelimit-remaining-minute'], '2');
      assert.equal(refusedBySecond.headers['retry-after'], '1');
      const b = await burstInOneSecond(5, '/multi', h, 20);
      if (b.straddled) continue;
      assert.equal(count(b.rs, 200), 2, 'then the minute limit (5) is what is left');
      const refusedByMinute = b.rs.find((r) => r.status === 429)!;
      assert.equal(refusedByMinute.headers['x-ratelimit-remaining-minute'], '0');
      assert.equal(refusedByMinute.headers['ratelimit-limit'], '5', 'RateLimit-* describe the window with the fewest left');
      const left = Math.ceil((60_000 - (Date.now() % 60_000)) / 1000);
      const retry = Number(refusedByMinute.headers['retry-after']);
      assert.ok(retry > 1 && Math.abs(retry - left) <= 2, `Retry-After ${retry} ≈ seconds to the end of the minute (${left})`);
      return;
    }
    assert.fail('no burst fitted in one second in 5 attempts');
  });
});

describe('headers', () => {
  test("Kong's headers and the IETF RateLimit / RateLimit-Policy fields on admitted responses", async () => {
    const ip = newIp();
    const r = await get('/multi', { 'x-forwarded-for': ip });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ratelimit-limit-second'], '3');
    assert.equal(r.headers['x-ratelimit-remaining-second'], '2');
    assert.equal(r.headers['x-ratelimit-limit-minute'], '5');
    assert.equal(r.headers['x-ratelimit-remaining-minute'], '4');
    assert.equal(r.headers['ratelimit-limit'], '3');
    assert.equal(r.headers['ratelimit-remaining'], '2');
    assert.equal(r.headers['ratelimit-reset'], '1');
    assert.equal(r.headers['ratelimit-policy'], '"second";q=3;w=1, "minute";q=5;w=60');
    assert.match(String(r.headers['ratelimit']), /^"second";r=2;t=1, "minute";r=4;t=(\d+)$/);
    const t = Number(/t=(\d+)$/.exec(String(r.headers['ratelimit']))![1]);
    assert.ok(t >= 1 && t <= 60);
    assert.equal(JSON.parse(r.body).method, 'GET', 'the upstream answered');
  });

  test('the refusal: Kong status and message as a problem document, with the headers and Retry-After, never proxied', async () => {
    const ip = newIp();
    await get('/ip', { 'x-forwarded-for': ip });
    await get('/ip', { 'x-forwarded-for': ip });
    const before = upstream.requests.length;
    const r = await get('/ip', { 'x-forwarded-for': ip });
    assert.equal(r.status, 429);
    assert.equal(upstream.requests.length, before, 'not proxied');
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    const body = r.json();
    assert.equal(body.message, 'API rate limit exceeded');
    assert.equal(body.status, 429);
    assert.equal(r.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(r.headers['ratelimit-remaining'], '0');
    assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 60);
  });

  test('error_code and error_message', async () => {
    const ip = newIp();
    assert.equal((await get('/custom', { 'x-forwarded-for': ip })).status, 200);
    const r = await get('/custom', { 'x-forwarded-for': ip });
    assert.equal(r.status, 503);
    assert.equal(r.json().message, 'Slow down');
    assert.equal(r.headers['x-ratelimit-remaining-minute'], '0');
  });

  test('hide_client_headers: no rate-limit header on admitted or refused answers (as Kong, not even Retry-After)', async () => {
    const ip = newIp();
    const ok = await get('/hidden', { 'x-forwarded-for': ip });
    const refused = await get('/hidden', { 'x-forwarded-for': ip });
    assert.equal(ok.status, 200);
    assert.equal(refused.status, 429);
    for (const r of [ok, refused]) {
      const names = Object.keys(r.headers).filter((h) => /ratelimit|retry-after/i.test(h));
      assert.deepEqual(names, []);
    }
  });

  test('a fractional limit admits while usage < limit, as Kong (2.5 → 3)', async () => {
    const ip = newIp();
    const rs: Response[] = [];
    for (let i = 0; i < 4; i++) rs.push(await get('/fraction', { 'x-forwarded-for': ip }));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 429]);
    assert.equal(rs[0]!.headers['x-ratelimit-limit-minute'], '2.5');
  });
});

describe('limit_by', () => {
  test('ip: each client address has its own quota', async () => {
    const a = newIp();
    const b = newIp();
    assert.deepEqual([(await get('/ip', { 'x-forwarded-for': a })).status, (await get('/ip', { 'x-forwarded-for': a })).status, (await get('/ip', { 'x-forwarded-for': a })).status], [200, 200, 429]);
    assert.equal((await get('/ip', { 'x-forwarded-for': b })).status, 200);
  });

  test('header: counted per header value, whatever the address; without the header, per address', async () => {
    const tenant = `t-${newIp()}`;
    const r1 = await get('/header', { 'x-tenant': tenant, 'x-forwarded-for': newIp() });
    const r2 = await get('/header', { 'x-tenant': tenant, 'x-forwarded-for': newIp() });
    const r3 = await get('/header', { 'x-tenant': tenant, 'x-forwarded-for': newIp() });
    assert.deepEqual([r1.status, r2.status, r3.status], [200, 200, 429]);
    assert.equal((await get('/header', { 'x-tenant': `${tenant}-other` })).status, 200);
    const ip = newIp();
    assert.deepEqual([(await get('/header', { 'x-forwarded-for': ip })).status, (await get('/header', { 'x-forwarded-for': ip })).status, (await get('/header', { 'x-forwarded-for': ip })).status], [200, 200, 429]);
    // A header value equal to an address does not share that address's counter.
    assert.equal((await get('/header', { 'x-tenant': ip, 'x-forwarded-for': newIp() })).status, 200);
  });

  test('path: requests to the configured path share one counter; other paths count per address', async () => {
    const a = newIp();
    const b = newIp();
    assert.equal((await get('/p/exact', { 'x-forwarded-for': a })).status, 200);
    assert.equal((await get('/p/exact', { 'x-forwarded-for': b })).status, 200);
    assert.equal((await get('/p/exact', { 'x-forwarded-for': newIp() })).status, 429, 'the path is full, whoever asks');
    assert.equal((await get('/p/other', { 'x-forwarded-for': a })).status, 200);
    assert.equal((await get('/p/other', { 'x-forwarded-for': a })).status, 200);
    assert.equal((await get('/p/other', { 'x-forwarded-for': a })).status, 429);
  });

  test('consumer: all credentials of a consumer share its quota; other consumers have their own', async () => {
    const ip = newIp();
    assert.equal((await get('/consumer', { apikey: 'alice-key-1', 'x-forwarded-for': ip })).status, 200);
    assert.equal((await get('/consumer', { apikey: 'alice-key-2', 'x-forwarded-for': newIp() })).status, 200);
    assert.equal((await get('/consumer', { apikey: 'alice-key-1', 'x-forwarded-for': newIp() })).status, 429);
    assert.equal((await get('/consumer', { apikey: 'bob-key', 'x-forwarded-for': ip })).status, 200);
  });

  test('consumer without a consumer falls back to the client address (as Kong)', async () => {
    const a = newIp();
    assert.deepEqual([(await get('/open', { 'x-forwarded-for': a })).status, (await get('/open', { 'x-forwarded-for': a })).status, (await get('/open', { 'x-forwarded-for': a })).status], [200, 200, 429]);
    assert.equal((await get('/open', { 'x-forwarded-for': newIp() })).status, 200);
  });

  test('credential: each credential has its own quota', async () => {
    assert.equal((await get('/credential', { apikey: 'alice-key-1' })).status, 200);
    assert.equal((await get('/credential', { apikey: 'alice-key-1' })).status, 200);
    assert.equal((await get('/credential', { apikey: 'alice-key-1' })).status, 429);
    assert.equal((await get('/credential', { apikey: 'alice-key-2' })).status, 200);
  });

  test("consumer-group: consumers of a group share its quota; a consumer without a group counts by address", async () => {
    assert.equal((await get('/group', { apikey: 'alice-key-1', 'x-forwarded-for': newIp() })).status, 200);
    assert.equal((await get('/group', { apikey: 'bob-key', 'x-forwarded-for': newIp() })).status, 200);
    assert.equal((await get('/group', { apikey: 'alice-key-2', 'x-forwarded-for': newIp() })).status, 429, "gold's quota is used up");
    const ip = newIp();
    assert.equal((await get('/group', { apikey: 'carol-key', 'x-forwarded-for': ip })).status, 200);
    assert.equal((await get('/group', { apikey: 'carol-key', 'x-forwarded-for': ip })).status, 200);
    assert.equal((await get('/group', { apikey: 'carol-key', 'x-forwarded-for': ip })).status, 429);
    assert.equal((await get('/group', { apikey: 'carol-key', 'x-forwarded-for': newIp() })).status, 200);
  });

  test('service: a global plugin counts per service, across routes and clients', async () => {
    const up = await startUpstream();
    const g = await startGateway({
      server: { trusted_ips: ['127.0.0.1'] },
      plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'service' } }],
      services: [
        { name: 's1', url: up.url, routes: [{ name: 'a', paths: ['/a'] }, { name: 'b', paths: ['/b'] }] },
        { name: 's2', url: up.url, routes: [{ name: 'c', paths: ['/c'] }] },
      ],
    });
    try {
      const at = (p: string) => request(g.port, p, { headers: { 'x-forwarded-for': newIp() } }).then((r) => r.status);
      assert.deepEqual([await at('/a'), await at('/b'), await at('/a')], [200, 200, 429]);
      assert.deepEqual([await at('/c'), await at('/c'), await at('/c')], [200, 200, 429]);
    } finally {
      await g.close();
      await up.close();
    }
  });
});

describe('config', () => {
  test('Kong files load: the flat redis_* fields (decK dumps with nulls) and sync_rate -1', async () => {
    const ip = newIp();
    assert.equal((await get('/kong-flat', { 'x-forwarded-for': ip })).status, 200);
    assert.equal((await get('/kong-flat', { 'x-forwarded-for': ip })).status, 429);
  });

  test('a reload keeps the counts (a new config version does not hand out a new quota)', async () => {
    const ip = newIp();
    assert.equal((await get('/ip', { 'x-forwarded-for': ip })).status, 200);
    assert.equal((await get('/ip', { 'x-forwarded-for': ip })).status, 200);
    const next = baseConfig(upstream);
    next.services[0]!.routes.push(route('added', { minute: 9 }) as never);
    await gw.reload(next);
    assert.equal((await get('/ip', { 'x-forwarded-for': ip })).status, 429);
    assert.equal((await get('/added', { 'x-forwarded-for': ip })).status, 200);
  });

  test('invalid configs are refused with a message naming the field', async () => {
    const withConfig = (config: object) => ({ services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'rate-limiting', config }] }] }] });
    const refused = async (config: object, pattern: RegExp) => {
      await assert.rejects(startGateway(withConfig(config)), (err: unknown) => {
        const e = err as { message?: string; errors?: unknown };
        const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
        assert.match(text, pattern, text);
        return true;
      });
    };
    await refused({}, /at least one of these fields must be non-empty: 'config.second'/);
    await refused({ second: 10, minute: 5 }, /The limit for minute\(5\.0\) cannot be lower than the limit for second\(10\.0\)/);
    await refused({ minute: 5, policy: 'cluster' }, /policy 'cluster'.*use policy 'redis'/);
    await refused({ minute: 5, limit_by: 'header' }, /header_name is required/);
    await refused({ minute: 5, limit_by: 'path' }, /path is required/);
    await refused({ minute: 5, policy: 'redis' }, /redis\.host is required/);
    await refused({ minute: 5, sync_rate: 10 }, /sync_rate can only be used with the redis policy/);
    await refused({ minute: 5, policy: 'redis', redis: { host: 'x' }, sync_rate: 0.01 }, /sync_rate must be greater than 0\.02/);
    await refused({ minute: 0 }, /minute/);
    await refused({ minute: 5, algorithm: 'token-bucket' }, /algorithm/);
    await refused({ minute: 5, limit_by: 'kongsumer' }, /limit_by/);
    await refused({ minute: 5, policy: 'redis', redis: { host: 'x', sentinel_role: 'slave', sentinel_master: 'm', sentinel_nodes: [{ host: 'y' }] } }, /sentinel_role/);
    await refused({ minute: 5, policy: 'redis', redis: { cluster_nodes: [{ ip: 'x' }], database: 2 } }, /redis\.database must be 0/);
    await refused({ minute: 5, policy: 'redis', redis: { url: 'http://x' } }, /url/);
    await refused({ minute: 5, policy: 'redis', redis: { host: 'x', cloud_authentication: { auth_provider: 'aws' } } }, /cloud_authentication/);
  });
});
