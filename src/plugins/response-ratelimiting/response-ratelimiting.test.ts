/**
 * response-ratelimiting, policy local, through a real gateway and a real
 * upstream that reports usage in a response header (what it reads from the
 * query: ?report=videos%3D1 → x-kong-limit: videos=1). Kong's scenarios
 * (spec/03-plugins/24-response-rate-limiting/04-access_spec.lua): one quota,
 * several quotas with several periods, block_on_first_violation, per
 * consumer, hide_client_headers, one plugin for several routes; a response
 * that consumes a used-up quota is replaced by Kong's 429 after the upstream
 * was called (its headers and body never reach the client); custom
 * header_name, the usage header never reaching the client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';
import { sleep } from '../../../test/helpers/process.ts';

let upstream: TestUpstream;
let gw: TestGateway;
let ipSeq = 1;
const newIp = () => `10.20.0.${ipSeq++}`;

const UPSTREAM_BODY = 'the upstream answer';

/** Upstream: 200 with a marker header and cookie, every ?report= value as a usage header (named by ?h=, default x-kong-limit). */
async function reportingUpstream(): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    const reports = q.getAll('report');
    const headers: Record<string, string | string[]> = { 'content-type': 'text/plain', 'x-upstream-marker': 'yes', 'set-cookie': 'upstream=1' };
    if (reports.length > 0) headers[q.get('h') ?? 'x-kong-limit'] = reports.length === 1 ? reports[0]! : reports;
    res.writeHead(200, headers);
    res.end(UPSTREAM_BODY);
  });
}

const rrl = (name: string, config: object, extra: object = {}) => ({
  name,
  paths: [`/${name}`],
  ...extra,
  plugins: [{ name: 'response-ratelimiting', config: { limit_by: 'ip', ...config } }],
});

before(async () => {
  upstream = await reportingUpstream();
  gw = await startGateway({
    server: { trusted_ips: ['127.0.0.1'] },
    consumers: [
      { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] },
      { username: 'bob', keyauth_credentials: [{ key: 'bob-key' }] },
    ],
    services: [
      {
        name: 's',
        url: upstream.url,
        routes: [
          rrl('single', { limits: { videos: { minute: 6 } } }),
          rrl('multi', { limits: { videos: { minute: 6, hour: 10 }, images: { minute: 4 } } }),
          rrl('block', { block_on_first_violation: true, limits: { video: { minute: 6, hour: 10 }, image: { minute: 4 } } }),
          rrl('hidden', { hide_client_headers: true, limits: { videos: { minute: 2 } } }),
          rrl('custom', { header_name: 'X-Palisade-Limit', limits: { videos: { minute: 2 } } }),
          {
            name: 'consumer',
            paths: ['/consumer'],
            plugins: [
              { name: 'key-auth', config: {} },
              { name: 'response-ratelimiting', config: { limits: { videos: { minute: 2 } } } },
            ],
          },
        ],
      },
      {
        // One plugin on the service, two routes: each consumes its own quota.
        name: 'media',
        url: upstream.url,
        plugins: [{ name: 'response-ratelimiting', config: { limit_by: 'ip', limits: { videos: { hour: 2 }, images: { hour: 100 } } } }],
        routes: [
          { name: 'videos', paths: ['/media/videos'] },
          { name: 'images', paths: ['/media/images'] },
        ],
      },
    ],
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Tests count within one minute: never start one in the last seconds of a minute. */
async function clearOfMinuteEdge(): Promise<void> {
  const inMinute = Date.now() % 60_000;
  if (inMinute > 45_000) await sleep(60_000 - inMinute + 50);
}

async function get(path: string, o: { ip?: string; report?: string | string[]; headers?: Record<string, string> } = {}) {
  const q = new URLSearchParams();
  for (const r of typeof o.report === 'string' ? [o.report] : (o.report ?? [])) q.append('report', r);
  const seen = upstream.requests.length;
  const res = await request(gw.port, `${path}?${q}`, { headers: { ...(o.ip ? { 'x-forwarded-for': o.ip } : {}), ...o.headers } });
  const upstreamSaw = upstream.requests.length > seen ? upstream.requests[upstream.requests.length - 1]!.headers : null;
  return { ...res, upstreamSaw };
}

const num = (v: string | string[] | undefined) => (v === undefined ? undefined : Number(v));

/** Kong's 429 from the response phase: the upstream was called, and nothing of its answer reaches the client. */
function assertReplaced(r: Awaited<ReturnType<typeof get>>, quota: string): void {
  assert.equal(r.status, 429);
  assert.notEqual(r.upstreamSaw, null, 'the upstream was called (Kong: the header filter replaces its answer)');
  assert.equal(r.json().message, `API rate limit exceeded for '${quota}'`);
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.ok(!r.body.includes(UPSTREAM_BODY), 'no upstream body');
  for (const h of ['x-upstream-marker', 'set-cookie', 'x-kong-limit']) assert.equal(r.headers[h], undefined, `no upstream ${h}`);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
}

describe('response-ratelimiting (policy local)', () => {
  test('one quota: counted from the upstream header, headers as Kong, refused once used up', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    for (let i = 1; i <= 6; i++) {
      const r = await get('/single', { ip, report: 'videos=1, test=5' });
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(num(r.headers['x-ratelimit-limit-videos-minute']), 6);
      assert.equal(num(r.headers['x-ratelimit-remaining-videos-minute']), 6 - i);
      assert.equal(r.headers['x-kong-limit'], undefined, 'the usage header never reaches the client');
      assert.equal(r.upstreamSaw!['x-ratelimit-remaining-videos'], String(6 - i + 1), 'the upstream learns what is left');
    }
    const refused = await get('/single', { ip, report: 'videos=1' });
    assertReplaced(refused, 'videos');
    assert.equal(refused.upstreamSaw!['x-ratelimit-remaining-videos'], '0', 'the upstream was told nothing is left');
    assert.equal(refused.headers['x-ratelimit-limit-videos-minute'], '6');
    assert.equal(refused.headers['x-ratelimit-remaining-videos-minute'], '0');
    assert.ok(num(refused.headers['retry-after'])! >= 1 && num(refused.headers['retry-after'])! <= 60);
    // A response that consumes nothing passes (Kong: only a response that reports the used-up quota is refused).
    const free = await get('/single', { ip });
    assert.equal(free.status, 200);
    assert.equal(free.body, UPSTREAM_BODY);
    assert.equal(free.headers['x-upstream-marker'], 'yes');
    assert.equal(free.headers['x-ratelimit-remaining-videos-minute'], '0');
    // Another client has its own quota.
    assert.equal((await get('/single', { ip: newIp(), report: 'videos=1' })).status, 200);
  });

  test('several quotas and periods (Kong: "handles multiple limits")', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    for (let i = 1; i <= 3; i++) {
      const r = await get('/multi', { ip, report: 'videos=2, images=1' });
      assert.equal(r.status, 200);
      assert.equal(num(r.headers['x-ratelimit-limit-videos-minute']), 6);
      assert.equal(num(r.headers['x-ratelimit-remaining-videos-minute']), 6 - i * 2);
      assert.equal(num(r.headers['x-ratelimit-limit-videos-hour']), 10);
      assert.equal(num(r.headers['x-ratelimit-remaining-videos-hour']), 10 - i * 2);
      assert.equal(num(r.headers['x-ratelimit-limit-images-minute']), 4);
      assert.equal(num(r.headers['x-ratelimit-remaining-images-minute']), 4 - i);
    }
    // images has 1 left: a response that consumes it and the used-up videos is refused …
    const r = await get('/multi', { ip, report: 'videos=2, images=1' });
    assertReplaced(r, 'videos');
    // … with Kong's headers: what would be left after this response.
    assert.equal(num(r.headers['x-ratelimit-remaining-videos-minute']), 0);
    assert.equal(num(r.headers['x-ratelimit-remaining-videos-hour']), 2);
    assert.equal(num(r.headers['x-ratelimit-remaining-images-minute']), 0);
    // The refused response was not counted (Kong: stop_log); one that only consumes images is served and counted.
    const images = await get('/multi', { ip, report: 'images=1' });
    assert.equal(images.status, 200);
    assert.equal(images.body, UPSTREAM_BODY);
    assert.equal(num(images.headers['x-ratelimit-remaining-videos-hour']), 4);
    assert.equal(num(images.headers['x-ratelimit-remaining-images-minute']), 0);
    assertReplaced(await get('/multi', { ip, report: 'images=1' }), 'images');
  });

  test("block_on_first_violation: a used-up quota blocks every request (Kong's message names it)", async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    assert.equal((await get('/block', { ip, report: 'video=2, image=4' })).status, 200);
    const r = await get('/block', { ip, report: 'video=2' });
    assert.equal(r.status, 429);
    assert.equal(r.json().message, "API rate limit exceeded for 'image'");
    assert.equal(r.upstreamSaw, null, 'refused before the upstream is called');
    assert.equal(r.headers['x-ratelimit-remaining-image-minute'], '0');
    assert.equal(r.headers['x-ratelimit-remaining-video-minute'], '4');
    // Also a request whose response would consume nothing.
    assert.equal((await get('/block', { ip })).upstreamSaw, null);
  });

  test('without block_on_first_violation: a used-up quota refuses only the responses that consume it', async () => {
    const ip = newIp();
    for (let i = 0; i < 2; i++) assert.equal((await get('/media/videos', { ip, report: 'videos=1' })).status, 200);
    const images = await get('/media/images', { ip, report: 'images=1' });
    assert.equal(images.status, 200, 'images are still allowed');
    assert.equal(images.headers['x-ratelimit-remaining-videos-hour'], '0');
    assert.equal(images.headers['x-ratelimit-remaining-images-hour'], '99');
    assert.equal((await get('/media/videos', { ip })).status, 200, 'a video response that consumes nothing passes');
    assertReplaced(await get('/media/videos', { ip, report: 'videos=1' }), 'videos');
    // The routes share the service's counters (Kong: "counts against the same service from different routes").
    assert.equal((await get('/media/images', { ip: newIp(), report: 'images=1' })).headers['x-ratelimit-remaining-videos-hour'], '2');
  });

  test('limit_by consumer: each consumer has its own quota', async () => {
    await clearOfMinuteEdge();
    for (let i = 0; i < 2; i++) assert.equal((await get('/consumer', { report: 'videos=1', headers: { apikey: 'alice-key' } })).status, 200);
    const alice = await get('/consumer', { report: 'videos=1', headers: { apikey: 'alice-key' } });
    assertReplaced(alice, 'videos');
    assert.equal(alice.headers['x-ratelimit-remaining-videos-minute'], '0');
    const bob = await get('/consumer', { report: 'videos=1', headers: { apikey: 'bob-key' } });
    assert.equal(bob.status, 200);
    assert.equal(bob.headers['x-ratelimit-remaining-videos-minute'], '1');
  });

  test('hide_client_headers: no rate-limit headers, still limited, usage header still removed', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    for (let i = 0; i < 2; i++) {
      const r = await get('/hidden', { ip, report: 'videos=1' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-ratelimit-limit-videos-minute'], undefined);
      assert.equal(r.headers['x-ratelimit-remaining-videos-minute'], undefined);
      assert.equal(r.headers['x-kong-limit'], undefined);
    }
    const r = await get('/hidden', { ip, report: 'videos=1' });
    assertReplaced(r, 'videos');
    assert.equal(r.headers['x-ratelimit-limit-videos-minute'], undefined);
    assert.equal(r.headers['x-ratelimit-remaining-videos-minute'], undefined);
  });

  test('header_name: X-Palisade-Limit; the usage header is removed, garbage in it is ignored', async () => {
    await clearOfMinuteEdge();
    const ip = newIp();
    const custom = async (report: string | string[]) => {
      const q = new URLSearchParams({ h: 'X-Palisade-Limit' });
      for (const x of typeof report === 'string' ? [report] : report) q.append('report', x);
      return request(gw.port, `/custom?${q}`, { headers: { 'x-forwarded-for': ip } });
    };
    for (const junk of ['videos=abc', 'videos=-1', 'videos=1.5', 'videos', 'videos=1=2', 'other=3', '']) {
      const r = await custom(junk);
      assert.equal(r.status, 200, junk);
      assert.equal(r.headers['x-palisade-limit'], undefined);
      assert.equal(r.headers['x-ratelimit-remaining-videos-minute'], '2', `'${junk}' consumes nothing`);
    }
    const two = await custom(['videos=5', 'videos=1']);
    assert.equal(two.headers['x-ratelimit-remaining-videos-minute'], '1', 'several header lines: the last amount wins');
    assert.equal((await custom('videos=1')).headers['x-ratelimit-remaining-videos-minute'], '0');
    const refused = await custom('videos=1');
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['x-palisade-limit'], undefined);
  });

  test('invalid configs are refused at load with Kong\'s messages, naming the field', async () => {
    const withConfig = (c: object) => ({ services: [{ name: 's', url: upstream.url, routes: [rrl('r', c)] }] });
    const names = (re: RegExp) => (err: unknown) => {
      assert.match(String((err as Error).message), re);
      return true;
    };
    await assert.rejects(startGateway(withConfig({})), names(/limits/));
    await assert.rejects(startGateway(withConfig({ limits: {} })), names(/limits/));
    await assert.rejects(startGateway(withConfig({ limits: { videos: {} } })), names(/limits\.videos: at least one of these fields must be non-empty: 'second', 'minute'/));
    await assert.rejects(startGateway(withConfig({ limits: { videos: { minute: 6, hour: 5 } } })), names(/limits\.videos: the limit for hour\(5\.0\) cannot be lower than the limit for minute\(6\.0\)/));
    await assert.rejects(startGateway(withConfig({ limits: { 'my videos': { minute: 1 } } })), names(/'my videos' cannot be a quota name/));
    await assert.rejects(startGateway(withConfig({ limits: { Videos: { minute: 1 }, videos: { minute: 1 } } })), names(/differ only in case/));
    await assert.rejects(startGateway(withConfig({ limits: { videos: { minute: 0 } } })), names(/minute/));
    await assert.rejects(startGateway(withConfig({ policy: 'cluster', limits: { videos: { minute: 1 } } })), names(/policy 'cluster'/));
    await assert.rejects(startGateway(withConfig({ policy: 'redis', limits: { videos: { minute: 1 } } })), names(/redis\.host is required/));
    await assert.rejects(startGateway(withConfig({ header_name: 'bad header', limits: { videos: { minute: 1 } } })), names(/header_name/));
  });
});
