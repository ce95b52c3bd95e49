import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('correlation-id', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object, more: object[] = []) => ({
      name,
      paths: [`/${name}`],
      plugins: [{ name: 'correlation-id', config }, ...more],
    });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('uuid', { generator: 'uuid', header_name: 'X-Correlation-ID', echo_downstream: true }),
            route('counter', { generator: 'uuid#counter', header_name: 'X-Counter' }),
            route('tracker', { generator: 'tracker', header_name: 'X-Tracker', echo_downstream: true }),
            route('proto', { generator: 'uuid', header_name: '__proto__', echo_downstream: true }),
            route('terminated', { generator: 'uuid', header_name: 'X-Correlation-ID', echo_downstream: true }, [
              { name: 'request-termination', config: {} },
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

  /** Send a request; return the response and the headers the upstream saw (null when it saw none). */
  async function call(path: string, headers: Record<string, string> = {}) {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { headers });
    await r.body.text();
    const seen: IncomingHttpHeaders | null = upstream.requests.length > before ? upstream.requests.at(-1)!.headers : null;
    return { status: r.statusCode, headers: r.headers as IncomingHttpHeaders, seen };
  }

  test('a header named __proto__ is generated and echoed downstream like any other', async () => {
    const r = await call('/proto');
    assert.equal(r.status, 200);
    assert.ok(Object.hasOwn(r.headers, '__proto__'), 'echoed downstream');
    assert.match(String(r.headers['__proto__']), UUID);
  });

  test('defaults: Kong-Request-ID generated with uuid#counter, sent upstream, not echoed', async () => {
    const a = await call('/default');
    const b = await call('/default');
    assert.equal(a.status, 200);
    const ida = String(a.seen!['kong-request-id']);
    const idb = String(b.seen!['kong-request-id']);
    assert.match(ida, /^[0-9a-f-]{36}#\d+$/);
    assert.notEqual(ida, idb);
    assert.equal(a.headers['kong-request-id'], undefined, 'echo_downstream defaults to false');
  });

  test('uuid generator: a fresh v4 UUID per request, echoed when echo_downstream', async () => {
    const a = await call('/uuid');
    const b = await call('/uuid');
    const id = a.seen!['x-correlation-id'] as string;
    assert.match(id, UUID);
    assert.notEqual(id, b.seen!['x-correlation-id']);
    assert.equal(a.headers['x-correlation-id'], id, 'the client gets the id the upstream got');
  });

  test('uuid#counter generator: one UUID per worker, counter increments', async () => {
    const a = String((await call('/counter')).seen!['x-counter']);
    const b = String((await call('/counter')).seen!['x-counter']);
    const [ua, ca] = a.split('#');
    const [ub, cb] = b.split('#');
    assert.match(ua!, UUID);
    assert.equal(ua, ub);
    assert.equal(Number(cb), Number(ca) + 1);
  });

  test('tracker generator: address-port-pid-connection-requests-time', async () => {
    const r = await call('/tracker');
    const id = String(r.seen!['x-tracker']);
    assert.match(id, /^.+-\d+-\d+-\d+-\d+-\d+\.\d{3}$/);
    const parts = id.split('-');
    assert.equal(Number(parts.at(-5)), gw.port, 'the server port');
    assert.ok(Math.abs(Number(parts.at(-1)) - Date.now() / 1000) < 60, 'the time in seconds with milliseconds');
    assert.equal(r.headers['x-tracker'], id);
  });

  test('an incoming id is kept, not replaced, and echoed as is', async () => {
    const r = await call('/uuid', { 'X-Correlation-ID': 'client-chosen-42' });
    assert.equal(r.seen!['x-correlation-id'], 'client-chosen-42');
    assert.equal(r.headers['x-correlation-id'], 'client-chosen-42');
    const d = await call('/default', { 'Kong-Request-ID': 'abc' });
    assert.equal(d.seen!['kong-request-id'], 'abc');
  });

  test('an empty incoming id is replaced by a generated one', async () => {
    const r = await call('/uuid', { 'X-Correlation-ID': '' });
    assert.match(String(r.seen!['x-correlation-id']), UUID);
    assert.equal(r.headers['x-correlation-id'], r.seen!['x-correlation-id']);
  });

  test('echoed on responses the gateway generated itself', async () => {
    const r = await call('/terminated');
    assert.equal(r.status, 503);
    assert.equal(r.seen, null, 'request-termination answered');
    assert.match(String(r.headers['x-correlation-id']), UUID);
    const kept = await call('/terminated', { 'x-correlation-id': 'mine' });
    assert.equal(kept.headers['x-correlation-id'], 'mine');
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (config: object) => ({
      _format_version: '3.0',
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'correlation-id', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ generator: 'snowflake' })), names('generator'));
    await assert.rejects(startGateway(withConfig({ header_name: 'bad header' })), names('header_name'));
    await assert.rejects(startGateway(withConfig({ echo_downstream: 'yes' })), names('echo_downstream'));
  });
});
