import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * A request over node:http: `chunks` are written one by one (chunked transfer
 * encoding unless a content-length header is given); with `declareOnly` the
 * headers are flushed and the body is never sent.
 */
function raw(gw: TestGateway, path: string, opts: { method?: string; headers?: Record<string, string | number>; chunks?: string[]; declareOnly?: boolean }): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.url}${path}`, { method: opts.method ?? 'POST', headers: opts.headers ?? {}, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The gateway may answer and close before the whole body was written.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    if (opts.declareOnly) {
      req.flushHeaders();
      return;
    }
    const chunks = opts.chunks ?? [];
    let i = 0;
    const next = () => {
      if (req.destroyed) return;
      if (i >= chunks.length) return void req.end();
      req.write(chunks[i++]!, () => setTimeout(next, 5));
    };
    next();
  });
}

describe('request-size-limiting', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'request-size-limiting', config }] });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('bytes', { allowed_payload_size: 10, size_unit: 'bytes' }),
            route('kb', { allowed_payload_size: 1, size_unit: 'kilobytes' }),
            route('mb', { allowed_payload_size: 1 }),
            route('required', { allowed_payload_size: 10, size_unit: 'bytes', require_content_length: true }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function post(path: string, body: string, headers: Record<string, string> = {}) {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { method: 'POST', body, headers });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, text, reached: upstream.requests.length > before };
  }

  test('a body at the limit passes, one byte more is refused with 413 before the upstream', async () => {
    const ok = await post('/bytes', '0123456789');
    assert.equal(ok.status, 200);
    assert.equal(upstream.requests.at(-1)!.body, '0123456789');
    const over = await post('/bytes', '0123456789X');
    assert.equal(over.status, 413);
    assert.equal(over.reached, false);
    assert.equal(JSON.parse(over.text).message, 'Request size limit exceeded');
  });

  test('kilobytes are 1024 bytes', async () => {
    assert.equal((await post('/kb', 'a'.repeat(1024))).status, 200);
    const over = await post('/kb', 'a'.repeat(1025));
    assert.equal(over.status, 413);
    assert.equal(over.reached, false);
  });

  test('megabytes (the default unit) are 2^20 bytes', async () => {
    assert.equal((await post('/mb', 'm'.repeat(1048576))).status, 200);
    const over = await post('/mb', 'm'.repeat(1048577));
    assert.equal(over.status, 413);
    assert.equal(over.reached, false);
  });

  test('default: 128 megabytes, judged on the declared Content-Length', async () => {
    const limit = 128 * 1024 * 1024;
    const before = upstream.requests.length;
    const r = await raw(gw, '/default', { headers: { 'content-length': limit + 1 }, declareOnly: true });
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.text).message, 'Request size limit exceeded');
    assert.equal(upstream.requests.length, before);
    assert.equal((await post('/default', 'x'.repeat(100_000))).status, 200);
  });

  test('Expect: 100-continue over the limit gets 417, as Kong answers', async () => {
    const r = await raw(gw, '/bytes', { headers: { 'content-length': 50, expect: '100-continue' }, declareOnly: true });
    assert.equal(r.status, 417);
    assert.equal(JSON.parse(r.text).message, 'Request size limit exceeded');
  });

  test('a chunked body under the limit streams through whole', async () => {
    const r = await raw(gw, '/bytes', { chunks: ['abc', 'def', 'ghij'] });
    assert.equal(r.status, 200);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body, 'abcdefghij');
    assert.equal(seen.headers['content-length'], undefined);
  });

  test('a chunked body over the limit is cut off with 413', async () => {
    const r = await raw(gw, '/bytes', { chunks: ['abcdef', 'ghijkl', 'mnopqr', 'stuvwx'] });
    assert.equal(r.status, 413);
    assert.ok(!upstream.requests.some((q) => q.body.includes('mnopqr')), 'the upstream never got the whole body');
  });

  test('require_content_length: 411 without Content-Length, chunked and declared bodies allowed', async () => {
    const before = upstream.requests.length;
    const get = await request(gw.url + '/required', { method: 'GET' });
    const text = await get.body.text();
    assert.equal(get.statusCode, 411);
    assert.equal(JSON.parse(text).message, 'A valid Content-Length header is required');
    assert.equal(upstream.requests.length, before);
    assert.equal((await post('/required', 'small')).status, 200);
    assert.equal((await raw(gw, '/required', { chunks: ['ab', 'cd'] })).status, 200);
    assert.equal((await raw(gw, '/required', { chunks: ['abcdefgh', 'ijklmnop'] })).status, 413);
  });

  test('without require_content_length a GET without a body passes', async () => {
    const r = await request(gw.url + '/bytes', { method: 'GET' });
    await r.body.text();
    assert.equal(r.statusCode, 200);
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (config: object) => ({
      _format_version: '3.0',
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'request-size-limiting', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ size_unit: 'gigabytes' })), names('size_unit'));
    await assert.rejects(startGateway(withConfig({ allowed_payload_size: 1.5 })), names('allowed_payload_size'));
    await assert.rejects(startGateway(withConfig({ require_content_length: 'yes' })), names('require_content_length'));
  });
});
