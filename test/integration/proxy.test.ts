/**
 * The proxy leg, black-box: what the upstream receives (headers, path, query),
 * what the client receives back, and the access-log record of each exchange.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'undici';
import { request as send, type Response } from '../helpers/http.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';


function backend(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = req.url ?? '/';
  const path = url.split('?')[0];
  switch (path) {
    case '/hop':
      res.setHeader('connection', 'close, X-Resp-Hop');
      res.setHeader('x-resp-hop', 'secret');
      res.setHeader('keep-alive', 'timeout=5, max=99');
      res.setHeader('proxy-connection', 'keep-alive');
      res.setHeader('x-resp-keep', 'ok');
      // Not hop-by-hop: `close` is a Connection option, not the name of this header; `__proto__` is a name like any other.
      res.setHeader('close', 'a header, not the option');
      res.setHeader('__proto__', 'from-upstream');
      res.end('hop');
      return;
    case '/cookies':
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
      res.end('cookies');
      return;
    case '/head':
      res.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234));
      return;
    case '/nocontent':
      res.writeHead(204, { 'x-done': 'yes' });
      res.end();
      return;
    case '/etag':
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
      } else {
        res.writeHead(200, { etag: '"v1"', 'content-type': 'text/plain' });
        res.end('fresh');
      }
      return;
    case '/via':
      res.setHeader('via', '1.0 backend');
      res.end(JSON.stringify({ via: req.headers.via ?? null }));
      return;
    case '/slow':
      setTimeout(() => res.end('slow-body'), 80);
      return;
    default: {
      const text = JSON.stringify({ method: req.method, url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  }
}

describe('proxy', () => {
  let upstream: TestUpstream;
  /** No trusted peers. */
  let plain: TestGateway;
  /** 127.0.0.1 trusted, Via on. */
  let trusted: TestGateway;
  /** 127.0.0.1 and 10.0.0.0/8 trusted. */
  let trustedChain: TestGateway;

  const config = (server: object) => ({
    server,
    services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/p'] }] }],
  });

  before(async () => {
    upstream = await startUpstream(backend);
    plain = await startGateway(config({}));
    trusted = await startGateway(config({ trusted_ips: ['127.0.0.1'], via: true }));
    trustedChain = await startGateway(config({ trusted_ips: ['127.0.0.1', '10.0.0.0/8'] }));
  });

  after(async () => {
    await plain?.close();
    await trusted?.close();
    await trustedChain?.close();
    await upstream?.close();
  });

  function lastSeen() {
    return upstream.requests[upstream.requests.length - 1]!;
  }

  function recordOf(gw: TestGateway, a: { headers: IncomingHttpHeaders | Record<string, unknown> }) {
    const id = a.headers['x-request-id'];
    const rec = gw.accessLog.find((r) => r.request_id === id);
    assert.ok(rec, `no access-log record for ${String(id)}`);
    return rec;
  }

  describe('hop-by-hop headers', () => {
    test('are not forwarded upstream, including those listed in Connection', async () => {
      const r = await send(plain.port, '/p/echo', {
        headers: {
          connection: 'keep-alive, X-Hop-A, x-hop-b',
          'x-hop-a': '1',
          'x-hop-b': '2',
          'keep-alive': 'timeout=5',
          'proxy-connection': 'keep-alive',
          te: 'trailers',
          'x-keep': 'yes',
        },
      });
      assert.equal(r.status, 200);
      const h = lastSeen().headers;
      for (const name of ['x-hop-a', 'x-hop-b', 'keep-alive', 'proxy-connection', 'te']) assert.equal(h[name], undefined, name);
      assert.doesNotMatch(String(h.connection ?? ''), /hop/i);
      assert.equal(h['x-keep'], 'yes');
    });

    test('Connection options (close, keep-alive) in a request are not header names', async () => {
      const r = await send(plain.port, '/p/echo', { headers: { connection: 'close, x-hop-a', 'x-hop-a': '1', close: 'a header named close' } });
      assert.equal(r.status, 200);
      const h = lastSeen().headers;
      assert.equal(h['x-hop-a'], undefined);
      assert.equal(h.close, 'a header named close');
    });

    test('are not returned to the client, including those listed in Connection', async () => {
      const r = await send(plain.port, '/p/hop');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hop');
      assert.equal(r.headers['x-resp-hop'], undefined);
      assert.equal(r.headers['proxy-connection'], undefined);
      assert.doesNotMatch(String(r.headers['keep-alive'] ?? ''), /max=99/);
      assert.doesNotMatch(String(r.headers.connection ?? ''), /x-resp-hop/i);
      assert.equal(r.headers['x-resp-keep'], 'ok');
    });

    test('a response header named __proto__ is forwarded like any other; Connection options are not header names', async () => {
      const r = await request(`${plain.url}/p/hop`);
      assert.equal(await r.body.text(), 'hop');
      assert.ok(Object.hasOwn(r.headers, '__proto__'), 'forwarded as a header');
      assert.equal(r.headers['__proto__'], 'from-upstream');
      assert.equal(r.headers['x-resp-hop'], undefined);
      assert.equal(r.headers.close, 'a header, not the option');
    });

    test('Expect: 100-continue is answered by the gateway and the body still reaches the upstream', async () => {
      const body = 'z'.repeat(4096);
      const r = await new Promise<Pick<Response, 'status' | 'headers' | 'body'>>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: plain.port, path: '/p/upload', method: 'PUT', agent: false, headers: { expect: '100-continue', 'content-length': String(body.length) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
          },
        );
        req.on('continue', () => req.end(body));
        req.on('error', reject);
      });
      assert.equal(r.status, 200);
      const seen = JSON.parse(r.body);
      assert.equal(seen.body.length, body.length);
      assert.equal(seen.headers.expect, undefined);
    });
  });

  describe('X-Forwarded-* and X-Real-IP', () => {
    const spoofed = {
      'x-forwarded-for': '1.2.3.4, 10.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'public.test',
      'x-forwarded-port': '443',
      'x-forwarded-path': '/orig/p/sub',
      'x-forwarded-prefix': '/orig',
      'x-real-ip': '9.9.9.9',
    };

    test('set by the gateway from the connection when no peer is trusted', async () => {
      const r = await send(plain.port, '/p/sub?x=1', { headers: { host: 'api.test' } });
      assert.equal(r.status, 200);
      const h = lastSeen().headers;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-real-ip'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'api.test');
      assert.equal(h['x-forwarded-port'], String(plain.port));
      assert.equal(h['x-forwarded-path'], '/p/sub');
      assert.equal(h['x-forwarded-prefix'], '/p');
    });

    test('spoofed values from an untrusted peer are replaced, not appended', async () => {
      await send(plain.port, '/p/sub', { headers: { host: 'api.test', ...spoofed } });
      const h = lastSeen().headers;
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-real-ip'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'api.test');
      assert.equal(h['x-forwarded-port'], String(plain.port));
      assert.equal(h['x-forwarded-path'], '/p/sub');
      assert.equal(h['x-forwarded-prefix'], '/p');
      assert.equal(recordOf(plain, (await request(plain.url + '/p/sub', { headers: spoofed }).then(async (x) => (await x.body.dump(), x)))).client_ip, '127.0.0.1');
    });

    test('X-Forwarded-Port is the port the client connected to, not the Host header port', async () => {
      await send(plain.port, '/p/sub', { headers: { host: 'api.test:1234' } });
      assert.equal(lastSeen().headers['x-forwarded-port'], String(plain.port));
      assert.equal(lastSeen().headers['x-forwarded-host'], 'api.test');
    });

    test('from a trusted peer: XFF appended, X-Real-IP is the first untrusted hop, other values believed', async () => {
      const r = await send(trusted.port, '/p/sub', { headers: { host: 'api.test', ...spoofed } });
      assert.equal(r.status, 200);
      const h = lastSeen().headers;
      assert.equal(h['x-forwarded-for'], '1.2.3.4, 10.0.0.1, 127.0.0.1');
      assert.equal(h['x-real-ip'], '10.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h['x-forwarded-host'], 'public.test');
      assert.equal(h['x-forwarded-port'], '443');
      assert.equal(h['x-forwarded-path'], '/orig/p/sub');
      assert.equal(h['x-forwarded-prefix'], '/orig');
      assert.equal(recordOf(trusted, r).client_ip, '10.0.0.1');
    });

    test('a trusted hop inside X-Forwarded-For is skipped when finding the client', async () => {
      const r = await send(trustedChain.port, '/p/sub', { headers: { 'x-forwarded-for': '1.2.3.4, 10.0.0.1' } });
      assert.equal(lastSeen().headers['x-real-ip'], '1.2.3.4');
      assert.equal(lastSeen().headers['x-forwarded-for'], '1.2.3.4, 10.0.0.1, 127.0.0.1');
      assert.equal(recordOf(trustedChain, r).client_ip, '1.2.3.4');
    });

    test('X-Forwarded-For hops with a port are read as addresses; a hop that is no address makes the client unknown, never the proxy', async () => {
      const withPort = await send(trustedChain.port, '/p/sub', { headers: { 'x-forwarded-for': '1.2.3.4:5678, 10.0.0.1' } });
      assert.equal(recordOf(trustedChain, withPort).client_ip, '1.2.3.4');
      const v6 = await send(trustedChain.port, '/p/sub', { headers: { 'x-forwarded-for': '[2001:db8::1]:443' } });
      assert.equal(recordOf(trustedChain, v6).client_ip, '2001:db8::1');
      const junk = await send(trustedChain.port, '/p/sub', { headers: { 'x-forwarded-for': 'unknown, 10.0.0.1' } });
      assert.equal(recordOf(trustedChain, junk).client_ip, '', 'not 127.0.0.1 (the trusted proxy): an allow-list must not match');
    });
  });

  describe('repeated single-value headers', () => {
    test('a repeated Content-Type or Authorization is refused with 400 before the upstream (plugins and upstream could read different copies)', async () => {
      for (const name of ['content-type', 'authorization']) {
        const before = upstream.requests.length;
        const r = await send(plain.port, '/p/sub', { method: 'POST', body: '{}', headers: ['host', 'api.test', name, 'application/json', name, 'text/plain'] });
        assert.equal(r.status, 400, name);
        assert.match(r.json().message, /repeated/);
        assert.equal(upstream.requests.length, before, `${name}: the upstream never saw it`);
      }
      assert.equal((await send(plain.port, '/p/sub', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 200);
    });
  });

  describe('request id', () => {
    test('generated, sent upstream and returned to the client', async () => {
      const r = await send(plain.port, '/p/id');
      const id = r.headers['x-request-id'];
      assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(lastSeen().headers['x-request-id'], id);
      assert.equal(recordOf(plain, r).request_id, id);
      const r2 = await send(plain.port, '/p/id');
      assert.notEqual(r2.headers['x-request-id'], id);
    });

    test('an incoming id from an untrusted peer is replaced', async () => {
      const r = await send(plain.port, '/p/id', { headers: { 'x-request-id': 'client-chosen-id' } });
      assert.notEqual(r.headers['x-request-id'], 'client-chosen-id');
      assert.equal(lastSeen().headers['x-request-id'], r.headers['x-request-id']);
    });

    test('an incoming id from a trusted peer is kept both ways; an insane one is replaced', async () => {
      const r = await send(trusted.port, '/p/id', { headers: { 'x-request-id': 'lb-abc-123' } });
      assert.equal(r.headers['x-request-id'], 'lb-abc-123');
      assert.equal(lastSeen().headers['x-request-id'], 'lb-abc-123');
      assert.equal(recordOf(trusted, r).request_id, 'lb-abc-123');
      const long = await send(trusted.port, '/p/id', { headers: { 'x-request-id': 'x'.repeat(300) } });
      assert.notEqual(long.headers['x-request-id'], 'x'.repeat(300));
      assert.equal(lastSeen().headers['x-request-id'], long.headers['x-request-id']);
    });
  });

  test('request_id_header names the header both ways (case-insensitive); __proto__ still gets the response its id', async () => {
    const own = (h: object, name: string): unknown => Object.getOwnPropertyDescriptor(h, name)?.value;
    for (const header of ['X-Trace-Id', '__proto__']) {
      const gw = await startGateway({
        server: { request_id_header: header, trusted_ips: ['127.0.0.1'] },
        services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
      });
      try {
        const lower = header.toLowerCase();
        const fresh = await request(`${gw.url}/id`);
        await fresh.body.dump();
        const id = own(fresh.headers, lower);
        assert.match(String(id), /^[0-9a-f]{8}-/, `${header}: a generated id on the response`);
        // node:http (the client here, the test upstream's server) drops a __proto__ header: only the response is observable.
        if (header === '__proto__') continue;
        assert.equal(own(lastSeen().headers, lower), id, `${header}: the same id upstream`);
        const kept = await request(`${gw.url}/id`, { headers: { [header]: 'lb-xyz-9' } });
        await kept.body.dump();
        assert.equal(own(kept.headers, lower), 'lb-xyz-9', 'a trusted peer\'s id is kept');
      } finally {
        await gw.close();
      }
    }
  });

  describe('Via', () => {
    test('server.via adds Via both ways, after the ones already there', async () => {
      const r = await send(trusted.port, '/p/via', { headers: { via: '1.0 client-proxy' } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).via, '1.0 client-proxy, 1.1 palisade');
      assert.match(String(r.headers.via), /^1\.0 backend, 1\.1 palisade$/);
    });

    test('off by default', async () => {
      const r = await send(plain.port, '/p/via');
      assert.equal(JSON.parse(r.body).via, null);
      assert.equal(r.headers.via, '1.0 backend');
    });
  });

  describe('responses', () => {
    test('duplicate Set-Cookie headers are preserved', async () => {
      const r = await request(plain.url + '/p/cookies');
      await r.body.dump();
      assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure']);
    });

    test('query strings are passed through byte for byte', async () => {
      const q = 'a=1&b=%20x&c=&c=2&d=%2F%3F&e&f=%E2%9C%93&g=a+b';
      await send(plain.port, `/p/q?${q}`);
      assert.equal(lastSeen().url, `/q?${q}`);
    });

    test('HEAD: headers of the resource, no body', async () => {
      const r = await request(plain.url + '/p/head', { method: 'HEAD' });
      const text = await r.body.text();
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-length'], '1234');
      assert.equal(text, '');
      assert.equal(lastSeen().method, 'HEAD');
      // The connection is still usable afterwards.
      const g = await request(plain.url + '/p/head');
      assert.equal((await g.body.text()).length, 1234);
    });

    test('204 and 304 pass through without a body', async () => {
      const nc = await request(plain.url + '/p/nocontent');
      assert.equal(nc.statusCode, 204);
      assert.equal(nc.headers['x-done'], 'yes');
      assert.equal(await nc.body.text(), '');
      const fresh = await request(plain.url + '/p/etag');
      assert.equal(await fresh.body.text(), 'fresh');
      const nm = await request(plain.url + '/p/etag', { headers: { 'if-none-match': '"v1"' } });
      assert.equal(nm.statusCode, 304);
      assert.equal(nm.headers.etag, '"v1"');
      assert.equal(await nm.body.text(), '');
    });
  });

  describe('access log', () => {
    test('one record per request with route, service, status, latencies, bytes, target', async () => {
      const r = await request(plain.url + '/p/slow');
      const text = await r.body.text();
      const rec = recordOf(plain, r) as Record<string, any>;
      assert.equal(rec.type, 'access');
      assert.equal(rec.route, 'r');
      assert.equal(rec.service, 'svc');
      assert.equal(rec.status, 200);
      assert.equal(rec.method, 'GET');
      assert.equal(rec.path, '/p/slow');
      assert.equal(rec.source, 'upstream');
      assert.equal(rec.upstream, `127.0.0.1:${upstream.port}`);
      assert.equal(rec.tries, 1);
      assert.equal(rec.error, null);
      assert.equal(rec.client_ip, '127.0.0.1');
      assert.ok(rec.latency.upstream_ms >= 70, `upstream_ms ${rec.latency.upstream_ms}`);
      assert.ok(rec.latency.total_ms >= rec.latency.upstream_ms);
      assert.ok(rec.latency.gateway_ms >= 0 && rec.latency.gateway_ms < rec.latency.total_ms);
      assert.ok(Math.abs(rec.latency.total_ms - rec.latency.upstream_ms - rec.latency.gateway_ms) < 0.01);
      assert.equal(rec.bytes.response, Buffer.byteLength(text));
    });

    test('request bytes are counted', async () => {
      const body = 'b'.repeat(777);
      const r = await request(plain.url + '/p/post', { method: 'POST', body });
      await r.body.dump();
      const rec = recordOf(plain, r) as Record<string, any>;
      assert.equal(rec.bytes.request, 777);
      assert.equal(lastSeen().body.length, 777);
    });

    test('secrets in the query are redacted in the log but reach the upstream', async () => {
      const r = await request(plain.url + '/p/log?apikey=s3cr3t-key&page=2&access_token=tok-123&Password=pw');
      await r.body.dump();
      const rec = recordOf(plain, r) as Record<string, any>;
      assert.equal(rec.path, '/p/log?apikey=REDACTED&page=2&access_token=REDACTED&Password=REDACTED');
      assert.doesNotMatch(JSON.stringify(rec), /s3cr3t|tok-123|pw\b/);
      assert.equal(lastSeen().url, '/log?apikey=s3cr3t-key&page=2&access_token=tok-123&Password=pw');
    });

    test('a gateway answer is logged with its error code and no upstream', async () => {
      const r = await request(plain.url + '/nope');
      await r.body.dump();
      const rec = recordOf(plain, r) as Record<string, any>;
      assert.equal(rec.status, 404);
      assert.equal(rec.source, 'gateway');
      assert.equal(rec.error, 'PALISADE_ERR_NO_ROUTE');
      assert.equal(rec.upstream, null);
      assert.equal(rec.tries, 0);
      assert.equal(rec.latency.upstream_ms, 0);
    });
  });

  describe('upstream connections', () => {
    test('upstream_keepalive_idle_timeout: 0 proxies without keeping idle connections', async () => {
      const g = await startGateway({ server: { upstream_keepalive_idle_timeout: 0 }, services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/p'] }] }] });
      try {
        for (let i = 0; i < 3; i++) {
          const r = await send(g.port, '/p/idle');
          assert.equal(r.status, 200, r.body);
          await new Promise((ok) => setTimeout(ok, 20));
        }
      } finally {
        await g.close();
      }
    });

    test('a request queued for a busy pool is never sent upstream once its client has left', async () => {
      let releaseHold: () => void = () => {};
      let holding = false;
      const u = await startUpstream((req, res) => {
        if (req.url === '/hold') {
          holding = true;
          releaseHold = () => res.end('held');
        } else res.end('ok');
      });
      const g = await startGateway({ server: { upstream_keepalive_pool_size: 1 }, services: [{ name: 'q', url: u.url, routes: [{ name: 'q', paths: ['/q'] }] }] });
      try {
        const held = request(g.url + '/q/hold').then((r) => r.body.text());
        for (let i = 0; i < 200 && !holding; i++) await new Promise((ok) => setTimeout(ok, 5));
        assert.ok(holding);
        // The only upstream connection is busy: this one waits in the pool; its client gives up.
        const queued = httpRequest({ host: '127.0.0.1', port: g.port, path: '/q/queued', agent: false });
        queued.on('error', () => {});
        queued.end();
        await new Promise((ok) => setTimeout(ok, 100));
        queued.destroy();
        await new Promise((ok) => setTimeout(ok, 50));
        releaseHold();
        assert.equal(await held, 'held');
        await new Promise((ok) => setTimeout(ok, 200));
        assert.deepEqual(u.requests.map((r) => r.url), ['/hold']);
        const rec = g.accessLog.find((r) => r.path === '/q/queued');
        assert.ok(rec, 'no access-log record for the abandoned request');
        assert.equal(rec.error, 'PALISADE_ERR_CLIENT_CLOSED');
        assert.equal(rec.status, 499, "nothing was answered: nginx's 499 (client closed request), not node's default 200");
        // The pool connection is free again.
        const r = await send(g.port, '/q/after');
        assert.equal(r.body, 'ok');
      } finally {
        await g.close();
        await u.close();
      }
    });
  });
});
