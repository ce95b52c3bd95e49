/**
 * Streaming, black-box: bodies far larger than memory budgets pass through the
 * gateway in both directions without being buffered, and a slow reader slows
 * the upstream down instead of filling the gateway's memory. Client, gateway
 * and upstream share this process, so RSS growth bounds all three together.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const RSS_BUDGET = 150 * MiB;

// A full GC now and then, so RSS measures what is still referenced, not garbage V8 has not collected yet
// (1 GiB of 64 KiB socket chunks goes through here); memory the gateway really holds stays counted.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Samples RSS every 25 ms (full GC every 250 ms); `peak()` is the largest growth over the baseline. */
function rssWatch() {
  gc();
  const base = process.memoryUsage().rss;
  let max = base;
  let ticks = 0;
  const timer = setInterval(() => {
    if (++ticks % 10 === 0) gc();
    max = Math.max(max, process.memoryUsage().rss);
  }, 25);
  return {
    peak() {
      clearInterval(timer);
      max = Math.max(max, process.memoryUsage().rss);
      return max - base;
    },
  };
}

/** Writes `total` bytes of a reused 1 MiB chunk, honouring backpressure; stops when `out` is destroyed. */
async function pump(out: NodeJS.WritableStream & { destroyed: boolean }, total: number, onWritten?: (n: number) => void): Promise<void> {
  const chunk = Buffer.alloc(MiB, 0x61);
  let sent = 0;
  while (sent < total && !out.destroyed) {
    const n = Math.min(MiB, total - sent);
    const ok = out.write(n === MiB ? chunk : chunk.subarray(0, n));
    sent += n;
    onWritten?.(sent);
    if (!ok) await new Promise((resume) => (out.once('drain', resume), out.once('close', resume)));
  }
}

interface Upstream {
  port: number;
  server: Server;
  /** Bytes of the last upload received. */
  received: number;
  /** Bytes the last download handed to the socket (write accepted). */
  sent: number;
  /** The last download's connection closed before the response was complete. */
  cut: boolean;
}

async function startStreamingUpstream(): Promise<Upstream> {
  const u: Upstream = { port: 0, server: null as unknown as Server, received: 0, sent: 0, cut: false };
  u.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        u.received = n;
        res.end(String(n));
      });
      return;
    }
    const size = Number(url.searchParams.get('size'));
    u.sent = 0;
    u.cut = false;
    res.on('close', () => (u.cut = !res.writableFinished));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    pump(res, size, (n) => (u.sent = n)).then(
      () => res.end(),
      () => res.destroy(),
    );
  });
  u.server.listen(0, '127.0.0.1');
  await once(u.server, 'listening');
  u.port = (u.server.address() as AddressInfo).port;
  return u;
}

describe('streaming', () => {
  let up: Upstream;
  let gw: TestGateway;

  before(async () => {
    up = await startStreamingUpstream();
    gw = await startGateway({
      services: [{ name: 'big', url: `http://127.0.0.1:${up.port}`, routes: [{ name: 'big', paths: ['/big'] }] }],
    });
  });

  after(async () => {
    await gw?.close();
    up?.server.closeAllConnections();
    await new Promise<void>((ok) => (up ? up.server.close(() => ok()) : ok()));
  });

  test('a 1 GiB upload streams through in bounded memory', { timeout: 60_000 }, async () => {
    const watch = rssWatch();
    const t0 = performance.now();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: gw.port, path: '/big/upload', method: 'POST', agent: false, headers: { 'content-length': String(GiB) } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      pump(req, GiB).then(() => req.end(), reject);
    });
    const growth = watch.peak();
    const secs = (performance.now() - t0) / 1000;
    assert.equal(answer.status, 200);
    assert.equal(answer.body, String(GiB));
    assert.equal(up.received, GiB);
    assert.ok(growth < RSS_BUDGET, `RSS grew by ${(growth / MiB).toFixed(0)} MiB (${secs.toFixed(1)} s)`);
    const rec = gw.accessLog.at(-1)!;
    assert.equal((rec.bytes as { request: number }).request, GiB);
  });

  test('a chunked upload (no Content-Length) streams through too', { timeout: 30_000 }, async () => {
    const size = 64 * MiB + 123;
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: '/big/chunked', method: 'POST', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      pump(req, size).then(() => req.end(), reject);
    });
    assert.equal(answer, String(size));
  });

  test('a 256 MiB response streams through in bounded memory', { timeout: 60_000 }, async () => {
    const size = 256 * MiB;
    const watch = rssWatch();
    const got = await new Promise<{ status: number; bytes: number; length: string | undefined }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: `/big/download?size=${size}`, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode!, bytes, length: res.headers['content-length'] }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const growth = watch.peak();
    assert.equal(got.status, 200);
    assert.equal(got.length, String(size));
    assert.equal(got.bytes, size);
    assert.ok(growth < RSS_BUDGET, `RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
    assert.equal((gw.accessLog.at(-1)!.bytes as { response: number }).response, size);
  });

  test('a slow-reading client holds the upstream back instead of filling the gateway', { timeout: 30_000 }, async () => {
    const size = 128 * MiB;
    const watch = rssWatch();
    const result = await new Promise<{ sentWhilePaused: number; bytes: number }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: `/big/download?size=${size}`, agent: false }, async (res) => {
        // Read nothing for a while: only socket buffers may fill up.
        await delay(1500);
        const sentWhilePaused = up.sent;
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ sentWhilePaused, bytes }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const growth = watch.peak();
    assert.ok(result.sentWhilePaused < 48 * MiB, `the upstream got ${(result.sentWhilePaused / MiB).toFixed(1)} MiB out while the client read nothing`);
    assert.ok(result.sentWhilePaused > 0);
    assert.equal(result.bytes, size);
    assert.ok(growth < RSS_BUDGET, `RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
  });

  test('a client that goes away mid-download stops the upstream transfer', { timeout: 30_000 }, async () => {
    const size = 512 * MiB;
    const id = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: `/big/download?size=${size}`, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes >= 8 * MiB && !req.destroyed) {
            req.destroy();
            resolve(String(res.headers['x-request-id']));
          }
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    for (let i = 0; i < 200 && !up.cut; i++) await delay(10);
    assert.ok(up.cut, 'the upstream response should have been cut off');
    assert.ok(up.sent < 64 * MiB, `the upstream sent ${(up.sent / MiB).toFixed(0)} MiB`);
    let rec: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !rec; i++) {
      rec = gw.accessLog.find((r) => r.request_id === id);
      if (!rec) await delay(10);
    }
    assert.ok(rec, 'no access-log record');
    assert.equal(rec.error, 'PALISADE_ERR_CLIENT_CLOSED');
    assert.equal(rec.status, 200);
  });
});
