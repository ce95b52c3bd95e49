/**
 * opentelemetry: what a real OTLP/HTTP receiver (node:http, decoding the JSON
 * payloads) and a real upstream see — the trace tree (ids, parents, names,
 * kinds, attributes, status, decision events), W3C and B3 propagation,
 * sampling, the trace id in the access log and a response header, and a dead
 * collector that never holds a request (drops counted).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { eventually, freePort, request } from '../../../test/helpers/process.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: Record<string, unknown> }[];
  events?: { name: string; timeUnixNano: string; attributes: { key: string; value: Record<string, unknown> }[] }[];
  status: { code: number; message?: string };
}

let upstream: TestUpstream;
let gw: TestGateway;
let receiver: Server;
const payloads: { headers: Record<string, unknown>; body: any }[] = [];
const spans = (): OtlpSpan[] => payloads.flatMap((p) => p.body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)));
const ofTrace = (traceId: string) => spans().filter((s) => s.traceId === traceId);
const attr = (s: { attributes: OtlpSpan['attributes'] }, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue)));
};
const TRACE = /^[0-9a-f]{32}$/;
const SPAN = /^[0-9a-f]{16}$/;

/** The upstream request that carried this request id. */
const seenBy = (requestId: string) => upstream.requests.find((r) => r.headers['x-request-id'] === requestId)!;

/** Waits until the receiver has `n` spans of the trace. */
async function traceOf(traceId: string, n: number): Promise<OtlpSpan[]> {
  await eventually(() => ofTrace(traceId).length >= n, 10000, `${n} spans of trace ${traceId} (got ${ofTrace(traceId).map((s) => s.name)})`);
  return ofTrace(traceId);
}

before(async () => {
  upstream = await startUpstream();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      payloads.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', () => ok()));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  const deadPort = await freePort();
  const otel = (config: object = {}) => ({ name: 'opentelemetry', config: { traces_endpoint: endpoint, queue: { max_coalescing_delay: 0.05 }, ...config } });
  gw = await startGateway({
    consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] }],
    services: [
      {
        name: 'api',
        url: upstream.url,
        routes: [
          { name: 'traced', paths: ['/traced'] },
          { name: 'secure', paths: ['/secure'], plugins: [{ name: 'key-auth', config: {} }] },
          { name: 'unsampled', paths: ['/unsampled'], plugins: [otel({ sampling_rate: 0 })] },
          { name: 'caller-decides', paths: ['/caller-decides'], plugins: [otel({ sampling_rate: 0, respect_incoming_sampling: 'always' })] },
          { name: 'rate-decides', paths: ['/rate-decides'], plugins: [otel({ respect_incoming_sampling: 'never' })] },
          { name: 'b3', paths: ['/b3'], plugins: [otel({ propagation: { extract: ['b3', 'w3c'], inject: ['b3', 'w3c'], clear: ['x-b3-flags'] } })] },
          { name: 'single', paths: ['/single'], plugins: [otel({ header_type: 'b3-single' })] },
          {
            name: 'dead-collector',
            paths: ['/dead-collector'],
            plugins: [otel({ traces_endpoint: `http://127.0.0.1:${deadPort}/v1/traces`, queue: { max_entries: 5, max_batch_size: 1, max_coalescing_delay: 0, max_retry_time: 30 } })],
          },
        ],
      },
      { name: 'down', url: `http://127.0.0.1:${deadPort}`, retries: 0, routes: [{ name: 'down', paths: ['/down'] }] },
    ],
    plugins: [
      otel({
        // A configured Content-Length is replaced by the batch's own (every test below reads what this instance exported).
        headers: { authorization: 'Bearer otlp-token', 'Content-Length': '1' },
        resource_attributes: { 'service.name': 'edge-gateway', 'deployment.environment': 'test' },
        http_response_header_for_traceid: 'x-trace-id',
      }),
    ],
  });
});

after(async () => {
  await gw.close();
  await upstream.close();
  receiver.close();
});

describe('opentelemetry', () => {
  test('continues an incoming W3C trace: the upstream gets our client span as parent; the tree arrives over OTLP', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const r = await request(gw.port, '/traced/x?q=1', { headers: { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=abc', 'user-agent': 'otel-test' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-trace-id'], traceId, 'http_response_header_for_traceid');
    const seen = seenBy(String(r.headers['x-request-id']));
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(seen.headers.traceparent));
    assert.ok(m, `traceparent upstream: ${seen.headers.traceparent}`);
    assert.equal(m[1], traceId, 'same trace');
    assert.notEqual(m[2], callerSpan, 'the parent the upstream sees is the gateway span, not the caller');
    assert.equal(seen.headers.tracestate, 'vendor=abc');

    const tree = await traceOf(traceId, 3);
    const root = tree.find((s) => s.kind === 2)!;
    assert.equal(root.name, 'GET traced');
    assert.equal(root.parentSpanId, callerSpan);
    assert.equal(root.traceState, 'vendor=abc');
    assert.match(root.spanId, SPAN);
    assert.equal(attr(root, 'http.request.method'), 'GET');
    assert.equal(attr(root, 'url.path'), '/traced/x');
    assert.equal(attr(root, 'http.response.status_code'), 200);
    assert.equal(attr(root, 'palisade.route'), 'traced');
    assert.equal(attr(root, 'palisade.service'), 'api');
    assert.equal(attr(root, 'user_agent.original'), 'otel-test');
    assert.equal(attr(root, 'palisade.request_id'), r.headers['x-request-id']);
    assert.equal(root.status.code, 0);

    const client = tree.find((s) => s.kind === 3)!;
    assert.equal(client.name, 'kong.balancer');
    assert.equal(client.spanId, m[2], "the client span is the upstream's parent");
    assert.equal(client.parentSpanId, root.spanId);
    assert.equal(attr(client, 'server.address'), '127.0.0.1');
    assert.equal(attr(client, 'server.port'), upstream.port);
    assert.equal(attr(client, 'http.response.status_code'), 200);
    assert.equal(attr(client, 'palisade.tries'), 1);

    const phases = tree.filter((s) => s.kind === 1);
    assert.ok(phases.some((s) => s.name === 'kong.access.plugin.opentelemetry'), phases.map((s) => s.name).join());
    assert.ok(phases.some((s) => s.name === 'kong.header_filter.plugin.opentelemetry'));
    for (const s of [...phases, client]) {
      assert.equal(s.parentSpanId, root.spanId);
      assert.ok(BigInt(s.startTimeUnixNano) >= BigInt(root.startTimeUnixNano) && BigInt(s.endTimeUnixNano) <= BigInt(root.endTimeUnixNano), `${s.name} inside the request`);
      assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
    }
    assert.equal(new Set(tree.map((s) => s.spanId)).size, tree.length, 'span ids are unique');

    const p = payloads.find((x) => x.body.resourceSpans[0].scopeSpans[0].spans.some((s: OtlpSpan) => s.traceId === traceId))!;
    assert.equal(p.headers.authorization, 'Bearer otlp-token', 'configured headers');
    assert.equal(p.headers['content-type'], 'application/json');
    const resource = p.body.resourceSpans[0].resource;
    assert.equal(attr(resource, 'service.name'), 'edge-gateway');
    assert.equal(attr(resource, 'deployment.environment'), 'test');
    assert.ok(attr(resource, 'service.version'));
    assert.equal(p.body.resourceSpans[0].scopeSpans[0].scope.name, 'palisade');

    const log = gw.accessLog.find((l) => l.request_id === r.headers['x-request-id'])!;
    assert.equal(log.trace_id, traceId, 'trace id in the access log');
  });

  test('starts a trace when the request carries none', async () => {
    const r = await request(gw.port, '/traced');
    const tp = String(seenBy(String(r.headers['x-request-id'])).headers.traceparent);
    const [, traceId, parent, flags] = tp.split('-');
    assert.match(traceId!, TRACE);
    assert.notEqual(traceId, '0'.repeat(32));
    assert.equal(flags, '01');
    assert.equal(r.headers['x-trace-id'], traceId);
    const tree = await traceOf(traceId!, 3);
    const root = tree.find((s) => s.kind === 2)!;
    assert.equal(root.parentSpanId, undefined, 'a root span without a remote parent');
    assert.equal(tree.find((s) => s.kind === 3)!.spanId, parent);
  });

  test('a refused request: decision events on the server span, the plugin phase span, no upstream span', async () => {
    const r = await request(gw.port, '/secure');
    assert.equal(r.status, 401);
    const traceId = String(r.headers['x-trace-id']);
    assert.match(traceId, TRACE);
    const tree = await traceOf(traceId, 2);
    const root = tree.find((s) => s.kind === 2)!;
    assert.equal(attr(root, 'http.response.status_code'), 401);
    assert.equal(attr(root, 'palisade.response.source'), 'gateway');
    assert.equal(root.status.code, 0, 'a 4xx answer is not a server error');
    const ev = root.events!.find((e) => e.name === 'palisade.decision')!;
    assert.equal(attr(ev, 'palisade.plugin'), 'key-auth');
    assert.equal(attr(ev, 'palisade.outcome'), 'deny');
    assert.equal(attr(ev, 'http.response.status_code'), 401);
    assert.ok(tree.some((s) => s.name === 'kong.access.plugin.key-auth'));
    assert.ok(!tree.some((s) => s.kind === 3));

    const ok = await request(gw.port, '/secure', { headers: { apikey: 'alice-key' } });
    const okTree = await traceOf(String(ok.headers['x-trace-id']), 3);
    const okRoot = okTree.find((s) => s.kind === 2)!;
    assert.equal(attr(okRoot, 'palisade.consumer'), 'alice');
    assert.equal(attr(okRoot.events!.find((e) => e.name === 'palisade.decision')!, 'palisade.outcome'), 'authenticated');
  });

  test('an upstream failure: error status on the server and client spans', async () => {
    const r = await request(gw.port, '/down');
    assert.equal(r.status, 502);
    const tree = await traceOf(String(r.headers['x-trace-id']), 2);
    const root = tree.find((s) => s.kind === 2)!;
    assert.equal(root.status.code, 2);
    assert.match(String(root.status.message), /^PALISADE_ERR_/);
    assert.equal(attr(root, 'error.type'), root.status.message);
    const client = tree.find((s) => s.kind === 3)!;
    assert.equal(client.status.code, 2);
    assert.equal(attr(client, 'http.response.status_code'), undefined, 'the upstream never answered');
  });

  test('sampling: the caller decided not to sample / sampling_rate 0 — propagated, never exported', async () => {
    const traceId = 'a'.repeat(31) + 'b';
    const r = await request(gw.port, '/traced', { headers: { traceparent: `00-${traceId}-${'1'.repeat(16)}-00` } });
    const tp = String(seenBy(String(r.headers['x-request-id'])).headers.traceparent);
    assert.match(tp, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    const r2 = await request(gw.port, '/unsampled');
    const tp2 = String(seenBy(String(r2.headers['x-request-id'])).headers.traceparent);
    assert.match(tp2, /-00$/);
    await request(gw.port, '/traced', { headers: { traceparent: `00-${'c'.repeat(32)}-${'1'.repeat(16)}-01` } });
    await traceOf('c'.repeat(32), 3); // exported after the two above
    assert.deepEqual(ofTrace(traceId), []);
    assert.deepEqual(ofTrace(tp2.split('-')[1]!), []);
    // An invalid traceparent starts a new trace.
    const r3 = await request(gw.port, '/traced', { headers: { traceparent: `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` } });
    assert.notEqual(String(seenBy(String(r3.headers['x-request-id'])).headers.traceparent).split('-')[1], '0'.repeat(32));
  });

  test("sampling: a caller's \"sampled\" does not override sampling_rate (Kong); respect_incoming_sampling always / never", async () => {
    const flagsUpstream = async (path: string, traceId: string, flags: string) => {
      const r = await request(gw.port, path, { headers: { traceparent: `00-${traceId}-${'3'.repeat(16)}-${flags}` } });
      assert.equal(r.status, 200);
      const tp = String(seenBy(String(r.headers['x-request-id'])).headers.traceparent);
      assert.equal(tp.split('-')[1], traceId, 'the trace continues');
      return tp.split('-')[3];
    };
    const forced = 'e1'.repeat(16);
    assert.equal(await flagsUpstream('/unsampled', forced, '01'), '00', 'sampling_rate 0: a client cannot force tracing');
    const trusted = 'e2'.repeat(16);
    assert.equal(await flagsUpstream('/caller-decides', trusted, '01'), '01', 'always: the caller decides');
    await traceOf(trusted, 1);
    const optOut = 'e3'.repeat(16);
    assert.equal(await flagsUpstream('/rate-decides', optOut, '00'), '01', 'never: a client cannot opt out either');
    await traceOf(optOut, 1);
    assert.deepEqual(ofTrace(forced), []);
  });

  test('tracestate: kept when valid (empty members removed); dropped when invalid, too long or over 32 members — the traceparent is kept', async () => {
    const sent = async (tracestate: string | string[]) => {
      const traceId = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
      const states = Array.isArray(tracestate) ? tracestate : [tracestate];
      const r = await request(gw.port, '/traced', { headers: ['host', `127.0.0.1:${gw.port}`, 'traceparent', `00-${traceId}-${'4'.repeat(16)}-01`, ...states.flatMap((v) => ['tracestate', v])] });
      assert.equal(r.status, 200, r.body);
      const h = seenBy(String(r.headers['x-request-id'])).headers;
      assert.equal(String(h.traceparent).split('-')[1], traceId, 'the traceparent is kept');
      const root = (await traceOf(traceId, 3)).find((s) => s.kind === 2)!;
      assert.equal(root.traceState, h.tracestate, 'the same tracestate on the span');
      return h.tracestate;
    };
    assert.equal(await sent('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7 ,,tenant1@sys=x y'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,tenant1@sys=x y');
    assert.equal(await sent(['a=1', 'b=2']), 'a=1,b=2');
    for (const bad of ['Upper=1', 'novalue', 'a=1,a=2', 'ok=1,bad key=2', 'a=b,=c', `a=${'x'.repeat(600)}`, Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')]) {
      assert.equal(await sent(bad), undefined, `dropped: ${bad.slice(0, 40)}`);
    }
    assert.equal(await sent(Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(',')), Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(','));
  });

  test('B3: extracted (64-bit ids padded), injected as B3 and W3C; propagation.clear', async () => {
    const r = await request(gw.port, '/b3', { headers: { 'x-b3-traceid': '463ac35c9f6413ad', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1', 'x-b3-flags': '0' } });
    const h = seenBy(String(r.headers['x-request-id'])).headers;
    const traceId = '0000000000000000463ac35c9f6413ad';
    assert.equal(h['x-b3-traceid'], traceId);
    assert.match(String(h['x-b3-spanid']), SPAN);
    assert.equal(h['x-b3-sampled'], '1');
    assert.equal(h['x-b3-flags'], undefined, 'cleared');
    assert.equal(h.traceparent, `00-${traceId}-${h['x-b3-spanid']}-01`);
    const tree = await traceOf(traceId, 3);
    assert.equal(tree.find((s) => s.kind === 2)!.parentSpanId, 'a2fb4a1d1a96d312');
    assert.equal(h['x-b3-parentspanid'], tree.find((s) => s.kind === 2)!.spanId);

    const r2 = await request(gw.port, '/single', { headers: { traceparent: `00-${'d'.repeat(32)}-${'2'.repeat(16)}-01` } });
    const h2 = seenBy(String(r2.headers['x-request-id'])).headers;
    assert.match(String(h2.b3), new RegExp(`^${'d'.repeat(32)}-[0-9a-f]{16}-1-[0-9a-f]{16}$`), 'header_type b3-single: inject b3 single, extract any format');
    assert.equal(String(h2.traceparent).split('-')[1], 'd'.repeat(32), "Kong's legacy header_type injects the incoming format too (preserve, then b3-single)");

    // Kong's legacy extraction order: b3 before w3c.
    const r3 = await request(gw.port, '/single', { headers: { traceparent: `00-${'e'.repeat(32)}-${'3'.repeat(16)}-01`, 'x-b3-traceid': 'f'.repeat(32), 'x-b3-spanid': '4'.repeat(16), 'x-b3-sampled': '1' } });
    const h3 = seenBy(String(r3.headers['x-request-id'])).headers;
    assert.equal(String(h3.b3).split('-')[0], 'f'.repeat(32));
    assert.equal(h3['x-b3-traceid'], 'f'.repeat(32), 'the incoming format (b3) is injected too');
  });

  test('a global and a route instance: the route instance alone traces the request (one instance per plugin, as in Kong)', async () => {
    const r = await request(gw.port, '/b3');
    const h = seenBy(String(r.headers['x-request-id'])).headers;
    const traceId = String(h['x-b3-traceid']);
    assert.match(traceId, TRACE);
    assert.equal(String(h.traceparent).split('-')[1], traceId, 'the route instance injects b3 and w3c for one trace');
    const tree = await traceOf(traceId, 3);
    assert.equal(tree.filter((s) => s.kind === 2).length, 1, 'exported once');
    assert.equal(r.headers['x-trace-id'], undefined, 'the global instance (it sets x-trace-id) did not run');
    assert.deepEqual(
      tree.filter((s) => s.kind === 1).map((s) => s.name),
      ['kong.access.plugin.opentelemetry'],
      'without http_response_header_for_traceid the instance has no response phase: no header_filter span',
    );
    const root = tree.find((s) => s.kind === 2)!;
    const payload = payloads.find((p) => JSON.stringify(p.body).includes(root.spanId))!;
    assert.equal(payload.headers.authorization, undefined, "the route instance's exporter (the global one sends an authorization header)");
    assert.equal(gw.accessLog.find((l) => l.request_id === r.headers['x-request-id'])!.trace_id, traceId);
  });

  test('a dead collector never holds a request; the spans it cannot take are dropped and counted', async () => {
    const n = 20;
    const started = Date.now();
    for (let i = 0; i < n; i++) assert.equal((await request(gw.port, '/dead-collector')).status, 200);
    assert.ok(Date.now() - started < 10000, 'requests are not slowed down by the exporter');
    const dropped = async () => {
      const line = (await gw.gateway.metrics.text()).split('\n').find((l) => l.startsWith('palisade_otel_spans_dropped_total{reason="queue_full"}'));
      return line === undefined ? 0 : Number(line.split(' ')[1]);
    };
    // 20 requests × 3 spans (request, access phase, upstream call) into a queue of 5 that cannot deliver: most are dropped at once.
    await eventually(async () => (await dropped()) >= n * 3 - 10, 10000, 'dropped spans counted');
  });

  test('config errors: unimplemented formats, logs_endpoint, no endpoint', async () => {
    const bad = (config: object) => startGateway({ plugins: [{ name: 'opentelemetry', config }] });
    await assert.rejects(bad({ traces_endpoint: 'http://127.0.0.1:4318/v1/traces', propagation: { extract: ['jaeger'] } }), /'jaeger' is not implemented/);
    await assert.rejects(bad({ traces_endpoint: 'http://127.0.0.1:4318/v1/traces', logs_endpoint: 'http://127.0.0.1:4318/v1/logs' }), /traces only/);
    await assert.rejects(bad({}), /traces_endpoint is required/);
    await assert.rejects(bad({ traces_endpoint: 'http://x', sampling_rate: 2 }), /sampling_rate/);
  });
});
