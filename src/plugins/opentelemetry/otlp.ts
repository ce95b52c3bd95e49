/**
 * OTLP/HTTP JSON export of spans (opentelemetry-proto's JSON mapping: ids as
 * hex, times as decimal nanosecond strings, enums as integers). Spans are
 * encoded when the request is logged and wait in a bounded LogQueue (the PDK's
 * Kong-style queue: batches, retries with backoff, oldest dropped and counted
 * when full); a batch is one POST. Nothing here waits on the network inside a
 * request.
 */
import { hostname } from 'node:os';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import { LogQueue, type DropListener, type QueueParameters } from '../../pdk/index.ts';

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;
export const STATUS = { unset: 0, ok: 1, error: 2 } as const;

export type AttrValue = string | number | boolean;

export interface SpanEvent {
  readonly name: string;
  /** ms since the epoch (fractional). */
  readonly time: number;
  readonly attributes: Record<string, AttrValue>;
}

export interface Span {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span without a remote parent. */
  readonly parentSpanId: string;
  readonly traceState: string | null;
  readonly name: string;
  readonly kind: number;
  /** ms since the epoch (fractional). */
  readonly start: number;
  readonly end: number;
  readonly attributes: Record<string, AttrValue>;
  readonly status: { code: number; message?: string };
  readonly events?: readonly SpanEvent[];
}

/** ms since the epoch (fractional) → nanoseconds as a decimal string (no float precision lost on the ms part). */
export function nanos(ms: number): string {
  let whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac >= 1e6) {
    whole += 1;
    frac = 0;
  }
  return `${whole}${String(frac).padStart(6, '0')}`;
}

function anyValue(v: AttrValue): object {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

export function attributes(attrs: Record<string, AttrValue>): object[] {
  const out: object[] = [];
  for (const key in attrs) out.push({ key, value: anyValue(attrs[key]!) });
  return out;
}

/** One span in OTLP JSON. */
export function encodeSpan(s: Span): string {
  return JSON.stringify({
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId === '' ? {} : { parentSpanId: s.parentSpanId }),
    ...(s.traceState === null ? {} : { traceState: s.traceState }),
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: nanos(s.start),
    endTimeUnixNano: nanos(s.end),
    attributes: attributes(s.attributes),
    ...(s.events && s.events.length > 0
      ? { events: s.events.map((e) => ({ timeUnixNano: nanos(e.time), name: e.name, attributes: attributes(e.attributes) })) }
      : {}),
    status: s.status,
  });
}

export interface ExporterOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly resource: Readonly<Record<string, string>>;
  readonly queue: QueueParameters;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly version: string;
}

/** Batches encoded spans and POSTs them as ExportTraceServiceRequest JSON. */
export class OtlpExporter {
  readonly #queue: LogQueue;
  readonly #opts: ExporterOptions;
  readonly #head: string;
  #agent: Agent | null = null;

  constructor(opts: ExporterOptions, log: Logger, onDrop: DropListener) {
    this.#opts = opts;
    const resource = {
      'service.name': 'palisade',
      'service.version': opts.version,
      'service.instance.id': `${hostname()}:${process.pid}`,
      ...opts.resource,
    };
    this.#head =
      `{"resourceSpans":[{"resource":{"attributes":${JSON.stringify(attributes(resource))}},` +
      `"scopeSpans":[{"scope":{"name":"palisade","version":${JSON.stringify(opts.version)}},"spans":[`;
    this.#queue = new LogQueue('opentelemetry', opts.queue, (batch) => this.#post(batch), log, onDrop);
  }

  /** Queue an encoded span; never blocks (a full queue drops its oldest span). */
  add(span: string): void {
    this.#queue.add(span);
  }

  async #post(batch: string[]): Promise<void> {
    const o = this.#opts;
    this.#agent ??= new Agent({ connect: { timeout: o.connectTimeout }, headersTimeout: o.readTimeout, bodyTimeout: o.readTimeout, keepAliveTimeout: 10_000 });
    const body = `${this.#head}${batch.join(',')}]}]}]}`;
    const res = await request(o.url, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: { 'content-type': 'application/json', ...o.headers },
      body,
      signal: AbortSignal.timeout(o.connectTimeout + o.sendTimeout + o.readTimeout),
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`OTLP endpoint answered ${res.statusCode}`);
  }

  /** Send what waits (bounded by `timeoutMs`), then release the connection pool. */
  async close(timeoutMs = 2000): Promise<void> {
    await this.#queue.close(timeoutMs);
    await this.#agent?.close();
    this.#agent = null;
  }
}
