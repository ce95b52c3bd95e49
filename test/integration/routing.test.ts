/**
 * Routing, black-box: which route a request lands on (seen in the access log),
 * what the upstream receives (path, Host), and the gateway's own answers (404,
 * 426/redirects, 400 for paths above the root).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Response } from '../helpers/http.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';


const echo = { name: 'request-termination', config: { echo: true, status_code: 200 } };

describe('routing', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  /** The route the gateway chose for an answer, from its access-log record. */
  function routeOf(a: Response): string | null {
    const id = a.headers['x-request-id'];
    const rec = gw.accessLog.find((r) => r.request_id === id);
    assert.ok(rec, `no access-log record for request id ${String(id)}`);
    return rec.route as string | null;
  }

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Response> {
    return request(gw.port, path, { headers, method });
  }

  /** What the upstream saw for the last proxied request. */
  function lastSeen() {
    return upstream.requests[upstream.requests.length - 1]!;
  }

  before(async () => {
    upstream = await startUpstream();
    const pathHandlingRoutes = (svc: string, host: string) =>
      ['fv0', 'fv1', 'tv0', 'tv1'].flatMap((p) =>
        ['', '/'].map((slash) => ({
          name: `${svc}-${p}${slash === '/' ? '-slash' : ''}`,
          hosts: [host],
          paths: [`/${p}${slash}`],
          strip_path: p.startsWith('t'),
          path_handling: p.endsWith('0') ? 'v0' : 'v1',
        })),
      );
    gw = await startGateway({
      services: [
        {
          name: 'main',
          url: upstream.url,
          routes: [
            // Host precedence; the exact host is defined last so definition order cannot explain the result.
            { name: 'host-none', paths: ['/hp'] },
            { name: 'host-wild-suffix', hosts: ['*.example.com'], paths: ['/hp'] },
            { name: 'host-wild-prefix', hosts: ['example.*'], paths: ['/hp'] },
            { name: 'host-exact', hosts: ['api.example.com'], paths: ['/hp'] },
            { name: 'host-port', hosts: ['port.example.com:9999'], paths: ['/port'] },
            { name: 'host-wild-port', hosts: ['*.ports.test:7777'], paths: ['/port'] },
            // Headers: more header conditions win, even over a longer path.
            { name: 'hdr-none', paths: ['/hdr'] },
            { name: 'hdr-longer-path', paths: ['/hdr/longer'] },
            { name: 'hdr-one', paths: ['/hdr'], headers: { 'x-version': ['v1', 'v2'] } },
            { name: 'hdr-two', paths: ['/hdr'], headers: { 'x-version': ['v1'], 'x-tier': ['gold'] } },
            { name: 'hdr-regex', paths: ['/hre'], headers: { 'x-client': ['~*^mobile-(ios|android)$'] } },
            // Paths: regex (by regex_priority) > prefix (longest first) > priority > definition order.
            { name: 'users-prefix', paths: ['/users'] },
            { name: 'users-prefix-long', paths: ['/users/admin'] },
            { name: 'users-regex', paths: ['~/users/\\d+$'] },
            { name: 'items-regex-low', paths: ['~/items/\\d+'], regex_priority: 1 },
            { name: 'items-regex-high', paths: ['~/items/(?<id>\\d+)$'], regex_priority: 5 },
            { name: 'items-prefix', paths: ['/items/42'] },
            { name: 'tie-low', paths: ['/tie'] },
            { name: 'tie-high', paths: ['/tie'], priority: 10 },
            { name: 'order-first', paths: ['/order'] },
            { name: 'order-second', paths: ['/order'] },
            // Methods.
            { name: 'm-get', paths: ['/m'], methods: ['GET'] },
            { name: 'm-write', paths: ['/m'], methods: ['POST', 'PUT'] },
            // Protocols.
            { name: 'https-only', paths: ['/secure'], protocols: ['https'] },
            { name: 'https-redirect', paths: ['/secure-redirect'], protocols: ['https'], https_redirect_status_code: 308 },
            { name: 'catchall', hosts: ['catchall.test'], paths: ['/'], protocols: ['http'] },
            { name: 'catchall-vault', hosts: ['catchall.test'], paths: ['/vault'], protocols: ['https'] },
            // Named captures (echoed by request-termination).
            { name: 'captures', paths: ['~/cap/(?<org>[a-z]+)/(?<id>\\d+)$'], plugins: [echo] },
            // Normalisation.
            { name: 'public', paths: ['/public'], strip_path: false },
            { name: 'admin', paths: ['/admin'], strip_path: false },
            // strip_path.
            { name: 'strip', paths: ['/strip'] },
            { name: 'nostrip', paths: ['/nostrip'], strip_path: false },
            { name: 'strip-regex', paths: ['~/v\\d+/things'] },
            // preserve_host.
            { name: 'preserve', paths: ['/preserve'], preserve_host: true },
            { name: 'no-preserve', paths: ['/no-preserve'], preserve_host: false },
          ],
        },
        { name: 'ph-noslash', url: `${upstream.url}/s`, routes: pathHandlingRoutes('noslash', 'noslash.test') },
        { name: 'ph-slash', url: `${upstream.url}/s/`, routes: pathHandlingRoutes('slash', 'slash.test') },
        {
          name: 'ph-dots',
          url: `${upstream.url}/s`,
          routes: [{ name: 'dots', hosts: ['dots.test'], paths: ['/api'] }],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  describe('precedence', () => {
    test('exact host > wildcard host > no host, regardless of definition order', async () => {
      assert.equal(routeOf(await get('/hp', { host: 'api.example.com' })), 'host-exact');
      assert.equal(routeOf(await get('/hp', { host: 'API.Example.COM' })), 'host-exact');
      assert.equal(routeOf(await get('/hp', { host: 'www.example.com' })), 'host-wild-suffix');
      assert.equal(routeOf(await get('/hp', { host: 'a.b.example.com' })), 'host-wild-suffix');
      assert.equal(routeOf(await get('/hp', { host: 'example.org' })), 'host-wild-prefix');
      assert.equal(routeOf(await get('/hp', { host: 'example.com' })), 'host-wild-prefix');
      assert.equal(routeOf(await get('/hp', { host: 'other.test' })), 'host-none');
      assert.equal(routeOf(await get('/hp', { host: 'notexample.com' })), 'host-none');
    });

    test('hosts with :port match only that port', async () => {
      assert.equal(routeOf(await get('/port', { host: 'port.example.com:9999' })), 'host-port');
      assert.equal((await get('/port', { host: 'port.example.com:1234' })).status, 404);
      // No port in Host: the listener port is used, which is not 9999.
      assert.equal((await get('/port', { host: 'port.example.com' })).status, 404);
      assert.equal(routeOf(await get('/port', { host: 'x.ports.test:7777' })), 'host-wild-port');
      assert.equal((await get('/port', { host: 'x.ports.test:7778' })).status, 404);
    });

    test('more header conditions win; values are case-insensitive; headers beat a longer path', async () => {
      assert.equal(routeOf(await get('/hdr', { 'x-version': 'v1', 'x-tier': 'gold' })), 'hdr-two');
      assert.equal(routeOf(await get('/hdr', { 'x-version': 'V1', 'x-tier': 'GOLD' })), 'hdr-two');
      assert.equal(routeOf(await get('/hdr', { 'x-version': 'v2', 'x-tier': 'gold' })), 'hdr-one');
      assert.equal(routeOf(await get('/hdr', { 'x-version': 'v1' })), 'hdr-one');
      assert.equal(routeOf(await get('/hdr', { 'x-version': 'v3' })), 'hdr-none');
      assert.equal(routeOf(await get('/hdr')), 'hdr-none');
      assert.equal(routeOf(await get('/hdr/longer', { 'x-version': 'v1' })), 'hdr-one');
      assert.equal(routeOf(await get('/hdr/longer')), 'hdr-longer-path');
    });

    test('~* header values are case-insensitive regexes', async () => {
      assert.equal(routeOf(await get('/hre', { 'x-client': 'Mobile-iOS' })), 'hdr-regex');
      assert.equal(routeOf(await get('/hre', { 'x-client': 'mobile-android' })), 'hdr-regex');
      assert.equal((await get('/hre', { 'x-client': 'mobile-windows' })).status, 404);
      assert.equal((await get('/hre', { 'x-client': 'my-mobile-ios' })).status, 404);
      assert.equal((await get('/hre')).status, 404);
    });

    test('regex paths before prefix paths, ordered by regex_priority', async () => {
      assert.equal(routeOf(await get('/users/42')), 'users-regex');
      assert.equal(routeOf(await get('/users/42/x')), 'users-prefix');
      assert.equal(routeOf(await get('/items/42')), 'items-regex-high');
      assert.equal(routeOf(await get('/items/42/x')), 'items-regex-low');
      assert.equal(routeOf(await get('/items/abc')), null); // 404
    });

    test('the longer prefix wins', async () => {
      assert.equal(routeOf(await get('/users/admin')), 'users-prefix-long');
      assert.equal(routeOf(await get('/users/admin/settings')), 'users-prefix-long');
      assert.equal(routeOf(await get('/users/bob')), 'users-prefix');
      assert.equal(routeOf(await get('/users')), 'users-prefix');
    });

    test('priority breaks ties, then definition order', async () => {
      assert.equal(routeOf(await get('/tie')), 'tie-high');
      assert.equal(routeOf(await get('/order')), 'order-first');
      assert.equal(routeOf(await get('/order/x')), 'order-first');
    });
  });

  describe('methods', () => {
    test('methods select the route; a method mismatch is 404, never 405', async () => {
      assert.equal(routeOf(await get('/m')), 'm-get');
      assert.equal(routeOf(await get('/m', {}, 'POST')), 'm-write');
      assert.equal(routeOf(await get('/m', {}, 'PUT')), 'm-write');
      const del = await get('/m', {}, 'DELETE');
      assert.equal(del.status, 404);
      assert.equal(JSON.parse(del.body).message, 'no Route matched with those values');
      assert.equal((await get('/m', {}, 'PATCH')).status, 404);
    });
  });

  describe('protocols', () => {
    test('an https-only route over http → 426 "Please use HTTPS protocol", upstream untouched', async () => {
      const before = upstream.requests.length;
      const r = await get('/secure/data');
      assert.equal(r.status, 426);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const body = JSON.parse(r.body);
      assert.equal(body.message, 'Please use HTTPS protocol');
      assert.equal(body.request_id, r.headers['x-request-id']);
      assert.equal(upstream.requests.length, before);
    });

    test('https_redirect_status_code redirects to https on the same host (no http port) and path', async () => {
      const r = await get('/secure-redirect/a?x=1&y=2', { host: 'shop.test:8000' });
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, 'https://shop.test/secure-redirect/a?x=1&y=2');
    });

    test('an https-only route is not bypassed by a less specific http route', async () => {
      const before = upstream.requests.length;
      const vault = await get('/vault/keys', { host: 'catchall.test' });
      assert.equal(vault.status, 426);
      assert.equal(upstream.requests.length, before, 'the request must not reach the catch-all route');
      const other = await get('/other', { host: 'catchall.test' });
      assert.equal(other.status, 200);
      assert.equal(routeOf(other), 'catchall');
    });

    test('an https-only route accepts http from a trusted proxy that says X-Forwarded-Proto: https', async () => {
      const trustedGw = await startGateway({
        server: { trusted_ips: ['127.0.0.1'] },
        services: [{ name: 's', url: upstream.url, routes: [{ name: 'tls', paths: ['/tls'], protocols: ['https'] }] }],
      });
      try {
        assert.equal((await request(trustedGw.port, '/tls')).status, 426);
        const r = await request(trustedGw.port, '/tls', { headers: { 'x-forwarded-proto': 'https' } });
        assert.equal(r.status, 200);
        assert.equal(lastSeen().url, '/');
      } finally {
        await trustedGw.close();
      }
    });
  });

  describe('no match', () => {
    test('404 problem document with Kong message and the request id of the X-Request-Id header', async () => {
      const r = await get('/nothing/here', { host: 'nowhere.test' });
      assert.equal(r.status, 404);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const body = JSON.parse(r.body);
      assert.equal(body.message, 'no Route matched with those values');
      assert.equal(body.status, 404);
      assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      assert.equal(body.request_id, r.headers['x-request-id']);
      assert.equal(routeOf(r), null);
    });
  });

  describe('regex captures', () => {
    test('named captures are exposed to plugins', async () => {
      const r = await get('/cap/acme/7');
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body);
      assert.deepEqual(body.request.uri_captures.named, { org: 'acme', id: '7' });
      assert.equal(body.matched_route.name, 'captures');
      assert.equal((await get('/cap/ACME/7')).status, 404);
    });
  });

  describe('path normalisation', () => {
    test('/public/%2e%2e/admin and /public/../admin route (and proxy) as /admin', async () => {
      for (const p of ['/public/%2e%2e/admin', '/public/%2E%2E/admin', '/public/../admin', '/public/./../admin/', '/public//..//admin']) {
        const r = await get(p);
        assert.equal(r.status, 200, p);
        assert.equal(routeOf(r), 'admin', p);
        assert.match(lastSeen().url, /^\/admin\/?$/, p);
      }
    });

    test('dot segments and duplicate slashes are resolved before proxying', async () => {
      const r = await get('/public/./a//b/%7Euser?q=%2e%2e');
      assert.equal(routeOf(r), 'public');
      assert.equal(lastSeen().url, '/public/a/b/~user?q=%2e%2e');
    });

    test('a path climbing above the root → 400 problem document, upstream untouched', async () => {
      for (const p of ['/../admin', '/public/../../admin', '/public/%2e%2e/%2E%2E/%2e%2e/etc/passwd']) {
        const before = upstream.requests.length;
        const r = await get(p);
        assert.equal(r.status, 400, p);
        assert.equal(r.headers['content-type'], 'application/problem+json');
        const body = JSON.parse(r.body);
        assert.equal(body.status, 400);
        assert.equal(body.request_id, r.headers['x-request-id']);
        assert.equal(upstream.requests.length, before);
      }
    });
  });

  describe('strip_path', () => {
    test('strip_path true removes the matched prefix, keeps the query', async () => {
      await get('/strip/a/b?x=1');
      assert.equal(lastSeen().url, '/a/b?x=1');
      await get('/strip');
      assert.equal(lastSeen().url, '/');
      await get('/strip/');
      assert.equal(lastSeen().url, '/');
    });

    test('strip_path false keeps the whole path', async () => {
      await get('/nostrip/a?x=1');
      assert.equal(lastSeen().url, '/nostrip/a?x=1');
    });

    test('strip_path with a regex path strips what the regex matched', async () => {
      await get('/v2/things/9');
      assert.equal(lastSeen().url, '/9');
    });

    test('a stripped remainder that starts with ../ cannot climb out of the service path', async () => {
      await get('/api../admin', { host: 'dots.test' });
      assert.equal(lastSeen().url, '/s/admin');
      await get('/api..', { host: 'dots.test' });
      assert.equal(lastSeen().url, '/s');
    });
  });

  describe('path_handling', () => {
    // Kong's documented table (Admin API, route object, path_handling).
    const table: [host: string, request: string, expected: string][] = [
      ['noslash.test', '/fv0req', '/s/fv0req'],
      ['noslash.test', '/fv0', '/s/fv0'],
      ['noslash.test', '/fv1req', '/sfv1req'],
      ['noslash.test', '/fv1', '/sfv1'],
      ['noslash.test', '/tv0req', '/s/req'],
      ['noslash.test', '/tv0', '/s'],
      ['noslash.test', '/tv1req', '/sreq'],
      ['noslash.test', '/tv1', '/s'],
      ['noslash.test', '/fv0/req', '/s/fv0/req'],
      ['noslash.test', '/fv0/', '/s/fv0/'],
      ['noslash.test', '/fv1/req', '/sfv1/req'],
      ['noslash.test', '/fv1/', '/sfv1/'],
      ['noslash.test', '/tv0/req', '/s/req'],
      ['noslash.test', '/tv0/', '/s/'],
      ['noslash.test', '/tv1/req', '/sreq'],
      ['noslash.test', '/tv1/', '/s'],
      ['slash.test', '/fv0req', '/s/fv0req'],
      ['slash.test', '/fv0', '/s/fv0'],
      ['slash.test', '/fv1req', '/s/fv1req'],
      ['slash.test', '/fv1', '/s/fv1'],
      ['slash.test', '/tv0req', '/s/req'],
      ['slash.test', '/tv0', '/s'],
      ['slash.test', '/tv1req', '/s/req'],
      ['slash.test', '/tv1', '/s/'],
      ['slash.test', '/fv0/req', '/s/fv0/req'],
      ['slash.test', '/fv0/', '/s/fv0/'],
      ['slash.test', '/fv1/req', '/s/fv1/req'],
      ['slash.test', '/fv1/', '/s/fv1/'],
      ['slash.test', '/tv0/req', '/s/req'],
      ['slash.test', '/tv0/', '/s/'],
      ['slash.test', '/tv1/req', '/s/req'],
      ['slash.test', '/tv1/', '/s/'],
    ];
    test("v0 and v1 join the service path as in Kong's table", async () => {
      const wrong: string[] = [];
      for (const [host, path, expected] of table) {
        const r = await get(path, { host });
        assert.equal(r.status, 200, `${host}${path}`);
        const got = lastSeen().url;
        if (got !== expected) wrong.push(`service ${host === 'slash.test' ? '/s/' : '/s'} + ${path}: expected ${expected}, got ${got}`);
      }
      assert.deepEqual(wrong, []);
    });
  });

  describe('preserve_host', () => {
    test("preserve_host sends the client's Host; otherwise the service host", async () => {
      await get('/preserve', { host: 'public.example.com:8443' });
      assert.equal(lastSeen().headers.host, 'public.example.com:8443');
      await get('/no-preserve', { host: 'public.example.com' });
      assert.equal(lastSeen().headers.host, `127.0.0.1:${upstream.port}`);
    });
  });
});
