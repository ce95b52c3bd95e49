/**
 * Fetching OpenAPI documents (src/openapi/source.ts): the size cap holds while
 * the body streams in (a chunked body without end is not read to the end),
 * conditional fetches, and URLs in errors without their secrets.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fetchSource, NOT_MODIFIED, OpenApiError, redactUrls } from '../../src/openapi/source.ts';

let server: Server;
let base: string;
const DOC = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths: {}\n';

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/endless') {
      // Chunked, no Content-Length, never ends.
      res.writeHead(200, { 'content-type': 'application/yaml' });
      const timer = setInterval(() => res.write(`# ${'x'.repeat(8190)}\n`), 2);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (req.url === '/doc.yaml') {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/yaml', etag: '"v1"', 'last-modified': 'Mon, 23 Nov 2026 10:00:00 GMT' });
      return res.end(DOC);
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('the size cap holds while a chunked body streams in: reading stops there', async () => {
  const started = performance.now();
  await assert.rejects(fetchSource(`${base}/endless`, {}, { maxBytes: 200_000, timeoutMs: 60_000 }), (err: Error) => {
    assert.ok(err instanceof OpenApiError, String(err));
    assert.match(err.message, /the document is larger than 200000 bytes/);
    return true;
  });
  assert.ok(performance.now() - started < 30_000, 'stopped at the cap, long before the timeout');
});

test('a conditional fetch: the validators of the copy, 304 → NOT_MODIFIED', async () => {
  const first = await fetchSource(`${base}/doc.yaml`);
  assert.notEqual(first, NOT_MODIFIED);
  if (first === NOT_MODIFIED) return;
  assert.equal(first.etag, '"v1"');
  assert.equal(first.lastModified, 'Mon, 23 Nov 2026 10:00:00 GMT');
  assert.equal(await fetchSource(`${base}/doc.yaml`, {}, {}, { etag: '"v1"', lastModified: null }), NOT_MODIFIED);
  const changed = await fetchSource(`${base}/doc.yaml`, {}, {}, { etag: '"v0"', lastModified: null });
  assert.notEqual(changed, NOT_MODIFIED, 'another ETag: the document itself');
});

test('errors name the URL without userinfo or query values', async () => {
  await assert.rejects(fetchSource(`http://admin:hunter2@127.0.0.1:1/spec.yaml?access_token=abc123&x=1`, {}, { timeoutMs: 5000 }), (err: Error) => {
    assert.match(err.message, /http:\/\/REDACTED@127\.0\.0\.1:1\/spec\.yaml\?access_token=REDACTED&x=REDACTED/);
    assert.doesNotMatch(err.message, /hunter2|abc123|admin/);
    return true;
  });
  assert.equal(redactUrls('see https://h.example/p?sig=s3cr3t).'), 'see https://h.example/p?sig=REDACTED).');
  assert.equal(redactUrls('no url here'), 'no url here');
});
