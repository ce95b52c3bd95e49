import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

describe('request-termination', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'request-termination', config }] });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('not-found', { status_code: 404 }),
            route('teapot', { status_code: 418 }),
            route('message', { status_code: 403, message: 'So long and thanks for all the fish!' }),
            route('ok-message', { status_code: 200, message: 'maintenance done' }),
            route('raw', { status_code: 451, body: '<h1>Gone fishing</h1>', content_type: 'text/html; charset=utf-8' }),
            route('raw-default-type', { status_code: 200, body: '{"ok":true}' }),
            route('echo', { echo: true, status_code: 200 }),
            route('trigger', { trigger: 'X-Debug-Me', status_code: 410, message: 'triggered' }),
            route('echo-trigger', { echo: true, trigger: 'debug' }),
            route('proto-trigger', { trigger: '__proto__', status_code: 410 }),
            route('constructor-trigger', { trigger: 'Constructor', status_code: 410 }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { method: method as 'GET', headers });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers as IncomingHttpHeaders, text, reached: upstream.requests.length > before };
  }

  test('defaults: 503 with Kong\'s "Service unavailable" message, upstream untouched', async () => {
    const r = await call('/default');
    assert.equal(r.status, 503);
    assert.equal(r.reached, false);
    const body = JSON.parse(r.text);
    assert.equal(body.message, 'Service unavailable');
    assert.match(String(r.headers['content-type']), /json/);
  });

  test("Kong's default message per status, none for other statuses", async () => {
    const nf = await call('/not-found');
    assert.equal(nf.status, 404);
    assert.equal(JSON.parse(nf.text).message, 'Not found');
    const tea = await call('/teapot');
    assert.equal(tea.status, 418);
    assert.equal(tea.text, '', 'Kong sends no body when it has no message for the status');
    assert.equal(tea.reached, false);
  });

  test('message: {"message": …} (in a problem document for errors)', async () => {
    const r = await call('/message');
    assert.equal(r.status, 403);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const problem = JSON.parse(r.text);
    assert.equal(problem.message, 'So long and thanks for all the fish!');
    assert.equal(problem.status, 403);
    const ok = await call('/ok-message');
    assert.equal(ok.status, 200);
    assert.equal(ok.reached, false);
    assert.equal(ok.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(ok.text), { message: 'maintenance done' });
  });

  test('body + content_type are sent raw', async () => {
    const r = await call('/raw');
    assert.equal(r.status, 451);
    assert.equal(r.text, '<h1>Gone fishing</h1>');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    const d = await call('/raw-default-type');
    assert.equal(d.text, '{"ok":true}');
    assert.equal(d.headers['content-type'], 'application/json; charset=utf-8');
  });

  test('echo returns the request as the gateway saw it', async () => {
    const r = await call('/echo/some/path?a=1&b&c=1&c=2&sp=x+y', { 'x-test': 'hello' }, 'PUT');
    assert.equal(r.status, 200);
    assert.equal(r.reached, false);
    const body = JSON.parse(r.text);
    assert.equal(body.message, undefined, 'no default message for 200');
    assert.equal(body.request.method, 'PUT');
    assert.equal(body.request.path, '/echo/some/path');
    assert.equal(body.request.scheme, 'http');
    assert.equal(body.request.port, gw.port);
    assert.equal(body.request.headers['x-test'], 'hello');
    assert.deepEqual(body.request.query, { a: '1', b: true, c: ['1', '2'], sp: 'x y' });
    assert.equal(body.matched_route.name, 'echo');
    assert.equal(body.matched_service.name, 'svc');
    assert.equal(typeof body.kong.node_id, 'string');
    assert.equal(typeof body.kong.worker_pid, 'number');
  });

  test('trigger: acts only when the header or query argument is present', async () => {
    const pass = await call('/trigger');
    assert.equal(pass.status, 200);
    assert.equal(pass.reached, true, 'without the trigger the request is proxied');
    const byHeader = await call('/trigger', { 'x-debug-me': '1' });
    assert.equal(byHeader.status, 410);
    assert.equal(JSON.parse(byHeader.text).message, 'triggered');
    assert.equal(byHeader.reached, false);
    const byQuery = await call('/trigger?X-Debug-Me');
    assert.equal(byQuery.status, 410);
    const wrongCase = await call('/trigger?x-debug-me=1');
    assert.equal(wrongCase.status, 200, 'query names are case-sensitive, as in Kong');
  });

  test('trigger: one named __proto__ does not fire for every request (node drops such a request header; the query argument still triggers)', async () => {
    const pass = await call('/proto-trigger');
    assert.equal(pass.status, 200, 'without the trigger the request is proxied');
    assert.equal((await call('/proto-trigger?__proto__')).status, 410);
  });

  test('trigger: one named like an inherited property (Constructor) fires only when the header is sent', async () => {
    assert.equal((await call('/constructor-trigger')).status, 200, 'without the header the request is proxied');
    assert.equal((await call('/constructor-trigger', { constructor: '1' })).status, 410);
  });

  test('echo with trigger: debug live traffic without disturbing it', async () => {
    const normal = await call('/echo-trigger/x');
    assert.equal(normal.status, 200);
    assert.equal(normal.reached, true);
    const debug = await call('/echo-trigger/x?debug=1');
    assert.equal(debug.status, 503);
    const body = JSON.parse(debug.text);
    assert.equal(body.message, 'Service unavailable');
    assert.deepEqual(body.request.query, { debug: '1' });
  });

  test("invalid configs are refused with Kong's messages, naming the fields", async () => {
    const withConfig = (config: object) => ({
      _format_version: '3.0',
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'request-termination', config }] }] }],
    });
    const says = (text: string | RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const all = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(all, typeof text === 'string' ? new RegExp(text) : text, all);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ message: 'a', body: 'b' })), says('message cannot be used with content_type or body'));
    await assert.rejects(startGateway(withConfig({ content_type: 'text/plain' })), says('content_type requires a body'));
    await assert.rejects(startGateway(withConfig({ echo: true, body: 'x' })), says('echo cannot be used with content_type and body'));
    await assert.rejects(startGateway(withConfig({ status_code: 600 })), says('status_code'));
    await assert.rejects(startGateway(withConfig({ trigger: 'not a header' })), says('trigger'));
    await assert.rejects(startGateway(withConfig({ mesage: 'typo' })), says('mesage'));
  });
});
