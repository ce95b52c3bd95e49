/**
 * The https listener: TLS termination, certificate selection by SNI (exact,
 * wildcard, default), routes bound to SNIs, client certificates (optional,
 * required), the Host-vs-SNI check for hosts that require a client certificate,
 * TLS 1.2 as the minimum, and certificate changes on reload. Real TLS over
 * 127.0.0.1; the tests read what the client sees in the handshake and what the
 * gateway saw (through its access-log hook).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import tls from 'node:tls';
import { request } from 'undici';
import type { AddressInfo, Socket } from 'node:net';
import type { RequestContext } from '../../src/core/context.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

const pem = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');
const CA = pem('ca.crt');
const CLIENT = { cert: pem('client.crt'), key: pem('client.key') };
const SELF_SIGNED_CLIENT = { cert: pem('client-selfsigned.crt'), key: pem('client-selfsigned.key') };

const localhostCert = { cert: pem('localhost.crt'), key: pem('localhost.key'), snis: ['localhost'] };
const apiCert = { cert: pem('api.crt'), key: pem('api.key'), snis: [{ name: 'api.example.test' }] };
const wildCert = { cert: pem('wildcard.crt'), key: pem('wildcard.key'), snis: ['*.wild.example.test'] };

interface TlsResult {
  /** Subject CN of the certificate the gateway served. */
  cn: string | undefined;
  /** The served chain verified against the test CA for the SNI sent. */
  trusted: boolean;
  protocol: string | null;
  status: number | null;
  body: string;
  /** Handshake or socket error code, when the exchange failed. */
  error: string | null;
}

/** One TLS connection, one HTTP/1.1 request written by hand (full control of SNI and Host). */
function exchange(
  port: number,
  opts: { servername?: string; host?: string; path?: string; cert?: string; key?: string; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion; ciphers?: string },
): Promise<TlsResult> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: CA,
      rejectUnauthorized: false,
      // An empty servername sends no SNI at all.
      servername: opts.servername ?? '',
      ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
      ...(opts.minVersion ? { minVersion: opts.minVersion } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
      ...(opts.ciphers ? { ciphers: opts.ciphers } : {}),
    });
    const result: TlsResult = { cn: undefined, trusted: false, protocol: null, status: null, body: '', error: null };
    let raw = '';
    socket.on('secureConnect', () => {
      result.cn = socket.getPeerCertificate().subject?.CN as string | undefined;
      result.trusted = socket.authorized;
      result.protocol = socket.getProtocol();
      socket.write(`GET ${opts.path ?? '/echo'} HTTP/1.1\r\nHost: ${opts.host ?? opts.servername ?? 'localhost'}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => (raw += d.toString('utf8')));
    socket.on('error', (err: NodeJS.ErrnoException) => (result.error ??= err.code ?? err.message));
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      if (m) result.status = Number(m[1]);
      result.body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      resolve(result);
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
  });
}

/** What the gateway saw of each request's TLS connection (from the access-log hook). */
interface SeenTls {
  path: string;
  servername: string | null;
  authorized: boolean;
  authorizationError: string | null;
  clientCn: string | undefined;
}
function observeTls(gw: TestGateway): SeenTls[] {
  const seen: SeenTls[] = [];
  const log = gw.gateway.accessLog;
  const write = log.write.bind(log);
  log.write = (ctx: RequestContext) => {
    const t = ctx.request.tls;
    if (t) {
      seen.push({
        path: ctx.path,
        servername: t.servername,
        authorized: t.authorized,
        authorizationError: t.authorizationError,
        clientCn: t.peerCertificate()?.subject?.CN as string | undefined,
      });
    }
    write(ctx);
  };
  return seen;
}

const portOf = (gw: TestGateway) => Number(new URL(gw.tlsUrl!).port);

describe('TLS termination and SNI', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  let port: number;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [
        {
          name: 'echo',
          url: upstream.url,
          routes: [
            { name: 'echo', paths: ['/echo'] },
            { name: 'api-only', paths: ['/api-only'], snis: ['api.example.test'], protocols: ['https'] },
          ],
        },
      ],
      certificates: [localhostCert, apiCert, wildCert],
    });
    port = portOf(gw);
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('terminates TLS and proxies to the plain-http upstream with X-Forwarded-Proto https', async () => {
    const r = await exchange(port, { servername: 'localhost', path: '/echo/hello' });
    assert.equal(r.error, null);
    assert.equal(r.status, 200);
    assert.equal(r.trusted, true, 'the localhost certificate verifies against the test CA');
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/hello');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  test('exact SNI selects its certificate', async () => {
    const r = await exchange(port, { servername: 'api.example.test' });
    assert.equal(r.cn, 'api.example.test');
    assert.equal(r.trusted, true);
    assert.equal(r.status, 200);
  });

  test('SNI matching is case-insensitive', async () => {
    const r = await exchange(port, { servername: 'API.Example.TEST' });
    assert.equal(r.cn, 'api.example.test');
  });

  test('wildcard SNI selects the wildcard certificate, for exactly one label', async () => {
    const one = await exchange(port, { servername: 'shop.wild.example.test' });
    assert.equal(one.cn, '*.wild.example.test');
    assert.equal(one.trusted, true);
    assert.equal(one.status, 200);
    // *.wild.example.test does not cover a.b.wild.example.test (nor the bare domain): the default is served.
    assert.equal((await exchange(port, { servername: 'a.b.wild.example.test' })).cn, 'localhost');
    assert.equal((await exchange(port, { servername: 'wild.example.test' })).cn, 'localhost');
  });

  test('unknown SNI, and no SNI at all, get the default (first) certificate', async () => {
    const unknown = await exchange(port, { servername: 'nobody.example.test', host: 'localhost' });
    assert.equal(unknown.cn, 'localhost');
    assert.equal(unknown.trusted, false, 'the default certificate does not cover the unknown name');
    assert.equal(unknown.status, 200);
    const none = await exchange(port, { host: 'localhost' });
    assert.equal(none.cn, 'localhost');
    assert.equal(none.status, 200);
  });

  test('a route with snis matches only connections made with that SNI', async () => {
    const seen = observeTls(gw);
    const ok = await exchange(port, { servername: 'api.example.test', path: '/api-only/x' });
    assert.equal(ok.status, 200);
    assert.equal(seen.at(-1)?.servername, 'api.example.test');
    // Same Host header, other SNI / no SNI: no route.
    assert.equal((await exchange(port, { servername: 'localhost', host: 'api.example.test', path: '/api-only/x' })).status, 404);
    assert.equal((await exchange(port, { servername: 'shop.wild.example.test', host: 'api.example.test', path: '/api-only/x' })).status, 404);
    assert.equal((await exchange(port, { host: 'api.example.test', path: '/api-only/x' })).status, 404);
    // And never over plain http.
    const res = await fetch(`${gw.url}/api-only/x`);
    await res.arrayBuffer();
    assert.equal(res.status, 404);
  });

  test('TLS 1.0 and 1.1 are refused; TLS 1.2 and 1.3 are accepted', async (t) => {
    // Control: this client really can speak TLS 1.1 (to a server that allows it).
    const legacy = { minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' };
    const control = tls.createServer({ cert: localhostCert.cert, key: localhostCert.key, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end());
    const sockets = new Set<Socket>();
    control.on('connection', (s) => sockets.add(s));
    await new Promise<void>((ok) => control.listen(0, '127.0.0.1', () => ok()));
    t.after(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((ok) => control.close(() => ok()));
    });
    const ctl = await exchange((control.address() as AddressInfo).port, { servername: 'localhost', ...legacy });
    assert.equal(ctl.protocol, 'TLSv1.1', 'control handshake');

    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await exchange(port, { servername: 'localhost', ...legacy, minVersion: version, maxVersion: version });
      assert.equal(r.protocol, null, `${version} must not complete a handshake`);
      assert.equal(r.error, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${version}: the gateway answers with a protocol_version alert`);
      assert.equal(r.status, null);
    }
    const v12 = await exchange(port, { servername: 'localhost', maxVersion: 'TLSv1.2' });
    assert.equal(v12.protocol, 'TLSv1.2');
    assert.equal(v12.status, 200);
    const v13 = await exchange(port, { servername: 'localhost' });
    assert.equal(v13.protocol, 'TLSv1.3');
  });
});

describe('client certificates', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  let port: number;
  let seen: SeenTls[];
  before(async () => {
    upstream = await startUpstream();
    const clientCa = pem('client-ca.crt');
    gw = await startGateway({
      services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }],
      certificates: [
        localhostCert,
        { ...wildCert, client_ca: clientCa, client_verify: 'optional' },
        { ...apiCert, client_ca: clientCa, client_verify: 'required' },
      ],
    });
    port = portOf(gw);
    seen = observeTls(gw);
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  test('optional: proceeds without a certificate (not authorized)', async () => {
    const r = await exchange(port, { servername: 'shop.wild.example.test', path: '/echo/none' });
    assert.equal(r.status, 200);
    const s = seen.find((x) => x.path === '/echo/none');
    assert.ok(s);
    assert.equal(s.authorized, false);
    assert.equal(s.clientCn, undefined);
  });

  test('optional: a certificate from the client CA is authorized', async () => {
    const r = await exchange(port, { servername: 'shop.wild.example.test', path: '/echo/valid', ...CLIENT });
    assert.equal(r.status, 200);
    const s = seen.find((x) => x.path === '/echo/valid');
    assert.ok(s);
    assert.equal(s.authorized, true);
    assert.equal(s.authorizationError, null);
    assert.equal(s.clientCn, 'test-client');
  });

  test('optional: a self-signed certificate proceeds but is not authorized', async () => {
    const r = await exchange(port, { servername: 'shop.wild.example.test', path: '/echo/self', ...SELF_SIGNED_CLIENT });
    assert.equal(r.status, 200);
    const s = seen.find((x) => x.path === '/echo/self');
    assert.ok(s);
    assert.equal(s.authorized, false);
    assert.match(String(s.authorizationError), /SELF_SIGNED|self.signed/i);
    assert.equal(s.clientCn, 'test-client');
  });

  test('required: no certificate → the connection is refused, nothing is proxied', async () => {
    const before = upstream.requests.length;
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const r = await exchange(port, { servername: 'api.example.test', path: '/echo/required-none', maxVersion });
      assert.equal(r.status, null, `${maxVersion}: no HTTP answer`);
      assert.equal(r.body, '', `${maxVersion}: no bytes of a response`);
    }
    assert.equal(upstream.requests.length, before);
  });

  test('required: a self-signed certificate is refused', async () => {
    const before = upstream.requests.length;
    const r = await exchange(port, { servername: 'api.example.test', path: '/echo/required-self', ...SELF_SIGNED_CLIENT });
    assert.equal(r.status, null);
    assert.equal(upstream.requests.length, before);
  });

  test('required: a certificate from the client CA is accepted and authorized', async () => {
    const r = await exchange(port, { servername: 'api.example.test', path: '/echo/required-valid', ...CLIENT });
    assert.equal(r.cn, 'api.example.test');
    assert.equal(r.status, 200);
    const s = seen.find((x) => x.path === '/echo/required-valid');
    assert.ok(s);
    assert.equal(s.authorized, true);
    assert.equal(s.clientCn, 'test-client');
  });

  test('required: the host cannot be reached through another SNI or without SNI (421)', async () => {
    const before = upstream.requests.length;
    // Another SNI, even with a certificate that verified for that SNI.
    const other = await exchange(port, { servername: 'shop.wild.example.test', host: 'api.example.test', path: '/echo/fronted', ...CLIENT });
    assert.equal(other.status, 421);
    const problem = JSON.parse(other.body) as { status: number; request_id: string };
    assert.equal(problem.status, 421);
    assert.ok(problem.request_id);
    // No SNI at all.
    assert.equal((await exchange(port, { host: 'api.example.test:443', path: '/echo/fronted' })).status, 421);
    // The default certificate's connection, with the right Host.
    assert.equal((await exchange(port, { servername: 'localhost', host: 'API.example.test', path: '/echo/fronted' })).status, 421);
    // The same host named as a fully qualified name (trailing dot), or as an absolute-form target behind another Host.
    assert.equal((await exchange(port, { servername: 'localhost', host: 'api.example.test.', path: '/echo/fronted' })).status, 421);
    assert.equal((await exchange(port, { servername: 'localhost', host: 'localhost', path: 'https://api.example.test/echo/fronted' })).status, 421);
    assert.equal(upstream.requests.length, before);
    // Hosts whose certificate does not require one are not affected.
    assert.equal((await exchange(port, { servername: 'localhost', host: 'shop.wild.example.test', path: '/echo/x' })).status, 200);
  });
});

describe('certificates on reload', () => {
  test('a reload that changes the default certificate and adds client_verify takes effect for new connections', async () => {
    const upstream = await startUpstream();
    const base = { services: [{ name: 'echo', url: upstream.url, routes: [{ name: 'echo', paths: ['/echo'] }] }] };
    const gw = await startGateway({ ...base, certificates: [localhostCert, wildCert] });
    try {
      const port = portOf(gw);
      const seen = observeTls(gw);
      assert.equal((await exchange(port, {})).cn, 'localhost');
      await exchange(port, { servername: 'shop.wild.example.test', path: '/echo/before', ...CLIENT });
      assert.equal(seen.find((s) => s.path === '/echo/before')?.authorized, false, 'no client certificate is asked for yet');

      await gw.reload({ ...base, certificates: [apiCert, { ...wildCert, client_ca: pem('client-ca.crt'), client_verify: 'optional' }] });
      assert.equal((await exchange(port, {})).cn, 'api.example.test', 'the new default certificate is served');
      const r = await exchange(port, { servername: 'shop.wild.example.test', path: '/echo/after', ...CLIENT });
      assert.equal(r.status, 200);
      const after = seen.find((s) => s.path === '/echo/after');
      assert.equal(after?.authorized, true, 'the listener now asks for client certificates');
      assert.equal(after?.clientCn, 'test-client');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});

describe('https upstreams', () => {
  test("an upstream entity's target is verified by its own name (Kong), not by the upstream's name", async () => {
    const server = createHttpsServer({ cert: pem('localhost.crt'), key: pem('localhost.key') }, (req, res) => res.end(`tls ${req.headers.host}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const gw = await startGateway({
      upstreams: [{ name: 'secure-pool', targets: [{ target: `localhost:${port}` }] }],
      services: [{ name: 'tls-up', protocol: 'https', host: 'secure-pool', port: 443, ca_certificates: [CA], routes: [{ name: 'tls-up', paths: ['/tls-up'] }] }],
    });
    try {
      const r = await request(`${gw.url}/tls-up`);
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), `tls localhost:${port}`);
    } finally {
      await gw.close();
      server.close();
    }
  });
});
