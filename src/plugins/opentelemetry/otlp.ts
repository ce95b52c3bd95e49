/**
 * OTLP/HTTP JSON export of spans (opentelemetry-proto's JSON mapping: ids as
 * hex, times as decimal nanosecond strings, enums as integers). Spans are
 * encoded when the request is logged, copied into a LogArena's chunks, and wait in a bounded LogQueue (the PDK's
 * Kong-style queue: batches, retries with backoff, oldest dropped and counted
 * when full); a batch is one POST. Nothing here waits on the network inside a
 * request.
 */
import { hostname } from 'node:os';
import { Agent } from 'undici';
import type { Logger } from 'pino';
import { byteEntries, fragment, LogArena, LogQueue, post, type ByteEntry, type DropListener, type QueueParameters } from '../../pdk/index.ts';
import { attributes } from './encode.ts';

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

const TAIL = fragment(']}]}]}');

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
  readonly #queue: LogQueue<ByteEntry>;
  readonly #arena = new LogArena();
  readonly #opts: ExporterOptions;
  readonly #head: Buffer;
  readonly #url: { origin: string; path: string };
  readonly #headers: Record<string, string>;
  #agent: Agent | null = null;

  constructor(opts: ExporterOptions, log: Logger, onDrop: DropListener) {
    this.#opts = opts;
    const u = new URL(opts.url);
    this.#url = { origin: u.origin, path: `${u.pathname}${u.search}` };
    this.#headers = { 'content-type': 'application/json', ...opts.headers };
    const resource = {
      'service.name': 'palisade',
      'service.version': opts.version,
      'service.instance.id': `${hostname()}:${process.pid}`,
      ...opts.resource,
    };
    this.#head = Buffer.from(
      `{"resourceSpans":[{"resource":{"attributes":${attributes(resource)}},` +
        `"scopeSpans":[{"scope":{"name":"palisade","version":${JSON.stringify(opts.version)}},"spans":[`,
    );
    this.#queue = new LogQueue('opentelemetry', opts.queue, (batch) => this.#post(batch), log, onDrop, byteEntries(this.#arena));
  }

  /** Queue a span (encode.ts's span()); never blocks (a full queue drops its oldest span). */
  add(span: string): void {
    this.#queue.add(this.#arena.add(span));
  }

  async #post(batch: ByteEntry[]): Promise<void> {
    const o = this.#opts;
    this.#agent ??= new Agent({ connect: { timeout: o.connectTimeout }, headersTimeout: o.readTimeout, bodyTimeout: o.readTimeout, keepAliveTimeout: 10_000 });
    const body = LogArena.parts(batch, this.#head, TAIL);
    // Sending and reading share one bound: undici has no separate write timeout.
    const res = await post(this.#agent, this.#url.origin, { path: this.#url.path, headers: this.#headers, body, headersTimeout: o.sendTimeout + o.readTimeout });
    if (res.status < 200 || res.status >= 300) throw new Error(`OTLP endpoint answered ${res.status}`);
  }

  /** Send what waits (bounded by `timeoutMs`); the connection pool is released once the queue is idle (LogQueue.close). */
  async close(timeoutMs = 2000): Promise<void> {
    await this.#queue.close(timeoutMs, () => {
      const agent = this.#agent;
      this.#agent = null;
      return agent?.close();
    });
  }
}
