import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { request } from 'undici';
import { startGateway, startUpstream, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { startTcpCollector, startUdpCollector } from '../../../test/helpers/collectors.ts';
import { eventually } from '../../../test/helpers/process.ts';

/** RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG */
const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) (-|\[.*\]) (.*)$/s;

function parse(message: string) {
  const m = RFC5424.exec(message);
  assert.ok(m, `RFC 5424 message: ${message.slice(0, 120)}`);
  const pri = Number(m[1]);
  return { facility: pri >> 3, severity: pri & 7, timestamp: m[2]!, hostname: m[3]!, app: m[4]!, procid: m[5]!, msgid: m[6]!, sd: m[7]!, record: JSON.parse(m[8]!) };
}

describe('syslog', () => {
  let upstream: TestUpstream;
  before(async () => {
    upstream = await startUpstream((req, res) => {
      const status = Number(req.url!.slice(1)) || 200;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('x');
    });
  });
  after(async () => {
    await upstream?.close();
  });

  const config = (pluginConfig: object) => ({
    services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
    plugins: [{ name: 'syslog', config: pluginConfig }],
  });
  const get = async (url: string) => (await request(url)).body.dump();

  test('RFC 5424 over UDP: facility and severity by status class, log_level filters', async () => {
    const udp = await startUdpCollector();
    const gw = await startGateway(
      config({ port: udp.port, facility: 'local3', successful_severity: 'info', client_errors_severity: 'warning', server_errors_severity: 'crit', log_level: 'warning' }),
    );
    try {
      await get(`${gw.url}/200`); // info is less severe than warning: not sent
      await get(`${gw.url}/404`);
      await get(`${gw.url}/503`);
      await eventually(() => udp.messages.length === 2, 10000, 'two messages');
      const [a, b] = udp.messages.map(parse).sort((x, y) => x.record.response.status - y.record.response.status);
      assert.equal(a!.facility, 19); // local3
      assert.equal(a!.severity, 4); // warning
      assert.equal(a!.record.response.status, 404);
      assert.equal(b!.severity, 2); // crit
      assert.equal(b!.record.response.status, 503);
      assert.equal(a!.app, 'palisade');
      assert.equal(a!.procid, String(process.pid));
      assert.equal(a!.hostname, hostname());
      assert.equal(a!.sd, '-');
      assert.ok(Math.abs(Date.parse(a!.timestamp) - Date.now()) < 60000);
      await get(`${gw.url}/200`);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(udp.messages.length, 2, 'successful requests stay below log_level');
    } finally {
      await gw.close();
      await udp.close();
    }
  });

  test("Kong's defaults: every request at info, facility user", async () => {
    const udp = await startUdpCollector();
    const gw = await startGateway(config({ port: udp.port }));
    try {
      await get(`${gw.url}/200?password=hunter2`);
      await eventually(() => udp.messages.length === 1, 10000, 'one message');
      const m = parse(udp.messages[0]!);
      assert.equal(m.facility, 1);
      assert.equal(m.severity, 6);
      assert.equal(m.record.request.querystring.password, 'REDACTED');
    } finally {
      await gw.close();
      await udp.close();
    }
  });

  test('over UDP a record above the largest datagram is cut at 65,507 bytes, and the rest of its batch still goes out', async () => {
    const udp = await startUdpCollector();
    // Answers are held until all six requests are in, so that their records share a batch.
    const held: ServerResponse[] = [];
    const holding = await startUpstream((_req, res) => {
      held.push(res);
      if (held.length === 6) for (const r of held) r.writeHead(200).end('x');
    });
    const gw = await startGateway({ services: [{ name: 'svc', url: holding.url, routes: [{ name: 'r', paths: ['/'] }] }], plugins: [{ name: 'syslog', config: { port: udp.port } }] });
    try {
      // 14,000 bytes 0xE9 in a header: written as \u00e9 escapes, an ~84 KB record (too big for one datagram).
      const big = new Promise<void>((resolve, reject) => {
        const s = connect(gw.port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: '), Buffer.alloc(14000, 0xe9), Buffer.from('\r\n\r\n')])));
        s.on('data', () => {}).on('end', resolve).on('error', reject);
      });
      await Promise.all([big, ...[1, 2, 3, 4, 5].map((i) => get(`${gw.url}/small${i}`))]);
      await eventually(() => udp.messages.length === 6, 10000, 'six messages');
      const small = udp.messages.filter((m) => m.length < 10000).map(parse);
      assert.deepEqual(small.map((m) => m.record.request.uri).sort(), ['/small1', '/small2', '/small3', '/small4', '/small5']);
      const cut = udp.messages.find((m) => m.length >= 10000)!;
      assert.equal(Buffer.byteLength(cut), 65507);
      assert.match(cut, /^<14>1 .* - \{"request_id":/);
    } finally {
      await gw.close();
      await udp.close();
      await holding.close();
    }
  });

  test('over TCP: newline-terminated RFC 5424 messages on one connection', async () => {
    const tcp = await startTcpCollector();
    const gw = await startGateway(config({ port: tcp.port, protocol: 'tcp', facility: 'auth' }));
    try {
      for (const s of [200, 401, 500]) await get(`${gw.url}/${s}`);
      await eventually(() => tcp.lines.length === 3, 10000, 'three messages');
      const msgs = tcp.lines.map(parse);
      assert.deepEqual(msgs.map((m) => m.record.response.status), [200, 401, 500]);
      assert.ok(msgs.every((m) => m.facility === 4 && m.severity === 6));
      assert.equal(tcp.connections, 1);
    } finally {
      await gw.close();
      await tcp.close();
    }
  });

  test('config errors', async () => {
    await assert.rejects(startGateway(config({ facility: 'LOCAL9' })), /facility/);
    await assert.rejects(startGateway(config({ log_level: 'warn' })), /log_level/);
    await assert.rejects(startGateway(config({ custom_fields_by_lua: { a: 'x' } })), /custom_fields_by_lua is not supported/);
  });
});
