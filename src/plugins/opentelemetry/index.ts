/**
 * opentelemetry — Kong's plugin (kong/plugins/opentelemetry): continues the
 * caller's trace (W3C traceparent/tracestate, B3) or starts one, sends the
 * trace context upstream with the id of the span that calls the upstream, and
 * exports the request's spans over OTLP/HTTP JSON in batches:
 *   "<METHOD> <route>"            server span, the whole request (security decisions as events)
 *   ├─ kong.<phase>.plugin.<name> one per plugin handler run (rewrite, access, header_filter = response, body_filter = body)
 *   └─ kong.balancer              client span, the upstream call (its last try)
 * The trace id goes to the access log. Sampling: sampling_rate on the trace
 * id; a caller's "not sampled" is kept, as in Kong (respect_incoming_sampling
 * says which of the caller's decisions count). An invalid tracestate is
 * dropped (W3C Trace Context §3.3), the traceparent kept. Spans are encoded in the log
 * phase and exported by a bounded queue: a slow or dead collector never holds
 * a request (dropped spans are counted in palisade_otel_spans_dropped_total).
 */
import { readFileSync } from 'node:fs';
import { definePlugin, dropCounter, splitTarget, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { attrKey, event, intAttr, span, strAttr } from './encode.ts';
import { spanNames } from './names.ts';
import { OtlpExporter, SPAN_KIND } from './otlp.ts';
import { extract, inject, newIds, newSpanId, sampledByRatio, type Format } from './propagation.ts';
import { IMPLEMENTED, OpentelemetrySchema, type OpentelemetryConfig } from './schema.ts';

const VERSION: string = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version;
/** Attribute key fragments, built once. */
const K = {
  method: attrKey('http.request.method'), scheme: attrKey('url.scheme'), path: attrKey('url.path'), address: attrKey('server.address'),
  port: attrKey('server.port'), client: attrKey('client.address'), peer: attrKey('network.peer.address'), protocol: attrKey('network.protocol.version'),
  status: attrKey('http.response.status_code'), requestId: attrKey('palisade.request_id'), source: attrKey('palisade.response.source'),
  configVersion: attrKey('palisade.config_version'), userAgent: attrKey('user_agent.original'), route: attrKey('palisade.route'),
  service: attrKey('palisade.service'), consumer: attrKey('palisade.consumer'), errorType: attrKey('error.type'), plugin: attrKey('palisade.plugin'),
  phase: attrKey('palisade.phase'), outcome: attrKey('palisade.outcome'), reason: attrKey('palisade.reason'), tries: attrKey('palisade.tries'),
  peerService: attrKey('peer.service'),
} as const;

/**
 * Where the request's trace is kept: a key of ctx.shared no other plugin can
 * name (one opentelemetry instance applies to a request, like any plugin). A
 * WeakMap keyed by the context cost more: every entry is an ephemeron the
 * garbage collector tracks.
 */
const TRACE = Symbol('opentelemetry trace');
const traceOf = (ctx: PdkContext): Trace | undefined => (ctx.shared as Record<symbol, Trace | undefined>)[TRACE];

interface Trace {
  readonly traceId: string;
  readonly rootId: string;
  /** The span that calls the upstream: what the upstream sees as its parent. */
  readonly clientId: string;
  readonly parentId: string;
  readonly sampled: boolean;
  readonly tracestate: string | null;
  readonly format: Format | null;
  injected: boolean;
}

/** Propagation from Kong's settings: propagation.extract/inject, else the deprecated header_type. */
function propagationOf(config: OpentelemetryConfig): { extract: Format[]; inject: ('preserve' | Format)[]; fallback: Format } {
  const p = config.propagation;
  const fallback = p.default_format as Format;
  if (p.extract !== undefined || p.inject !== undefined) return { extract: (p.extract ?? []) as Format[], inject: (p.inject ?? []) as ('preserve' | Format)[], fallback };
  // Kong's get_plugin_params: the old module's extraction order (b3 before w3c), and a header_type other than
  // preserve/ignore injects the incoming format as well as its own.
  const all: Format[] = ['b3', 'b3-single', 'w3c'];
  if (config.header_type === 'preserve') return { extract: all, inject: ['preserve'], fallback };
  if (config.header_type === 'ignore') return { extract: [], inject: [fallback], fallback };
  return { extract: all, inject: ['preserve', config.header_type as Format], fallback };
}

function validate(config: OpentelemetryConfig): string | null {
  if (config.logs_endpoint !== undefined) return 'logs_endpoint: Palisade exports traces only over OTLP (use http-log for logs)';
  if (config.traces_endpoint === undefined && config.endpoint === undefined) return 'traces_endpoint is required';
  const p = propagationOf(config);
  const used = [...p.extract, ...p.inject.filter((f) => f !== 'preserve'), ...(p.inject.includes('preserve') ? [p.fallback] : [])];
  const missing = used.find((f) => !IMPLEMENTED.has(f));
  return missing === undefined ? null : `propagation format '${missing}' is not implemented by Palisade (w3c, b3 and b3-single are)`;
}

function create(config: OpentelemetryConfig, services: PluginServices) {
  const prop = propagationOf(config);
  const clear = (config.propagation.clear ?? []).map((h) => h.toLowerCase());
  const rate = config.sampling_rate ?? 1;
  const respect = config.respect_incoming_sampling;
  /** Kong's kong.tracing:get_sampling_decision() with not_sampled; `parent` is the caller's decision (null: none). */
  const decide = (parent: boolean | null, traceId: string): boolean =>
    parent !== null && (respect === 'always' || (respect === 'not_sampled' && !parent)) ? parent : sampledByRatio(traceId, rate);
  const responseHeader = config.http_response_header_for_traceid ?? null;
  const onDrop = dropCounter(services.metrics.tallyCounter('palisade_otel_spans_dropped_total', 'Spans not exported: the queue was full or the OTLP endpoint kept failing.', ['reason']));
  let exporter: OtlpExporter | null = null;
  let disposed = false;
  const open = () =>
    new OtlpExporter(
      {
        url: (config.traces_endpoint ?? config.endpoint)!,
        headers: config.headers ?? {},
        resource: config.resource_attributes ?? {},
        queue: {
          ...config.queue,
          max_batch_size: config.batch_span_count ?? config.queue.max_batch_size,
          max_coalescing_delay: config.batch_flush_delay ?? config.queue.max_coalescing_delay,
        },
        connectTimeout: config.connect_timeout,
        sendTimeout: config.send_timeout,
        readTimeout: config.read_timeout,
        version: VERSION,
      },
      services.logger,
      onDrop,
    );

  /** The request's trace, made on first use (the caller's context or a new trace). */
  function trace(ctx: PdkContext): Trace {
    let t = traceOf(ctx);
    if (t !== undefined) return t;
    const parent = prop.extract.length === 0 ? null : extract(ctx, prop.extract);
    const ids = newIds();
    const traceId = parent?.traceId ?? ids.traceId;
    t = {
      traceId,
      rootId: ids.rootId,
      clientId: ids.clientId,
      parentId: parent?.parentId ?? '',
      sampled: decide(parent?.sampled ?? null, traceId),
      tracestate: parent?.tracestate ?? null,
      format: parent?.format ?? null,
      injected: false,
    };
    (ctx.shared as Record<symbol, Trace>)[TRACE] = t;
    ctx.traceId = traceId;
    return t;
  }

  function propagate(ctx: PdkContext): void {
    const t = trace(ctx);
    if (t.injected) return;
    t.injected = true;
    for (const h of clear) ctx.request.removeHeader(h);
    const out = { traceId: t.traceId, spanId: t.clientId, parentId: t.rootId, sampled: t.sampled, tracestate: t.format === 'w3c' ? t.tracestate : null };
    for (const f of prop.inject) inject(ctx, f === 'preserve' ? (t.format ?? prop.fallback) : f, out);
  }

  /** The request's spans, encoded as OTLP JSON into the exporter's queue. */
  function exportSpans(e: OtlpExporter, ctx: PdkContext, t: Trace): void {
    const tm = ctx.timings;
    const t0 = tm.startedAt;
    const req = ctx.request;
    const res = ctx.response;
    const route = ctx.route === null ? null : (ctx.route.name ?? ctx.route.id);
    const service = ctx.service === null ? null : (ctx.service.name ?? ctx.service.id);
    const runs = ctx.phaseSpans;
    const method = req.method;

    let attrs =
      `${strAttr(K.method, method)},${strAttr(K.scheme, req.scheme)},${strAttr(K.path, req.path)},${strAttr(K.address, req.host)},${intAttr(K.port, req.port)}` +
      `,${strAttr(K.client, req.clientIp)},${strAttr(K.peer, req.remoteAddress)},${strAttr(K.protocol, req.httpVersion)},${intAttr(K.status, res.status)}` +
      `,${strAttr(K.requestId, ctx.requestId)},${strAttr(K.source, res.source)},${strAttr(K.configVersion, ctx.configVersion)}`;
    const ua = req.header('user-agent');
    if (ua !== undefined) attrs += `,${strAttr(K.userAgent, ua)}`;
    if (route !== null) attrs += `,${strAttr(K.route, route)}`;
    if (service !== null) attrs += `,${strAttr(K.service, service)}`;
    const c = ctx.consumer;
    if (c !== null) attrs += `,${strAttr(K.consumer, c.username ?? c.custom_id ?? c.id)}`;
    if (ctx.errorCode !== null) attrs += `,${strAttr(K.errorType, ctx.errorCode)}`;
    const decisions = ctx.decisions;
    let events = '';
    for (let i = 0; i < decisions.length; i++) {
      const d = decisions[i]!;
      let run = null;
      for (let j = 0; j < runs.length; j++) if (runs[j]!.plugin === d.plugin) { run = runs[j]!; break; }
      const at = t0 + (run === null ? 0 : run.end >= 0 ? run.end : run.start);
      const ev = event(at, `${strAttr(K.plugin, d.plugin)},${strAttr(K.outcome, d.outcome)},${strAttr(K.reason, d.reason)}${d.status > 0 ? `,${intAttr(K.status, d.status)}` : ''}`);
      events = i === 0 ? ev : `${events},${ev}`;
    }
    e.add(span({
      traceId: t.traceId, spanId: t.rootId, parentSpanId: t.parentId, traceState: t.tracestate, name: route === null ? method : spanNames.root(method, route), kind: SPAN_KIND.server,
      startMs: t0, endMs: t0 + tm.total, attrs, events, error: res.status >= 500 ? (ctx.errorCode ?? `HTTP ${res.status}`) : null,
    }));
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      e.add(span({
        traceId: t.traceId, spanId: newSpanId(), parentSpanId: t.rootId, traceState: null, name: spanNames.phase(r.phase, r.plugin), kind: SPAN_KIND.internal,
        startMs: t0 + r.start, endMs: t0 + (r.end >= 0 ? r.end : r.start), attrs: `${strAttr(K.plugin, r.plugin)},${strAttr(K.phase, r.phase)}`, events: '', error: null,
      }));
    }
    if (tm.upstreamStart >= 0) {
      const { ip: host, port } = splitTarget(ctx.upstreamTarget ?? '');
      const answered = res.source === 'upstream';
      const begin = t0 + tm.upstreamStart;
      let attrs = `${strAttr(K.address, host)},${strAttr(K.method, method)},${intAttr(K.tries, ctx.tries)}`;
      if (port >= 0) attrs += `,${intAttr(K.port, port)}`;
      if (service !== null) attrs += `,${strAttr(K.peerService, service)}`;
      if (answered) attrs += `,${intAttr(K.status, res.status)}`;
      e.add(span({
        traceId: t.traceId, spanId: t.clientId, parentSpanId: t.rootId, traceState: null, name: 'kong.balancer', kind: SPAN_KIND.client,
        startMs: begin, endMs: begin + tm.upstream, attrs, events: '', error: !answered || res.status >= 400 ? (ctx.errorCode ?? `HTTP ${res.status}`) : null,
      }));
    }
  }

  return {
    tracePhases: true,
    access(ctx: PdkContext): void {
      propagate(ctx);
    },
    // Only with http_response_header_for_traceid: a handler that does nothing would still cost a call and a span.
    ...(responseHeader === null ? {} : { response: (ctx: PdkContext): void => ctx.response.setHeader(responseHeader, trace(ctx).traceId) }),
    log(ctx: PdkContext): void {
      const t = trace(ctx);
      if (!t.sampled || disposed) return;
      exportSpans((exporter ??= open()), ctx, t);
    },
    dispose(): Promise<void> | void {
      disposed = true;
      const e = exporter;
      exporter = null;
      return e?.close(); // awaited (briefly) at shutdown: what waits is sent
    },
  };
}

export default definePlugin({
  name: 'opentelemetry',
  priority: 14,
  description: "OpenTelemetry tracing (Kong's opentelemetry): W3C/B3 propagation upstream, request, plugin and upstream spans exported over OTLP/HTTP.",
  schema: OpentelemetrySchema,
  validate,
  create,
});
