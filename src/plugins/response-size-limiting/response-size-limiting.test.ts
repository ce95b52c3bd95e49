import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { eventually } from '../../../test/helpers/process.ts';

describe('response-size-limiting', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    // /declared/N answers N bytes with Content-Length; /chunked/N streams N bytes in 1 KiB chunks without one;
    // /claims/N declares N bytes and sends one (the limit is decided on the head).
    upstream = await startUpstream((req, res) => {
      const [, kind, n] = /^\/(\w+)\/(\d+)/.exec(req.url!)!;
      const size = Number(n);
      if (kind === 'notmodified') {
        res.writeHead(304, { 'content-length': size });
        return void res.end();
      }
      if (kind === 'claims') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': size });
        return void res.write('c');
      }
      if (kind === 'declared') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': size });
        return void res.end('d'.repeat(size));
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      let left = size;
      const next = () => {
        if (left <= 0) return void res.end();
        const n = Math.min(1024, left);
        left -= n;
        res.write('c'.repeat(n), () => setTimeout(next, 1));
      };
      next();
    });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            { name: 'limited', paths: ['/'], plugins: [{ name: 'response-size-limiting', config: { allowed_payload_size: 4, size_unit: 'kilobytes' } }] },
            { name: 'default', paths: ['/default'], strip_path: true, plugins: [{ name: 'response-size-limiting' }] },
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  test('a declared Content-Length at the limit passes, above it is a 502 before any byte is sent', async () => {
    const ok = await request(`${gw.url}/declared/4096`);
    assert.equal(ok.statusCode, 200);
    assert.equal((await ok.body.text()).length, 4096);
    const over = await request(`${gw.url}/declared/4097`);
    assert.equal(over.statusCode, 502);
    const body = JSON.parse(await over.body.text());
    assert.equal(body.message, 'Response size limit exceeded');
  });

  test('HEAD and 304 answers carry no body: a large declared Content-Length is not refused', async () => {
    const head = await request(`${gw.url}/declared/10000`, { method: 'HEAD' });
    await head.body.dump();
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], '10000');
    const notModified = await request(`${gw.url}/notmodified/10000`);
    await notModified.body.dump();
    assert.equal(notModified.statusCode, 304);
  });

  test('a refusal is recorded as the plugin\'s decision', async () => {
    const before = gw.accessLog.length;
    await (await request(`${gw.url}/declared/5000`)).body.dump();
    await eventually(() => gw.accessLog.length > before);
    assert.deepEqual(gw.accessLog.at(-1)!.decisions, [{ plugin: 'response-size-limiting', outcome: 'deny', reason: 'Response size limit exceeded', status: 502 }]);
  });

  test('a streamed body under the limit passes whole', async () => {
    const r = await request(`${gw.url}/chunked/4000`);
    assert.equal(r.statusCode, 200);
    assert.equal((await r.body.text()).length, 4000);
  });

  test('a streamed body over the limit is cut: the client never gets a complete response', async () => {
    const r = await request(`${gw.url}/chunked/20000`);
    assert.equal(r.statusCode, 200);
    await assert.rejects(r.body.text(), 'the response must end in an error, not look complete');
  });

  test('default limit is 128 megabytes', async () => {
    const r = await request(`${gw.url}/default/declared/100000`);
    assert.equal(r.statusCode, 200);
    assert.equal((await r.body.text()).length, 100000);
    const over = await request(`${gw.url}/default/claims/${128 * 1024 * 1024 + 1}`);
    assert.equal(over.statusCode, 502, 'one byte over 128 MiB declared');
    await over.body.dump();
    const at = await request(`${gw.url}/default/claims/${128 * 1024 * 1024}`);
    assert.equal(at.statusCode, 200, 'exactly 128 MiB declared');
    at.body.destroy();
  });
});
