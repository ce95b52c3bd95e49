/**
 * Upstream failures, black-box: refused connections, timeouts (connect, read),
 * resets in the middle of a response, and retries — what the client sees and
 * what the access log records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

/** A port on 127.0.0.1 where nothing listens any more. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

/**
 * A port whose SYNs go unanswered, so connecting hangs until the connect
 * timeout: a listener (backlog 1) in a worker whose event loop is blocked, so
 * it never accepts, with its accept queue filled up. (The usual 10.255.255.1
 * trick depends on the network: here outbound connections may be intercepted
 * and answered.)
 */
async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const srv = require('node:net').createServer();
     srv.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(srv.address().port);
       Atomics.wait(new Int32Array(workerData), 0, 0);
     });`,
    { eval: true, workerData: flag },
  );
  const [port] = (await once(worker, 'message')) as [number];
  const fillers: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await delay(100);
  // Precondition: a new connection really hangs.
  const probe = connect(port, '127.0.0.1');
  probe.on('error', () => {});
  await delay(150);
  assert.equal(probe.connecting, true, 'blackhole precondition: connect should hang');
  probe.destroy();
  return {
    port,
    async close() {
      for (const s of fillers) s.destroy();
      const view = new Int32Array(flag);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
      await worker.terminate();
    },
  };
}

async function call(url: string, opts: Parameters<typeof request>[1] = {}) {
  const t0 = performance.now();
  const r = await request(url, opts);
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text), ms: performance.now() - t0 };
}

describe('upstream failures', () => {
  let live: TestUpstream;
  let slow: TestUpstream;
  let resets: TestUpstream;
  let dead: number[];
  let hole: Awaited<ReturnType<typeof blackhole>>;
  let gw: TestGateway;

  function recordOf(a: { headers: Record<string, unknown> }) {
    const rec = gw.accessLog.find((r) => r.request_id === a.headers['x-request-id']);
    assert.ok(rec, 'no access-log record');
    return rec as Record<string, any>;
  }

  before(async () => {
    live = await startUpstream((req, res) => res.end(`live ${req.method} ${req.url}`));
    slow = await startUpstream((req, res) => {
      if (req.url === '/stall-body') {
        res.writeHead(200, { 'content-length': '10000' });
        res.write('x'.repeat(100));
        return; // never finishes
      }
      setTimeout(() => res.end('late'), 3000).unref();
    });
    resets = await startUpstream((req, res) => {
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' }); // chunked
        res.write('part one;');
      } else {
        res.writeHead(200, { 'content-length': '100000', 'content-type': 'text/plain' });
        res.write('y'.repeat(1000));
      }
      setTimeout(() => res.socket?.destroy(), 50);
    });
    dead = [await closedPort(), await closedPort(), await closedPort()];
    hole = await blackhole();
    gw = await startGateway({
      upstreams: [
        { name: 'half-dead', targets: [{ target: `127.0.0.1:${dead[0]}` }, { target: `127.0.0.1:${live.port}` }] },
        { name: 'all-dead', targets: dead.map((p) => ({ target: `127.0.0.1:${p}` })) },
      ],
      services: [
        { name: 'refused', url: `http://127.0.0.1:${dead[0]}`, retries: 2, routes: [{ name: 'refused', paths: ['/refused'] }] },
        { name: 'slow', url: slow.url, read_timeout: 250, retries: 0, routes: [{ name: 'slow', paths: ['/slow'] }] },
        { name: 'hole', url: `http://127.0.0.1:${hole.port}`, connect_timeout: 300, retries: 0, routes: [{ name: 'hole', paths: ['/hole'] }] },
        { name: 'resets', url: resets.url, routes: [{ name: 'resets', paths: ['/resets'] }] },
        { name: 'retry', host: 'half-dead', retries: 1, routes: [{ name: 'retry', paths: ['/retry'] }] },
        { name: 'no-retry', host: 'half-dead', retries: 0, routes: [{ name: 'no-retry', paths: ['/no-retry'] }] },
        { name: 'all-dead', host: 'all-dead', retries: 2, routes: [{ name: 'all-dead', paths: ['/all-dead'] }] },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await hole?.close();
    await live?.close();
    await slow?.close();
    await resets?.close();
  });

  test('connection refused → 502 with Kong message, after the configured retries', async () => {
    const r = await call(gw.url + '/refused');
    assert.equal(r.status, 502);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const body = r.json();
    assert.equal(body.message, 'An invalid response was received from the upstream server');
    assert.equal(body.request_id, r.headers['x-request-id']);
    const rec = recordOf(r);
    assert.equal(rec.status, 502);
    assert.equal(rec.error, 'PALISADE_ERR_UPSTREAM_CONNECT');
    assert.equal(rec.tries, 3); // 1 + retries: 2
  });

  test('an upstream slower than read_timeout → 504 with Kong message, on time', async () => {
    const r = await call(gw.url + '/slow');
    assert.equal(r.status, 504);
    assert.equal(r.json().message, 'The upstream server is timed out');
    // undici's timers have a resolution of about a second; the upstream would answer (200) at 3 s.
    assert.ok(r.ms >= 200 && r.ms < 2800, `answered after ${r.ms} ms`);
    const rec = recordOf(r);
    assert.equal(rec.error, 'PALISADE_ERR_UPSTREAM_TIMEOUT');
    assert.equal(rec.tries, 1);
  });

  test('connect_timeout to an address that never answers → 504', async () => {
    const r = await call(gw.url + '/hole');
    assert.equal(r.status, 504);
    assert.equal(r.json().message, 'The upstream server is timed out');
    // Without connect_timeout the connection would hang for the default 60 s.
    assert.ok(r.ms >= 250 && r.ms < 3000, `answered after ${r.ms} ms`);
    assert.equal(recordOf(r).error, 'PALISADE_ERR_UPSTREAM_TIMEOUT');
  });

  test('an upstream reset mid-response closes the client connection: status kept, body incomplete', async () => {
    for (const path of ['/resets/fixed', '/resets/chunked']) {
      const r = await request(gw.url + path);
      assert.equal(r.statusCode, 200, path);
      await assert.rejects(r.body.text(), path);
      const rec = recordOf(r);
      assert.equal(rec.status, 200);
      assert.equal(rec.error, 'PALISADE_ERR_UPSTREAM_RESET');
    }
    // The gateway is fine afterwards.
    assert.equal((await call(gw.url + '/retry/after-reset')).status, 200);
  });

  test('a body that stalls beyond read_timeout closes the client connection', async () => {
    const t0 = performance.now();
    const r = await request(gw.url + '/slow/stall-body');
    assert.equal(r.statusCode, 200);
    await assert.rejects(r.body.text());
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `closed after ${ms} ms`);
  });

  test('GET is retried on a connect failure with the next target; tries are logged', async () => {
    const before = gw.accessLog.length;
    for (let i = 0; i < 6; i++) {
      const r = await call(gw.url + `/retry/${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.text, `live GET /${i}`);
    }
    const recs = gw.accessLog.slice(before);
    assert.equal(recs.length, 6);
    const retried = recs.filter((r) => r.tries === 2);
    assert.ok(retried.length >= 2, `retried: ${retried.length}`);
    assert.ok(recs.every((r) => r.tries === 1 || r.tries === 2));
    assert.ok(recs.every((r) => r.upstream === `127.0.0.1:${live.port}`));
  });

  test('retries: 0 → the dead target answers 502 (no retry)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(gw.url + '/no-retry')).status);
    assert.equal(statuses.filter((s) => s === 502).length, 2, String(statuses));
    assert.equal(statuses.filter((s) => s === 200).length, 2, String(statuses));
  });

  test('POST with a body is not retried, even with retries configured', async () => {
    const seenBefore = live.requests.length;
    const before = gw.accessLog.length;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(gw.url + '/retry/post', { method: 'POST', body: `payload ${i}` })).status);
    assert.equal(statuses.filter((s) => s === 502).length, 2, String(statuses));
    assert.equal(statuses.filter((s) => s === 200).length, 2, String(statuses));
    assert.equal(live.requests.length - seenBefore, 2);
    const failed = gw.accessLog.slice(before).filter((r) => r.status === 502);
    assert.ok(failed.every((r) => r.tries === 1 && r.upstream === `127.0.0.1:${dead[0]}`));
  });

  test('retries are bounded: all targets dead → 502 after 1 + retries tries', async () => {
    const r = await call(gw.url + '/all-dead');
    assert.equal(r.status, 502);
    assert.equal(recordOf(r).tries, 3);
  });
});
