/**
 * Malformed and ambiguous requests, written byte by byte on raw sockets: the
 * gateway answers 400 with a problem document and closes the connection, and
 * nothing reaches the upstream — in particular no request smuggled behind a
 * framing conflict. Absolute-form targets are routed by their path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

interface Exchange {
  /** Everything the gateway sent. */
  raw: string;
  /** The connection was closed by the gateway within the wait. */
  closed: boolean;
  status: number | null;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes on a fresh connection and collects the answer until the gateway closes (or waitMs passes). */
function send(port: number, data: string | Buffer, waitMs = 1500): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let raw = '';
    let closed = false;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const head = raw.slice(0, Math.max(0, raw.indexOf('\r\n\r\n')));
      const lines = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
      resolve({ raw, closed, status: m ? Number(m[1]) : null, headers, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, waitMs);
    socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (settled) return;
      closed = true;
      done();
    });
    socket.write(data);
  });
}

describe('malformed requests', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }] });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  /** 400 problem document, connection closed by the gateway, upstream untouched. */
  async function rejected(data: string | Buffer): Promise<Exchange> {
    const before = upstream.requests.length;
    const r = await send(gw.port, data);
    assert.equal(r.status, 400, `expected 400, got: ${JSON.stringify(r.raw.slice(0, 200))}`);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body, 'latin1'));
    const doc = JSON.parse(r.body) as { status: number; title: string; request_id: string; type: string };
    assert.equal(doc.status, 400);
    assert.equal(doc.title, 'Bad Request');
    assert.equal(doc.type, 'urn:palisade:problem:bad-request');
    assert.match(doc.request_id, /^[0-9a-f-]{36}$/);
    assert.equal(r.headers.connection?.toLowerCase(), 'close');
    assert.equal(r.closed, true, 'the gateway closes the connection');
    // Exactly one response: nothing smuggled behind the bad request was answered.
    assert.equal(r.raw.match(/HTTP\/1\.1 \d{3}/g)?.length, 1);
    // Give a stray upstream request time to arrive before checking there was none.
    await new Promise((res) => setTimeout(res, 30));
    assert.equal(upstream.requests.length, before, 'nothing reached the upstream');
    return r;
  }

  test('control: a well-formed request on the same socket helpers is proxied', async () => {
    const before = upstream.requests.length;
    const r = await send(gw.port, 'GET /echo/ok HTTP/1.1\r\nHost: malformed.test\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 200);
    assert.equal(upstream.requests.length, before + 1);
  });

  describe('invalid request line', () => {
    for (const [name, line] of [
      ['extra token after the version', 'GET /echo/x HTTP/1.1 extra'],
      ['not HTTP at all', 'HELLO'],
      ['unknown version', 'GET /echo/x HTTP/9.9'],
      ['space inside the target', 'GET /echo/a b HTTP/1.1'],
      ['control character in the method', 'G\x01T /echo/x HTTP/1.1'],
      ['lower-case protocol name', 'GET /echo/x http/1.1'],
    ]) {
      test(name!, () => rejected(`${line}\r\nHost: malformed.test\r\n\r\n`).then(() => undefined));
    }
  });

  describe('invalid header characters', () => {
    for (const [name, header] of [
      ['control character in a value', 'X-Test: a\x01b'],
      ['NUL in a value', 'X-Test: a\x00b'],
      ['space inside a name', 'X Test: 1'],
      ['whitespace before the colon', 'X-Test : 1'],
      ['separator in a name', 'X(Test): 1'],
      ['line without a colon', 'X-Test'],
    ]) {
      test(name!, () => rejected(`GET /echo/x HTTP/1.1\r\nHost: malformed.test\r\n${header}\r\n\r\n`).then(() => undefined));
    }
  });

  describe('request smuggling: conflicting or ambiguous framing', () => {
    const smuggled = 'GET /echo/smuggled HTTP/1.1\r\nHost: malformed.test\r\n\r\n';
    for (const [name, head, body] of [
      ['Content-Length and Transfer-Encoding (CL.TE)', 'Content-Length: 4\r\nTransfer-Encoding: chunked', '0\r\n\r\n'],
      ['Transfer-Encoding and Content-Length (TE.CL)', 'Transfer-Encoding: chunked\r\nContent-Length: 40', '0\r\n\r\n'],
      ['two different Content-Length headers', 'Content-Length: 5\r\nContent-Length: 6', 'hello!'],
      ['Content-Length list', 'Content-Length: 5, 6', 'hello!'],
      ['Content-Length with a sign', 'Content-Length: +5', 'hello'],
      ['chunked not the final coding', 'Transfer-Encoding: chunked, identity', '0\r\n\r\n'],
      ['obfuscated Transfer-Encoding with a control character', 'Transfer-Encoding:\x0bchunked', '0\r\n\r\n'],
      ['chunk size that is not hex', 'Transfer-Encoding: chunked', 'zz\r\nhello\r\n0\r\n\r\n'],
      ['bare LF inside a chunk extension', 'Transfer-Encoding: chunked', '5;ext\nx\r\nhello\r\n0\r\n\r\n'],
    ]) {
      test(name!, () => rejected(`POST /echo/x HTTP/1.1\r\nHost: malformed.test\r\n${head}\r\n\r\n${body}${smuggled}`).then(() => undefined));
    }

    test('Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing)', async () => {
      await rejected(`POST /echo/x HTTP/1.0\r\nHost: malformed.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${smuggled}`);
    });
  });

  describe('line endings and folding', () => {
    test('bare LF line endings', () => rejected('GET /echo/x HTTP/1.1\nHost: malformed.test\n\n').then(() => undefined));
    test('a bare LF between header lines', () => rejected('GET /echo/x HTTP/1.1\r\nHost: malformed.test\nX-Test: 1\r\n\r\n').then(() => undefined));
    test('a bare CR', () => rejected('GET /echo/x HTTP/1.1\r\nHost: malformed.test\rX-Test: 1\r\n\r\n').then(() => undefined));
    test('obs-fold (a header continued on an indented line)', () => rejected('GET /echo/x HTTP/1.1\r\nHost: malformed.test\r\nX-Test: a\r\n  b\r\n\r\n').then(() => undefined));
    test('obs-fold with a tab', () => rejected('GET /echo/x HTTP/1.1\r\nHost: malformed.test\r\nX-Test: a\r\n\tb\r\n\r\n').then(() => undefined));
  });

  describe('Host', () => {
    test('HTTP/1.1 without Host', () => rejected('GET /echo/x HTTP/1.1\r\n\r\n').then(() => undefined));
    test('two Host headers', () => rejected('GET /echo/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n').then(() => undefined));
    test('HTTP/1.0 without Host is fine', async () => {
      const r = await send(gw.port, 'GET /echo/old HTTP/1.0\r\n\r\n');
      assert.equal(r.status, 200);
    });
    // nginx's ngx_http_validate_host: a Host goes into redirects, X-Forwarded-Host and the upstream's Host.
    for (const [name, value] of [
      ['a path in Host', 'evil.example/x?'],
      ['a backslash in Host', 'x\\y'],
      ['white space in Host', 'a b'],
      ['".." in Host', 'a..b'],
    ]) {
      test(name!, () => rejected(`GET /echo/x HTTP/1.1\r\nHost: ${value}\r\n\r\n`).then(() => undefined));
    }
    test('a trailing dot is dropped (nginx): the upstream sees one name, with the port kept', async () => {
      const r = await send(gw.port, 'GET /echo/fqdn HTTP/1.1\r\nHost: malformed.test.:8000\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(upstream.requests.at(-1)!.headers['x-forwarded-host'], 'malformed.test');
    });
  });

  describe('Transfer-Encoding other than chunked (RFC 9112 §6.1: 501, like nginx; node would undo only the chunking)', () => {
    for (const te of ['gzip, chunked', 'gzip\r\nTransfer-Encoding: chunked', 'foo, chunked', 'xchunked']) {
      test(te.replace('\r\n', ' + '), async () => {
        const before = upstream.requests.length;
        const r = await send(gw.port, `POST /echo/x HTTP/1.1\r\nHost: malformed.test\r\nTransfer-Encoding: ${te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
        assert.equal(r.status, 501, JSON.stringify(r.raw.slice(0, 120)));
        assert.equal(r.headers['content-type'], 'application/problem+json');
        assert.equal(r.closed, true);
        assert.equal(upstream.requests.length, before);
      });
    }
    test('chunked (any case) is proxied', async () => {
      const r = await send(gw.port, 'POST /echo/te HTTP/1.1\r\nHost: malformed.test\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(upstream.requests.at(-1)!.body, 'abc');
    });
  });

  describe('request targets', () => {
    test('absolute-form is routed by its path; the upstream gets origin-form', async () => {
      const before = upstream.requests.length;
      const r = await send(gw.port, 'GET http://elsewhere.example/echo/abs/path?q=1 HTTP/1.1\r\nHost: malformed.test\r\nConnection: close\r\n\r\n');
      assert.equal(r.status, 200);
      assert.equal(upstream.requests.length, before + 1);
      assert.equal(upstream.requests.at(-1)!.url, '/abs/path?q=1');
      // RFC 9112 §3.2.2: the target's authority wins over the Host header.
      assert.equal(upstream.requests.at(-1)!.headers['x-forwarded-host'], 'elsewhere.example');
      const https = await send(gw.port, 'GET HTTPS://elsewhere.example:8443/echo/secure HTTP/1.1\r\nHost: malformed.test\r\nConnection: close\r\n\r\n');
      assert.equal(https.status, 200);
      assert.equal(upstream.requests.at(-1)!.url, '/secure');
      // An authority with no path is the root: no route for it here.
      const root = await send(gw.port, 'GET http://elsewhere.example HTTP/1.1\r\nHost: malformed.test\r\nConnection: close\r\n\r\n');
      assert.equal(root.status, 404);
    });

    test('absolute-form with another scheme, and a path climbing above the root, are 400 (not proxied)', async () => {
      const before = upstream.requests.length;
      for (const target of ['ftp://elsewhere.example/echo/x', '/echo/../../etc/passwd', '/echo/%2e%2e/%2e%2e/x']) {
        const r = await send(gw.port, `GET ${target} HTTP/1.1\r\nHost: malformed.test\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 400, target);
        assert.equal(r.headers['content-type'], 'application/problem+json', target);
      }
      assert.equal(upstream.requests.length, before);
    });
  });

  test('the gateway keeps serving after all of that', async () => {
    const res = await fetch(`${gw.url}/echo/still-here`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { url: string }).url, '/still-here');
  });
});
