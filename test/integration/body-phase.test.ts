/**
 * The core's response handling around plugins: the body phase (held bodies,
 * replacement, overflow, event streams), response-phase replies and errors,
 * and clients that leave while a handler is still running. The handlers come
 * from a test plugin: response-size-limiting's definition with its create()
 * replaced in this test process only.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import type { PdkContext, PluginHandlers, Reply } from '../../src/pdk/index.ts';
import { getPlugin } from '../../src/plugins/registry.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';
import { eventually } from '../helpers/process.ts';

/** What the test plugin does; each test sets what it needs. */
let handlers: PluginHandlers = {};
const def = getPlugin('response-size-limiting')!;
(def as { create: unknown }).create = () => ({
  response: (ctx: PdkContext) => handlers.response?.(ctx),
  body: (ctx: PdkContext, body: Buffer | null) => handlers.body?.(ctx, body),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('body phase and response handling', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    // /json: a JSON body with Content-Length; /chunked/N: N bytes in 1 KiB chunks; /events: an event stream that stays open 300 ms.
    upstream = await startUpstream((req, res) => {
      if (req.url === '/json') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11, 'x-upstream': 'yes' });
        return void res.end('{"a":"abc"}');
      }
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        return void setTimeout(() => res.end('data: last\n\n'), 300);
      }
      const size = Number(/\/chunked\/(\d+)/.exec(req.url!)?.[1] ?? 0);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' });
      let left = size;
      const next = () => {
        if (left <= 0) return void res.end();
        const n = Math.min(1024, left);
        left -= n;
        res.write('c'.repeat(n), () => setImmediate(next));
      };
      next();
    });
    gw = await startGateway({
      server: { response_buffer_limit: 4096 },
      services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'response-size-limiting' }] }] }],
    });
  });

  beforeEach(() => {
    handlers = {};
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function get(path: string) {
    const r = await request(gw.url + path);
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  }

  test('the body handler gets the whole body; setBody replaces it and Content-Length follows', async () => {
    let seen = '';
    handlers.body = (ctx, body) => {
      seen = body!.toString();
      ctx.response.setBody(seen.toUpperCase() + '!');
    };
    const r = await get('/json');
    assert.equal(seen, '{"a":"abc"}');
    assert.equal(r.text, '{"A":"ABC"}!');
    assert.equal(r.headers['content-length'], '12');
    assert.equal(r.headers['x-upstream'], 'yes');
  });

  test('a chunked upstream body is held whole and sent with a Content-Length', async () => {
    let size = -1;
    handlers.body = (_ctx, body) => void (size = body!.length);
    const r = await get('/chunked/3000');
    assert.equal(size, 3000);
    assert.equal(r.text.length, 3000);
    assert.equal(r.headers['content-length'], '3000');
  });

  test('a Reply from an async body handler replaces the upstream response, none of its headers kept', async () => {
    handlers.body = async (ctx) => {
      await sleep(10);
      return ctx.reject(502, 'invalid response');
    };
    const r = await get('/json');
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.text).message, 'invalid response');
    assert.equal(r.headers['x-upstream'], undefined);
  });

  test('a body larger than server.response_buffer_limit reaches the handler as null and is streamed whole', async () => {
    const seen: (number | null)[] = [];
    handlers.body = (_ctx, body) => void seen.push(body === null ? null : body.length);
    const r = await get('/chunked/20000');
    assert.deepEqual(seen, [null]);
    assert.equal(r.status, 200);
    assert.equal(r.text.length, 20000);
  });

  test('an event stream is never held: the handler gets null and the first event arrives before the stream ends', async () => {
    const seen: (Buffer | null)[] = [];
    handlers.body = (_ctx, body) => void seen.push(body);
    const t0 = Date.now();
    const first = await new Promise<number>((resolve, reject) => {
      http.get(gw.url + '/events', (res) => {
        res.once('data', () => resolve(Date.now() - t0));
        res.resume();
      }).on('error', reject);
    });
    assert.ok(first < 250, `first event after ${first} ms (the upstream ends the stream at 300 ms)`);
    assert.deepEqual(seen, [null]);
  });

  test('a Reply from the response phase replaces the upstream response before anything is sent', async () => {
    handlers.response = (ctx) => (ctx.response.source === 'upstream' ? ctx.reject(429, 'quota used up') : undefined);
    const r = await get('/json');
    assert.equal(r.status, 429);
    assert.equal(JSON.parse(r.text).message, 'quota used up');
    assert.equal(r.headers['x-upstream'], undefined);
  });

  test('a response handler that throws gives a 500 problem document and an error log line, not a reset connection', async () => {
    handlers.response = (ctx) => {
      if (ctx.response.source === 'upstream') throw new Error('boom in response phase');
    };
    const r = await get('/json');
    assert.equal(r.status, 500);
    assert.equal(JSON.parse(r.text).message, 'An unexpected error occurred');
    await eventually(() => gw.logs.some((l) => l.msg === 'plugin error' && JSON.stringify(l).includes('boom in response phase')));
  });

  test('a client that leaves while an async handler runs is finished once: one access-log record, the upstream target released', async () => {
    for (const phase of ['response', 'body'] as const) {
      await eventually(() => gw.gateway.inflight === 0); // earlier tests' streams are over
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const wait = async (ctx: PdkContext): Promise<Reply> => {
        await gate;
        return ctx.reject(403, 'late');
      };
      if (phase === 'response') handlers.response = (ctx) => (ctx.response.source === 'upstream' ? wait(ctx) : undefined);
      else handlers.body = (ctx) => wait(ctx);
      const before = gw.accessLog.length;
      const req = http.get(gw.url + (phase === 'body' ? '/chunked/20000' : '/json'));
      req.on('error', () => {});
      await eventually(() => upstream.requests.length > 0 && gw.gateway.inflight > 0);
      await sleep(50);
      req.destroy();
      await sleep(50);
      release();
      await sleep(100);
      assert.equal(gw.accessLog.length - before, 1, `${phase}: exactly one access-log record`);
      const targets = gw.gateway.runtime.services.flatMap((s) => s.balancer.targets);
      assert.deepEqual(targets.map((t) => t.active), targets.map(() => 0), `${phase}: no upstream call left counted as active`);
      handlers = {};
    }
  });
});
