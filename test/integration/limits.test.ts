/**
 * Listener limits over raw sockets: request head size (431), slow-loris head
 * timeout (408), requests per keep-alive connection, idle keep-alive lifetime,
 * and limits changed by a reload.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A client connection written by hand: exact bytes out, responses parsed as they come. */
class RawConnection {
  readonly socket: Socket;
  readonly opened = Date.now();
  /** Milliseconds after opening when the connection closed; null while open. */
  closedAfter: number | null = null;
  readonly closed: Promise<number>;
  #buf = Buffer.alloc(0);
  #wake: (() => void) | null = null;

  /** `allowHalfOpen`: keep writing after the gateway closed its side (as clients that send the whole body before reading do). */
  constructor(port: number, opts: { allowHalfOpen?: boolean } = {}) {
    this.socket = connect({ port, host: '127.0.0.1', allowHalfOpen: opts.allowHalfOpen ?? false });
    this.socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake?.();
    });
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closedAfter = Date.now() - this.opened;
        this.#wake?.();
        resolve(this.closedAfter);
      }),
    );
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** The next complete response (Content-Length, chunked, or until close). */
  async response(timeoutMs = 5000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.#parse();
      if (parsed) return parsed;
      if (this.closedAfter !== null) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.#buf.toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no complete response within ${timeoutMs} ms; have: ${JSON.stringify(this.#buf.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  #parse(): RawResponse | null {
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const rest = this.#buf.subarray(end + 4);
    let body: Buffer;
    let used: number;
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (rest.length < n) return null;
      body = rest.subarray(0, n);
      used = n;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let at = 0;
      for (;;) {
        const eol = rest.indexOf('\r\n', at);
        if (eol < 0) return null;
        const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
        if (rest.length < eol + 2 + size + 2) return null;
        parts.push(rest.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
      used = at;
    } else {
      if (this.closedAfter === null) return null;
      body = rest;
      used = rest.length;
    }
    this.#buf = this.#buf.subarray(end + 4 + used);
    return { status, headers, body: body.toString('utf8') };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: limits.test\r\n${extra}\r\n`;

function assertProblem(res: RawResponse, status: number): void {
  assert.equal(res.status, status);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  const doc = JSON.parse(res.body) as { status: number; title: string; type: string; request_id: string };
  assert.equal(doc.status, status);
  assert.ok(doc.title);
  assert.match(doc.type, /^urn:palisade:problem:/);
  assert.match(doc.request_id, /^[0-9a-f-]{36}$/);
  assert.equal(res.headers['x-request-id'], doc.request_id);
  assert.doesNotMatch(res.body, /at .*\.ts:\d+/, 'no stack trace');
}

describe('listener limits', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }],
      server: { max_header_size: 2048, headers_timeout: 500, keepalive_requests: 3, keepalive_timeout: 400 },
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('a request head above max_header_size → 431 problem document, connection closed, nothing proxied', async () => {
    const seen = upstream.requests.length;
    // Control: a head well under the limit passes.
    const ok = new RawConnection(gw.port);
    ok.write(get('/echo/small', `X-Padding: ${'a'.repeat(1000)}\r\nConnection: close\r\n`));
    assert.equal((await ok.response()).status, 200);
    await ok.closed;

    const big = new RawConnection(gw.port);
    big.write(get('/echo/big', `X-Padding: ${'a'.repeat(3000)}\r\n`));
    const res = await big.response();
    assertProblem(res, 431);
    assert.equal(res.headers.connection, 'close');
    await big.closed;
    // Many small headers add up the same way.
    const many = new RawConnection(gw.port);
    many.write(get('/echo/many', Array.from({ length: 60 }, (_, i) => `X-H${i}: ${'b'.repeat(40)}\r\n`).join('')));
    assertProblem(await many.response(), 431);
    await many.closed;
    assert.equal(upstream.requests.length, seen + 1, 'only the small request was proxied');
  });

  test('slow-loris: a head still incomplete after headers_timeout → 408, connection closed', async () => {
    const seen = upstream.requests.length;
    const c = new RawConnection(gw.port);
    c.write('GET /echo/slow HTTP/1.1\r\nHost: limits.test\r\n');
    // Trickle a header line every 100 ms: activity must not extend the deadline.
    const trickle = setInterval(() => {
      if (c.closedAfter === null) c.write(`X-Drip-${Date.now()}: 1\r\n`);
    }, 100);
    try {
      const res = await c.response(4000);
      assertProblem(res, 408);
      assert.equal(res.headers.connection, 'close');
      const closedAfter = await c.closed;
      assert.ok(closedAfter >= 500, `closed after ${closedAfter} ms, before headers_timeout`);
      assert.ok(closedAfter < 3000, `closed after ${closedAfter} ms`);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
    assert.equal(upstream.requests.length, seen);
  });

  test('keepalive_requests: the Nth response says Connection: close and the gateway closes the connection', async () => {
    const c = new RawConnection(gw.port);
    try {
      for (let i = 1; i <= 3; i++) {
        c.write(get(`/echo/${i}`));
        const res = await c.response();
        assert.equal(res.status, 200, `request ${i}`);
        if (i < 3) {
          assert.equal(res.headers.connection?.toLowerCase(), 'keep-alive', `response ${i} keeps the connection`);
          assert.equal(c.closedAfter, null);
        } else assert.equal(res.headers.connection?.toLowerCase(), 'close', 'the 3rd response announces the close');
      }
      const t0 = Date.now();
      await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the gateway kept the connection open after the last allowed request')), 300))]);
      assert.ok(Date.now() - t0 < 300);
    } finally {
      c.destroy();
    }
  });

  test('keepalive_timeout: an idle keep-alive connection is closed; one used in time stays open', async () => {
    const c = new RawConnection(gw.port);
    try {
      c.write(get('/echo/a'));
      assert.equal((await c.response()).status, 200);
      // Used again well within keepalive_timeout: still open, served.
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(c.closedAfter, null);
      c.write(get('/echo/b'));
      assert.equal((await c.response()).status, 200);
      const idleSince = Date.now();
      await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('idle connection never closed')), 4000))]);
      const idle = Date.now() - idleSince;
      // node adds a fixed grace period (keepAliveTimeoutBuffer, 1 s) to the advertised timeout.
      assert.ok(idle >= 400, `closed after ${idle} ms idle, before keepalive_timeout`);
      assert.ok(idle < 2500, `closed after ${idle} ms idle`);
    } finally {
      c.destroy();
    }
  });
});

describe('limits on reload and keep-alive off', () => {
  test('keepalive_timeout 0 closes after every response', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }],
      server: { keepalive_timeout: 0 },
    });
    try {
      const c = new RawConnection(gw.port);
      c.write(get('/echo/once'));
      const res = await c.response();
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection?.toLowerCase(), 'close');
      await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('connection left open')), 1000))]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  test('a reload changes max_header_size and keepalive_requests for new connections', async () => {
    const upstream = await startUpstream();
    const services = [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }];
    const gw = await startGateway({ services, server: { max_header_size: 8192 } });
    try {
      const head = get('/echo/x', `X-Padding: ${'a'.repeat(3000)}\r\nConnection: close\r\n`);
      const before = new RawConnection(gw.port);
      before.write(head);
      assert.equal((await before.response()).status, 200);

      await gw.reload({ services, server: { max_header_size: 2048, keepalive_requests: 1 } });
      const afterReload = new RawConnection(gw.port);
      afterReload.write(head);
      assertProblem(await afterReload.response(), 431);

      const once = new RawConnection(gw.port);
      once.write(get('/echo/one'));
      const res = await once.response();
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection?.toLowerCase(), 'close');
      await Promise.race([once.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('connection left open')), 1000))]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('a request body the gateway answers before reading it', () => {
  let upstream: TestUpstream;
  let dropper: Server;
  let gw: TestGateway;
  before(async () => {
    // /slow answers after 300 ms; the rest echo at once.
    upstream = await startUpstream((req, res, body) => {
      const text = JSON.stringify({ url: req.url, bytes: body.length });
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(text), req.url?.includes('slow') ? 300 : 0);
    });
    // An upstream that reads ~100 KB of a request, then drops the connection.
    dropper = createServer((socket) => {
      let seen = 0;
      socket.on('data', (d: Buffer) => {
        seen += d.length;
        if (seen > 100_000) socket.destroy();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
    gw = await startGateway({
      services: [
        {
          name: 'echo',
          url: upstream.url,
          routes: [
            { name: 'open', paths: ['/open'] },
            { name: 'keyed', paths: ['/keyed'], plugins: [{ name: 'key-auth', config: {} }] },
            { name: 'small', paths: ['/small'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1 } }] },
            { name: 'json', paths: ['/json'], plugins: [{ name: 'json-threat-protection', config: {} }] },
          ],
        },
        { name: 'dropper', url: `http://127.0.0.1:${(dropper.address() as AddressInfo).port}`, routes: [{ name: 'drop', paths: ['/drop'] }] },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await new Promise((resolve) => dropper.close(resolve));
  });

  const post = (path: string, framing: string) => `POST ${path} HTTP/1.1\r\nHost: limits.test\r\n${framing}\r\n\r\n`;
  const within = (p: Promise<unknown>, ms: number, what: string) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms))]);

  /** Writes `total` bytes of body (in `frame`s) as fast as the connection takes them, or until it closes; the bytes written. */
  async function upload(conn: RawConnection, frame: Buffer, total: number): Promise<number> {
    let sent = 0;
    while (sent < total && conn.closedAfter === null) {
      if (!conn.socket.write(frame)) await Promise.race([new Promise((r) => conn.socket.once('drain', r)), conn.closed]);
      sent += frame.length;
    }
    return sent;
  }

  test('a body under 256 KiB is dropped and the connection carries the next request', async () => {
    const conn = new RawConnection(gw.port);
    try {
      conn.write(post('/keyed', `Content-Length: ${250 * 1024}`));
      const refused = await conn.response();
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.connection?.toLowerCase(), 'keep-alive');
      conn.write('x'.repeat(250 * 1024));
      conn.write(get('/open/next'));
      const next = await conn.response();
      assert.equal(next.status, 200);
      assert.equal((JSON.parse(next.body) as { url: string }).url, '/next'); // strip_path
    } finally {
      conn.destroy();
    }
  });

  test('a client that writes a 20 MiB body before reading still gets the answer; the connection is then closed, not read to the end', async () => {
    const conn = new RawConnection(gw.port, { allowHalfOpen: true });
    const ended = new Promise((resolve) => conn.socket.once('end', resolve));
    try {
      conn.write(post('/keyed', `Content-Length: ${20 * 1048576}`));
      const sent = await upload(conn, Buffer.alloc(65536, 120), 20 * 1048576);
      assert.equal(sent, 20 * 1048576, 'the gateway read on while the client was writing');
      assert.equal((await conn.response()).status, 401);
      // node:http alone reads the whole body and keeps the connection; now the gateway has closed its side.
      await within(ended, 4000, 'the gateway kept the connection');
    } finally {
      conn.destroy();
    }
  });

  test('past 256 KiB, a request pipelined behind the body is not served', async () => {
    const conn = new RawConnection(gw.port);
    const before = upstream.requests.length;
    try {
      conn.write(post('/keyed', `Content-Length: ${300 * 1024}`));
      conn.write('x'.repeat(300 * 1024));
      conn.write(get('/open/after'));
      assert.equal((await conn.response()).status, 401);
      await within(conn.closed, 4000, 'connection left open');
      await assert.rejects(conn.response(100), /connection closed/);
      assert.equal(upstream.requests.length, before, 'nothing reached the upstream');
    } finally {
      conn.destroy();
    }
  });

  test('pipelined behind a slow request, a refused 1 MiB upload still gets its answer, and so does the first request', async () => {
    const conn = new RawConnection(gw.port);
    try {
      conn.write(get('/open/slow'));
      conn.write(post('/keyed', `Content-Length: ${1048576}`));
      await upload(conn, Buffer.alloc(65536, 120), 1048576);
      assert.equal((await conn.response()).status, 200);
      assert.equal((await conn.response()).status, 401);
    } finally {
      conn.destroy();
    }
  });

  test('Expect: 100-continue is answered only when the body is wanted: a refusal comes without it, a proxied request gets it first', async () => {
    /** The bytes a fresh connection receives within `ms` after `head` (and `body` once "100 Continue" arrived). */
    const exchange = (head: string, body: string | null, ms: number) =>
      new Promise<string>((resolve) => {
        const s = connect(gw.port, '127.0.0.1');
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (body !== null && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
            s.write(body);
            body = null;
          }
        });
        s.on('error', () => {});
        s.write(head);
        setTimeout(() => {
          s.destroy();
          resolve(got);
        }, ms);
      });
    const refused = await exchange(post('/keyed', 'Content-Length: 5\r\nExpect: 100-continue'), null, 300);
    assert.match(refused, /^HTTP\/1\.1 401 /, 'node:http alone answers 100 Continue first, before key-auth has run');
    const proxied = await exchange(post('/open/continue', 'Content-Length: 5\r\nExpect: 100-continue'), 'hello', 500);
    assert.match(proxied, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(proxied, /"bytes":5/);
    // A plugin that reads the body first (json-threat-protection) asks for it the same way.
    const read = await exchange(post('/json', 'Content-Type: application/json\r\nContent-Length: 7\r\nExpect: 100-continue'), '{"a":1}', 500);
    assert.match(read, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(read, /"bytes":7/);
  });

  test('a chunked body over request-size-limiting: 413 says Connection: close and the connection closes (it used to hang)', async () => {
    const conn = new RawConnection(gw.port);
    try {
      conn.write(post('/small', 'Transfer-Encoding: chunked'));
      const frame = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(65536, 120), Buffer.from('\r\n')]);
      void upload(conn, frame, 64 * 1048576);
      const res = await conn.response();
      assert.equal(res.status, 413);
      assert.equal(res.headers.connection?.toLowerCase(), 'close');
      await within(conn.closed, 2000, 'connection left open');
    } finally {
      conn.destroy();
    }
  });

  test('an upstream gone mid-upload: 502 says Connection: close and the connection closes (it used to hang)', async () => {
    const conn = new RawConnection(gw.port);
    try {
      conn.write(post('/drop', `Content-Length: ${1048576}`));
      void upload(conn, Buffer.alloc(65536, 120), 1048576);
      const res = await conn.response();
      assert.equal(res.status, 502);
      assert.equal(res.headers.connection?.toLowerCase(), 'close');
      await within(conn.closed, 2000, 'connection left open');
    } finally {
      conn.destroy();
    }
  });
});
