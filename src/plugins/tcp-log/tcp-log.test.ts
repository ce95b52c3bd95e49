import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startGateway, startUpstream, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { startTcpCollector, type LineCollector } from '../../../test/helpers/collectors.ts';
import { eventually, freePort } from '../../../test/helpers/process.ts';

const TLS_DIR = new URL('../../../test/fixtures/tls/', import.meta.url);

describe('tcp-log', () => {
  let upstream: TestUpstream;
  before(async () => {
    upstream = await startUpstream();
  });
  after(async () => {
    await upstream?.close();
  });

  const config = (pluginConfig: object) => ({
    services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
    plugins: [{ name: 'tcp-log', config: pluginConfig }],
  });
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const r = await request(url, { headers });
    await r.body.dump();
    return r;
  };

  test('newline-delimited JSON records over one kept-alive connection', async () => {
    const server = await startTcpCollector();
    const gw = await startGateway(config({ host: '127.0.0.1', port: server.port }));
    try {
      for (let i = 0; i < 5; i++) await get(`${gw.url}/t${i}`, { authorization: 'Basic c2VjcmV0' });
      await eventually(() => server.lines.length === 5, 10000, 'five lines');
      const recs = server.lines.map((l) => JSON.parse(l));
      assert.deepEqual(recs.map((r) => r.request.uri), ['/t0', '/t1', '/t2', '/t3', '/t4']);
      assert.equal(recs[0].request.headers.authorization, 'REDACTED');
      assert.equal(server.connections, 1, 'one connection reused');
    } finally {
      await gw.close();
      await server.close();
    }
  });

  test('a log server that is down: requests are unaffected and queued records arrive once it is up', async () => {
    const port = await freePort();
    const gw = await startGateway(config({ host: '127.0.0.1', port, timeout: 1000 }));
    let server: LineCollector | null = null;
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get(`${gw.url}/q${i}`)).statusCode, 200);
      await eventually(() => gw.logs.some((l) => l.msg === 'log batch failed: retrying'), 10000, 'a failed attempt');
      server = await startTcpCollector(port);
      await eventually(() => server!.lines.length === 3, 15000, 'the queued records');
      assert.deepEqual(server.lines.map((l) => JSON.parse(l).request.uri), ['/q0', '/q1', '/q2']);
    } finally {
      await gw.close();
      await server?.close();
    }
  });

  test('tls: the server certificate is verified (ssl_verify), tls_sni is sent', async () => {
    const sni: (string | false | null)[] = [];
    const lines: string[] = [];
    const srv = createTlsServer({ cert: readFileSync(new URL('api.crt', TLS_DIR)), key: readFileSync(new URL('api.key', TLS_DIR)) }, (s: TLSSocket) => {
      sni.push(s.servername);
      s.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
    });
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', () => ok()));
    const port = (srv.address() as AddressInfo).port;
    const verified = await startGateway(config({ host: '127.0.0.1', port, tls: true, tls_sni: 'api.example.test' }));
    const unverified = await startGateway(config({ host: '127.0.0.1', port, tls: true, tls_sni: 'api.example.test', ssl_verify: false }));
    try {
      await get(`${verified.url}/verified`);
      await get(`${unverified.url}/unverified`);
      await eventually(() => lines.length === 1, 10000, 'the record over TLS');
      assert.equal(JSON.parse(lines[0]!).request.uri, '/unverified');
      assert.ok(sni.includes('api.example.test'));
      await eventually(() => verified.logs.some((l) => l.msg === 'log batch failed: retrying' && /certificate/i.test(String(l.err))), 10000, 'a certificate error');
    } finally {
      await verified.close();
      await unverified.close();
      await new Promise<void>((ok) => srv.close(() => ok()));
    }
  });

  test('config errors', async () => {
    await assert.rejects(startGateway(config({ host: '127.0.0.1' })), /port/);
    await assert.rejects(startGateway(config({ host: '127.0.0.1', port: 1, custom_fields_by_lua: { a: 'x' } })), /custom_fields_by_lua is not supported/);
  });
});
