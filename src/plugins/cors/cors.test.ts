import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

async function call(gw: TestGateway, path: string, method: string, headers: Record<string, string> = {}): Promise<Res> {
  const r = await request(gw.url + path, { method: method as 'GET', headers });
  return { status: r.statusCode, headers: r.headers as IncomingHttpHeaders, text: await r.body.text() };
}

const preflight = (origin: string, extra: Record<string, string> = {}) => ({
  origin,
  'access-control-request-method': 'POST',
  ...extra,
});

function varyValues(h: IncomingHttpHeaders): string[] {
  const v = h['vary'];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v.join(',') : v).split(',').map((s) => s.trim().toLowerCase());
}

function corsHeaderNames(h: IncomingHttpHeaders): string[] {
  return Object.keys(h).filter((k) => k.startsWith('access-control-'));
}

const KONG_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT';

describe('cors', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream((req, res, body) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-upstream': 'yes' };
      if (req.url?.includes('upstream-acao')) headers['access-control-allow-origin'] = '*';
      if (req.url?.includes('upstream-vary')) headers['vary'] = 'Accept-Encoding';
      res.writeHead(200, headers);
      res.end(JSON.stringify({ method: req.method, url: req.url, body }));
    });
    const route = (name: string, config: object, more: object[] = []) => ({
      name,
      paths: [`/${name}`],
      plugins: [{ name: 'cors', config }, ...more],
    });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('list', {
              origins: ['http://app.example.com', 'https://admin.example.com:8443', 'https://secure.example.com:443'],
              exposed_headers: ['X-Upstream', 'X-Total'],
              credentials: true,
            }),
            route('single', { origins: ['https://only.example.com'] }),
            route('regex', { origins: ['(.*\\.)?example\\.org', 'https://.*\\.example\\.net'] }),
            route('creds', {
              origins: ['http://app.example.com'],
              credentials: true,
              max_age: 3600,
              headers: ['X-Auth', 'Content-Type'],
              methods: ['GET', 'POST'],
              private_network: true,
            }),
            route('star-creds', { origins: ['*'], credentials: true }),
            route('continue', { origins: ['http://app.example.com'], preflight_continue: true }),
            route('absent-off', { allow_origin_absent: false }),
            route('terminated', { origins: ['http://app.example.com'], exposed_headers: ['X-Why'] }, [
              { name: 'request-termination', config: { status_code: 404 } },
            ]),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  test('preflight from an allowed origin is answered 200 by the gateway with Kong headers', async () => {
    const before = upstream.requests.length;
    const r = await call(gw, '/list', 'OPTIONS', preflight('http://app.example.com', { 'access-control-request-headers': 'X-One, X-Two' }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-allow-methods'], KONG_METHODS);
    assert.equal(r.headers['access-control-allow-headers'], 'X-One, X-Two', 'request headers are reflected when `headers` is unset');
    assert.equal(r.headers['access-control-max-age'], undefined);
    assert.equal(r.headers['access-control-expose-headers'], undefined, 'expose headers belong to actual responses');
    assert.deepEqual(varyValues(r.headers), ['origin']);
    assert.equal(r.text, '');
    assert.equal(upstream.requests.length, before, 'the preflight never reaches the upstream');
  });

  test('origin comparison normalizes default ports', async () => {
    const r = await call(gw, '/list', 'OPTIONS', preflight('https://admin.example.com:8443'));
    assert.equal(r.headers['access-control-allow-origin'], 'https://admin.example.com:8443');
    const r2 = await call(gw, '/list', 'GET', { origin: 'http://app.example.com:80' });
    assert.equal(r2.headers['access-control-allow-origin'], 'http://app.example.com');
    const r3 = await call(gw, '/list', 'GET', { origin: 'https://secure.example.com' });
    assert.equal(r3.headers['access-control-allow-origin'], 'https://secure.example.com', 'configured :443 is the default port');
  });

  test('preflight from a non-allowed origin: 200, no CORS headers, upstream not called', async () => {
    const before = upstream.requests.length;
    const r = await call(gw, '/list', 'OPTIONS', preflight('http://evil.example.com'));
    assert.equal(r.status, 200);
    assert.deepEqual(corsHeaderNames(r.headers), []);
    assert.deepEqual(varyValues(r.headers), ['origin']);
    assert.equal(upstream.requests.length, before);
  });

  test('actual request from an allowed origin gets Allow-Origin, Allow-Credentials, Expose-Headers', async () => {
    const r = await call(gw, '/list/items', 'GET', { origin: 'http://app.example.com' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'yes', 'the upstream answered');
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-expose-headers'], 'X-Upstream,X-Total');
    assert.ok(varyValues(r.headers).includes('origin'));
    assert.equal(r.headers['access-control-allow-methods'], undefined, 'preflight-only headers stay off actual responses');
  });

  test('actual request from a non-allowed origin gets no CORS headers and is still proxied', async () => {
    const r = await call(gw, '/list/upstream-acao', 'GET', { origin: 'http://evil.example.com' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'yes');
    assert.deepEqual(corsHeaderNames(r.headers), [], "even the upstream's own Allow-Origin is removed");
    assert.ok(varyValues(r.headers).includes('origin'));
  });

  test('Vary: Origin is added to the upstream Vary, not replacing it', async () => {
    const r = await call(gw, '/list/upstream-vary', 'GET', { origin: 'http://app.example.com' });
    const vary = varyValues(r.headers);
    assert.ok(vary.includes('accept-encoding'), `vary: ${vary}`);
    assert.ok(vary.includes('origin'), `vary: ${vary}`);
  });

  test('single exact origin: echoed to itself, refused to others', async () => {
    const ok = await call(gw, '/single', 'GET', { origin: 'https://only.example.com' });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://only.example.com');
    const no = await call(gw, '/single', 'GET', { origin: 'https://other.example.com' });
    assert.equal(no.headers['access-control-allow-origin'], undefined);
  });

  test('regex origins: host regexes match the host, regexes with ":" the whole origin, both anchored', async () => {
    const cases: [string, string | undefined][] = [
      ['https://example.org', 'https://example.org'],
      ['http://a.b.example.org:8080', 'http://a.b.example.org:8080'],
      ['https://evilexample.org', undefined],
      ['https://example.org.evil.com', undefined],
      ['https://api.example.net', 'https://api.example.net'],
      ['http://api.example.net', undefined],
    ];
    for (const [origin, expected] of cases) {
      const r = await call(gw, '/regex', 'OPTIONS', preflight(origin));
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], expected, origin);
    }
  });

  test('credentials, max_age, headers, methods and private_network on a preflight', async () => {
    const r = await call(
      gw,
      '/creds',
      'OPTIONS',
      preflight('http://app.example.com', { 'access-control-request-headers': 'X-Ignored', 'access-control-request-private-network': 'true' }),
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers['access-control-max-age'], '3600');
    assert.equal(r.headers['access-control-allow-headers'], 'X-Auth,Content-Type');
    assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(r.headers['access-control-allow-private-network'], 'true');
    const noPna = await call(gw, '/creds', 'OPTIONS', preflight('http://app.example.com'));
    assert.equal(noPna.headers['access-control-allow-private-network'], undefined);
  });

  test('default config allows every origin with "*" and no Vary', async () => {
    const pre = await call(gw, '/default', 'OPTIONS', preflight('http://anything.test'));
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.equal(pre.headers['access-control-allow-methods'], KONG_METHODS);
    assert.equal(pre.headers['access-control-allow-credentials'], undefined);
    const r = await call(gw, '/default', 'GET', { origin: 'http://anything.test' });
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.ok(!varyValues(r.headers).includes('origin'));
  });

  test('allow_origin_absent: headers without Origin by default, none when false', async () => {
    const on = await call(gw, '/default', 'GET');
    assert.equal(on.headers['access-control-allow-origin'], '*');
    const off = await call(gw, '/absent-off', 'GET');
    assert.equal(off.status, 200);
    assert.equal(off.headers['access-control-allow-origin'], undefined);
    const offWithOrigin = await call(gw, '/absent-off', 'GET', { origin: 'http://x.test' });
    assert.equal(offWithOrigin.headers['access-control-allow-origin'], '*');
  });

  test('"*" with credentials echoes the request Origin and varies on it', async () => {
    const r = await call(gw, '/star-creds', 'GET', { origin: 'http://site.test' });
    assert.equal(r.headers['access-control-allow-origin'], 'http://site.test');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.ok(varyValues(r.headers).includes('origin'));
    const pre = await call(gw, '/star-creds', 'OPTIONS', preflight('http://site.test'));
    assert.equal(pre.headers['access-control-allow-origin'], 'http://site.test');
    assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  });

  test('preflight_continue sends the preflight to the upstream and adds nothing', async () => {
    const before = upstream.requests.length;
    const r = await call(gw, '/continue', 'OPTIONS', preflight('http://app.example.com'));
    assert.equal(r.status, 200);
    assert.equal(upstream.requests.length, before + 1);
    assert.equal(upstream.requests.at(-1)!.method, 'OPTIONS');
    assert.equal(JSON.parse(r.text).method, 'OPTIONS');
    assert.deepEqual(corsHeaderNames(r.headers), []);
  });

  test('an OPTIONS without Access-Control-Request-Method is not a preflight: proxied, gets actual-response headers', async () => {
    const before = upstream.requests.length;
    const r = await call(gw, '/list', 'OPTIONS', { origin: 'http://app.example.com' });
    assert.equal(upstream.requests.length, before + 1);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    assert.equal(r.headers['access-control-allow-methods'], undefined);
  });

  test('responses generated by the gateway (404 from request-termination) carry CORS headers', async () => {
    const r = await call(gw, '/terminated', 'GET', { origin: 'http://app.example.com' });
    assert.equal(r.status, 404);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    assert.equal(r.headers['access-control-expose-headers'], 'X-Why');
    assert.ok(varyValues(r.headers).includes('origin'));
    const denied = await call(gw, '/terminated', 'GET', { origin: 'http://evil.test' });
    assert.equal(denied.status, 404);
    assert.deepEqual(corsHeaderNames(denied.headers), []);
  });

  test('a global cors plugin also decorates the no-route 404', async () => {
    const up = await startUpstream();
    const g = await startGateway({
      _format_version: '3.0',
      plugins: [{ name: 'cors', config: { origins: ['http://app.example.com'] } }],
      services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/exists'] }] }],
    });
    try {
      const r = await call(g, '/nowhere', 'GET', { origin: 'http://app.example.com' });
      assert.equal(r.status, 404);
      assert.equal(r.headers['access-control-allow-origin'], 'http://app.example.com');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (config: object) => ({
      _format_version: '3.0',
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'cors', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ origins: ['http://ok.test', '(unclosed'] })), names('origins'));
    await assert.rejects(startGateway(withConfig({ methods: ['GET', 'FETCH'] })), names('methods'));
    await assert.rejects(startGateway(withConfig({ max_age: 'long' })), names('max_age'));
    await assert.rejects(startGateway(withConfig({ credential: true })), names('credential'));
  });
});
