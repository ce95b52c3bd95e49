import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

const SPEC_FILE = fileURLToPath(new URL('../../../test/fixtures/openapi/pets.yaml', import.meta.url));

/** What the upstream answers per request path (after the route prefix is stripped). */
const ANSWERS: Record<string, { status: number; headers: Record<string, string>; body: string }> = {
  '/pets/1': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': '10' }, body: JSON.stringify({ id: 1, name: 'Rex' }) },
  '/pets/2': { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'NoId', extra: 'x' }) },
  '/pets/3': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': 'many' }, body: JSON.stringify({ id: 3, name: 'Tom' }) },
  '/pets/4': { status: 500, headers: { 'content-type': 'application/json' }, body: '{}' },
  '/pets/5': { status: 404, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify({ title: 'gone' }) },
  '/pets/6': { status: 200, headers: { 'content-type': 'text/html', 'x-rate-limit': '1' }, body: '<html></html>' },
  '/pets/7': { status: 200, headers: { 'content-type': 'application/json', 'x-rate-limit': '1' }, body: '{"id":7,' },
  '/pets': { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify([{ id: 1, name: 'a' }, { id: 'two', name: 'b' }]) },
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
          routes: [route('block', {}), route('kong', { response_validation_failure_status: 406, verbose_response: true }), route('logonly', { notify_only_response_body_validation_failure: true })],
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

  test('blocking: a body or header that breaks the document becomes a 502 problem listing every violation', async () => {
    const r = await get('/block/pets/2');
    assert.equal(r.status, 502);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    const p = r.json();
    assert.equal(p.message, "response doesn't conform to schema");
    const where = p.errors.map((e: { in: string; name?: string; pointer: string }) => `${e.in} ${e.name ?? ''} ${e.pointer}`);
    assert.ok(where.includes('header X-Rate-Limit '), JSON.stringify(p.errors));
    assert.ok(where.includes('body  /id'), JSON.stringify(p.errors));
    assert.ok(where.includes('body  /extra'), JSON.stringify(p.errors));
    assert.ok(!r.body.includes('NoId'), 'the upstream body is not passed on');
    const h = (await get('/block/pets/3')).json();
    assert.ok(h.errors.some((e: { in: string; name: string; message: string }) => e.in === 'header' && e.name === 'X-Rate-Limit' && /integer/.test(e.message)));
    const arr = await request(gw.port, '/block/pets');
    assert.equal(arr.status, 502);
    assert.ok(arr.json().errors.some((e: { pointer: string }) => e.pointer === '/1/id'));
  });

  test('an undocumented status, a wrong Content-Type and invalid JSON are violations', async () => {
    const s = (await get('/block/pets/4')).json();
    assert.ok(s.errors.some((e: { in: string; message: string }) => e.in === 'status' && /status 500 is not documented/.test(e.message)));
    const ct = (await get('/block/pets/6')).json();
    assert.ok(ct.errors.some((e: { in: string }) => e.in === 'content-type'));
    const bad = (await get('/block/pets/7')).json();
    assert.ok(bad.errors.some((e: { in: string; message: string }) => e.in === 'body' && /not valid JSON/.test(e.message)));
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

  test('requests are still validated (400) and their refusal is not response-validated', async () => {
    const r = await request(gw.port, '/block/pets/abc', { headers: { 'x-request-tag': 'abc' } });
    assert.equal(r.status, 400);
  });
});
