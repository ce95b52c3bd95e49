import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

const SPEC_FILE = fileURLToPath(new URL('../../../test/fixtures/openapi/pets.yaml', import.meta.url));

const json = (v: unknown) => JSON.stringify(v);
const PET = (id: number) => ({ 'content-type': 'application/json', 'x-rate-limit': String(id) });

/** What the upstream answers per request path (after the route prefix is stripped). */
const ANSWERS: Record<string, { status: number; headers: Record<string, string>; body: string | Buffer }> = {
  '/pets/1': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': '10' }, body: JSON.stringify({ id: 1, name: 'Rex' }) },
  '/pets/2': { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'NoId', extra: 'x' }) },
  '/pets/3': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': 'many' }, body: JSON.stringify({ id: 3, name: 'Tom' }) },
  '/pets/4': { status: 500, headers: { 'content-type': 'application/json' }, body: '{}' },
  '/pets/5': { status: 404, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify({ title: 'gone' }) },
  '/pets/6': { status: 200, headers: { 'content-type': 'text/html', 'x-rate-limit': '1' }, body: '<html></html>' },
  '/pets/7': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': '1' }, body: '{"id":7,' },
  '/pets': { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ id: 1, name: 'a' }, { id: 'two', name: 'b' }]) },
  // Compressed answers (Content-Encoding): validated once decoded, sent as they are.
  '/pets/8': { status: 200, headers: { ...PET(8), 'content-encoding': 'gzip' }, body: gzipSync(json({ id: 8, name: 'Gzip' })) },
  '/pets/9': { status: 200, headers: { ...PET(9), 'content-encoding': 'gzip' }, body: gzipSync(json({ name: 'NoId', extra: 'x' })) },
  '/pets/10': { status: 200, headers: { ...PET(10), 'content-encoding': 'br' }, body: brotliCompressSync(json({ id: 10, name: 'Brotli' })) },
  '/pets/11': { status: 200, headers: { ...PET(11), 'content-encoding': 'deflate' }, body: deflateSync(json({ id: 11, name: 'Deflate' })) },
  '/pets/12': { status: 200, headers: { ...PET(12), 'content-encoding': 'gzip' }, body: Buffer.from('not gzip at all') },
  '/pets/13': { status: 200, headers: { ...PET(13), 'content-encoding': 'gzip' }, body: gzipSync(json({ id: 13, name: 'x'.repeat(200_000) })) },
  '/pets/14': { status: 200, headers: { ...PET(14), 'content-encoding': 'compress' }, body: Buffer.from('?') },
  '/pets/15': { status: 200, headers: { ...PET(15), 'content-encoding': 'gzip, br' }, body: brotliCompressSync(gzipSync(json({ id: 15, name: 'Twice' }))) },
};

describe('oas-validation: responses', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const path = req.url!.split('?')[0]!;
      const a = ANSWERS[path] ?? { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
      res.writeHead(a.status, { ...a.headers, 'content-length': Buffer.byteLength(a.body) });
      res.end(a.body);
    });
    const route = (name: string, config: object) => ({
      name,
      paths: [`/${name}`],
      plugins: [{ name: 'oas-validation', config: { api_spec_file: SPEC_FILE, include_base_path: true, custom_base_path: `/${name}`, validate_response_body: true, ...config } }],
    });
    gw = await startGateway({
      services: [
        {
          name: 'pets',
          url: upstream.url,
          routes: [
            route('block', {}),
            route('kong', { response_validation_failure_status: 406, verbose_response: true }),
            route('logonly', { notify_only_response_body_validation_failure: true }),
            route('small', { response_body_max_size: 4096 }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const get = (path: string) => request(gw.port, path, { headers: { 'x-request-tag': 'abc' } });

  test('a conforming response is sent unchanged', async () => {
    const r = await get('/block/pets/1');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { id: 1, name: 'Rex' });
    assert.equal(r.headers['x-rate-limit'], '10');
  });

  /** The violations logged for a request (the answer does not list them). */
  function logged(r: { headers: Record<string, unknown> }): { in: string; name?: string; pointer: string; message: string }[] {
    const line = gw.logs.find((l) => String(l.msg).includes('response does not conform') && l.request_id === r.headers['x-request-id']);
    assert.ok(line, 'a log line for this request');
    return line.violations as { in: string; name?: string; pointer: string; message: string }[];
  }

  test("blocking: a body or header that breaks the document becomes a 502 with Kong's generic message; the violations are logged, not sent", async () => {
    const r = await get('/block/pets/2');
    assert.equal(r.status, 502);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    const p = r.json();
    assert.equal(p.message, "response doesn't conform to schema");
    assert.equal(p.detail, "response doesn't conform to schema");
    assert.equal(p.errors, undefined, 'no violation list for the client');
    for (const secret of ['NoId', 'extra', 'X-Rate-Limit', '/id']) assert.ok(!r.body.includes(secret), `the answer does not mention ${secret}: ${r.body}`);
    const where = logged(r).map((e) => `${e.in} ${e.name ?? ''} ${e.pointer}`);
    assert.ok(where.includes('header X-Rate-Limit '), JSON.stringify(where));
    assert.ok(where.includes('body  /id'), JSON.stringify(where));
    assert.ok(where.includes('body  /extra'), JSON.stringify(where));
    const h = await get('/block/pets/3');
    assert.equal(h.status, 502);
    assert.ok(logged(h).some((e) => e.in === 'header' && e.name === 'X-Rate-Limit' && /integer/.test(e.message)));
    const arr = await request(gw.port, '/block/pets');
    assert.equal(arr.status, 502);
    assert.ok(logged(arr).some((e) => e.pointer === '/1/id'));
  });

  test('an undocumented status, a wrong Content-Type and invalid JSON are violations', async () => {
    const s = await get('/block/pets/4');
    assert.equal(s.status, 502);
    assert.ok(logged(s).some((e) => e.in === 'status' && /status 500 is not documented/.test(e.message)));
    const ct = await get('/block/pets/6');
    assert.ok(logged(ct).some((e) => e.in === 'content-type'));
    const bad = await get('/block/pets/7');
    assert.ok(logged(bad).some((e) => e.in === 'body' && /not valid JSON/.test(e.message)));
  });

  test('a documented error response passes (404 with its own media type)', async () => {
    const r = await get('/block/pets/5');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), { title: 'gone' });
  });

  test("Kong's status (406) and verbose message on request", async () => {
    const r = await get('/kong/pets/2');
    assert.equal(r.status, 406);
    assert.match(r.json().message, /^validation failed: header X-Rate-Limit: is required; body \/extra: is not allowed .*; body \/id: is required$/);
  });

  test('log only: the response is sent unchanged and the violations are logged', async () => {
    const r = await get('/logonly/pets/2');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { name: 'NoId', extra: 'x' });
    const line = gw.logs.find((l) => String(l.msg).includes('response does not conform') && l.request_id === r.headers['x-request-id']);
    assert.ok(line, 'a log line for this request');
    assert.ok(JSON.stringify(line.violations).includes('/extra'));
    assert.ok(!JSON.stringify(line).includes('NoId'), 'values are not logged');
  });

  /** A GET whose body is kept as bytes (the client does not decode it). */
  function raw(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
    return new Promise((ok, fail) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path, headers: { 'x-request-tag': 'abc', 'accept-encoding': 'gzip, deflate, br', connection: 'close' }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      });
      req.on('error', fail);
      req.end();
    });
  }

  test('compressed responses (gzip, br, deflate, gzip then br) are decoded for validation and sent unchanged', async () => {
    for (const [path, decode, name] of [
      ['/block/pets/8', gunzipSync, 'Gzip'],
      ['/block/pets/10', brotliDecompressSync, 'Brotli'],
      ['/block/pets/11', (b: Buffer) => inflateSync(b), 'Deflate'],
      ['/block/pets/15', (b: Buffer) => gunzipSync(brotliDecompressSync(b)), 'Twice'],
    ] as const) {
      const r = await raw(path);
      assert.equal(r.status, 200, `${path}: ${r.body.toString('latin1').slice(0, 200)}`);
      assert.ok(r.headers['content-encoding'], 'still encoded for the client');
      assert.equal(JSON.parse(decode(r.body).toString()).name, name);
    }
    const bad = await raw('/block/pets/9');
    assert.equal(bad.status, 502, 'a compressed body that breaks the document');
    const where = logged(bad).map((e) => `${e.in} ${e.pointer}`);
    assert.ok(where.includes('body /id') && where.includes('body /extra'), JSON.stringify(where));
  });

  test('compressed responses: invalid data and unknown codings are violations; past response_body_max_size once decoded, not validated', async () => {
    const broken = await raw('/block/pets/12');
    assert.equal(broken.status, 502);
    assert.ok(logged(broken).some((e) => e.in === 'body' && /not valid gzip data/.test(e.message)));
    const unknown = await raw('/block/pets/14');
    assert.equal(unknown.status, 502);
    assert.ok(logged(unknown).some((e) => e.in === 'body' && /Content-Encoding 'compress' cannot be decoded/.test(e.message)));
    const big = await raw('/small/pets/13');
    assert.equal(big.status, 200, 'too large to validate once decoded: passed on, like a body above the buffer limit');
    assert.equal(JSON.parse(gunzipSync(big.body).toString()).id, 13);
    assert.ok(gw.logs.some((l) => String(l.msg).includes('larger than response_body_max_size once decoded') && l.request_id === big.headers['x-request-id']));
  });

  test('requests are still validated (400) and their refusal is not response-validated', async () => {
    const r = await request(gw.port, '/block/pets/abc', { headers: { 'x-request-tag': 'abc' } });
    assert.equal(r.status, 400);
  });
});
