/**
 * A request in flight across a reload finishes on the version it started
 * with — and so does its log phase: its http-log record and its spans are
 * delivered, not lost when the old version's plugins are disposed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, startUpstream } from '../helpers/gateway.ts';
import { startHttpCollector } from '../helpers/collectors.ts';
import { eventually } from '../helpers/process.ts';

test('a request in flight across a reload: its http-log record and its spans are delivered; nothing is counted dropped', async () => {
  const upstream = await startUpstream((req, res) => setTimeout(() => res.writeHead(200).end('ok'), req.url?.includes('slow') ? 800 : 0));
  const logs = await startHttpCollector();
  const traces = await startHttpCollector();
  const config = (tag: string) => ({
    services: [{ name: 'svc', url: upstream.url, tags: [tag], routes: [{ name: 'r', paths: ['/'] }] }],
    plugins: [
      { name: 'http-log', config: { http_endpoint: `${logs.url}/logs`, queue: { max_coalescing_delay: 0.1 } } },
      { name: 'opentelemetry', config: { traces_endpoint: `${traces.url}/v1/traces`, queue: { max_coalescing_delay: 0.1 } } },
    ],
  });
  const gw = await startGateway(config('a'));
  try {
    const slow = request(`${gw.url}/slow`).then((r) => r.body.text());
    await new Promise((r) => setTimeout(r, 200));
    await gw.reload(config('b'));
    assert.equal(await slow, 'ok');
    await (await request(`${gw.url}/after`)).body.text();

    await eventually(() => logs.records().length === 2, 10000, 'two log records');
    const records = logs.records();
    assert.deepEqual(records.map((r) => r.request.uri).sort(), ['/after', '/slow']);
    const slowRecord = records.find((r) => r.request.uri === '/slow');
    assert.deepEqual(slowRecord.service.tags, ['a'], 'logged by the version it started on');

    const paths = () =>
      traces.received.flatMap((r) => (JSON.parse(r.body) as { resourceSpans: { scopeSpans: { spans: { kind: number; attributes: { key: string; value: { stringValue?: string } }[] }[] }[] }[] }).resourceSpans)
        .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))
        .filter((s) => s.kind === 2) // the server (request) span
        .map((s) => s.attributes.find((a) => a.key === 'url.path')?.value.stringValue);
    await eventually(() => paths().length === 2, 10000, 'two request spans');
    assert.deepEqual(paths().sort(), ['/after', '/slow']);
    assert.doesNotMatch(await gw.gateway.metrics.text(), /palisade_log_dropped_total\{[^}]*\} [1-9]/);
  } finally {
    await gw.close();
    await logs.close();
    await traces.close();
    await upstream.close();
  }
});
