/**
 * The access log file: every line is the JSON of the record the log reports
 * (same values, same number formatting), across its 32 KB write batches, for
 * lines that need escaping, non-ASCII text and lines larger than a batch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { request } from 'undici';
import { startGateway, startUpstream } from '../../test/helpers/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-access-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the access log file holds exactly the records, in order, across batches', async () => {
  const up = await startUpstream();
  const file = join(dir, 'access.log');
  const gw = await startGateway({
    server: { access_log: file },
    services: [
      {
        name: 's',
        url: up.url,
        routes: [
          { name: 'r', paths: ['/'], methods: ['GET'] },
          // A refusal: the line carries the plugin's decision.
          { name: 'denied', paths: ['/denied'], methods: ['GET'], plugins: [{ name: 'request-termination', config: { status_code: 403, message: 'no' } }] },
        ],
      },
    ],
    // Every line carries a trace id (the spans go to the echo upstream).
    plugins: [{ name: 'opentelemetry', config: { traces_endpoint: `${up.url}/v1/traces` } }],
  });
  const paths = [
    '/plain',
    '/quote"and\\backslash',
    '/tab%09and%22encoded',
    '/non-ascii-host',
    '/denied',
    `/long?q=${'x'.repeat(11_000)}`, // a long plain line
    `/long-quoted?q=${'x'.repeat(11_000)}"`,
    '/long-host',
    '/unrouted', // sent with DELETE: no route, a line with route and service null
  ];
  try {
    for (let i = 0; i < 300; i++) {
      const path = i < paths.length ? paths[i]! : `/n/${i}?q=${i}`;
      // A Host header byte above 0x7f reaches the log as a non-ASCII character (node reads header bytes as latin1).
      // A Host of 6,000 such characters makes a line of ~36 KB once escaped: longer than a batch buffer.
      const headers = path === '/non-ascii-host' ? { host: 'caf\u00e9.example' } : path === '/long-host' ? { host: '\u00e9'.repeat(6000) } : {};
      const res = await request(`${gw.url}${path}`, { headers, method: path === '/unrouted' ? 'DELETE' : 'GET' });
      await res.body.dump();
      assert.equal(res.statusCode, path === '/denied' ? 403 : path === '/unrouted' ? 404 : 200);
    }
  } finally {
    await gw.close();
    await up.close();
  }
  const text = readFileSync(file, 'utf8');
  assert.ok(text.length > 3 * 32768, 'spans several batches');
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  assert.equal(lines.length, 300);
  assert.ok(gw.accessLog.some((r) => r.route === null && r.service === null && r.status === 404), 'a request without a route is logged too');
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), gw.accessLog, 'each line is its record');
  assert.ok(gw.accessLog.every((r) => typeof r.trace_id === 'string'));
  assert.equal(gw.accessLog.filter((r) => Array.isArray(r.decisions)).length, 1, 'the refusal has its decision');
  // The latencies are written as the numbers themselves (three decimals at most).
  for (const line of lines) assert.match(line, /"latency":\{"total_ms":\d+(\.\d{1,3})?,"upstream_ms":\d+(\.\d{1,3})?,"gateway_ms":\d+(\.\d{1,3})?\}/);
});
