/**
 * One structured JSON line per request, written after the response is sent
 * (asynchronous, buffered). Query values of parameters that commonly carry
 * secrets are redacted; headers are not logged.
 */
import cluster from 'node:cluster';
import { pino } from 'pino';
import type { RequestContext } from '../core/context.ts';
import type { RouteRuntime } from '../core/runtime.ts';
import { redactQuery, roundMs } from '../pdk/log-record.ts';
import { asciiJson, jsonOrNull, jsonText, msText } from '../pdk/json-line.ts';

/** SonicBoom in buffer mode (its types only know strings). */
type Destination = Omit<ReturnType<typeof pino.destination>, 'write'> & { write(chunk: Buffer): boolean };

/** A coarse clock: the ISO timestamp is formatted at most once per millisecond (lines share it). */
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** A route's `,"route":…,"service":…` part of the line, escaped once per route of a config version. */
const routeParts = new WeakMap<RouteRuntime, string>();
const NO_ROUTE = ',"route":null,"service":null';
function routeJson(route: RouteRuntime): string {
  let text = routeParts.get(route);
  if (text === undefined) {
    text = `,"route":"${jsonText(route.ref.name ?? route.ref.id)}","service":"${jsonText(route.service.ref.name ?? route.service.ref.id)}"`;
    routeParts.set(route, text);
  }
  return text;
}

/** Lines are written into buffers of this size and handed over whole (one write per ~80 lines). */
const CHUNK = 32768;

export class AccessLog {
  readonly #dest: Destination | null = null;
  /** Test hook: receives each record too. */
  onRecord: ((record: Record<string, unknown>) => void) | null = null;

  /** The periodic flush; null when lines are not batched (see the constructor). */
  readonly #timer: NodeJS.Timeout | null = null;
  /** Lines not yet handed to the destination, batched here (see the constructor); null when written one by one. */
  #batch: Buffer | null = null;
  /** Bytes of #batch written. */
  #pos = 0;

  /**
   * Lines are buffered (32 KiB: one write per ~80 lines) and flushed at least every 500 ms. Workers that
   * share a stdout/stderr pipe write each line at once instead: a pipe keeps
   * only writes up to 4 KiB whole, so buffered writes could interleave lines.
   * (Appends to a file are whole on Linux; a file is the right target for busy
   * multi-worker gateways.)
   */
  constructor(target: string) {
    if (target === 'off') return;
    const dest = target === 'stdout' ? 1 : target === 'stderr' ? 2 : target;
    const perLine = typeof dest === 'number' && cluster.isWorker;
    // Batched here, into buffers, not by SonicBoom's minLength: with strings, SonicBoom measures the
    // byte length of its whole pending string on every write (a flattened copy of up to minLength bytes
    // per line), and again when the write completes.
    this.#dest = pino.destination({ dest, sync: perLine, mkdir: true, minLength: 0, maxWrite: 65536, contentMode: 'buffer' }) as unknown as Destination;
    if (!perLine) {
      this.#batch = Buffer.allocUnsafeSlow(CHUNK);
      this.#timer = setInterval(() => this.flushNow(), 500);
      this.#timer.unref();
    }
  }

  write(ctx: RequestContext): void {
    if (this.#dest === null && this.onRecord === null) return;
    const t = ctx.timings;
    const route = ctx.routeRuntime;
    const path = ctx.rawQuery === '' ? ctx.path : `${ctx.path}?${redactQuery(ctx.rawQuery, ctx.runtime.sensitiveQuery)}`;
    const routeName = route ? (route.ref.name ?? route.ref.id) : null;
    const service = route ? (route.service.ref.name ?? route.service.ref.id) : null;
    const consumer = ctx.consumer ? (ctx.consumer.username ?? ctx.consumer.id) : null;
    const requestBytes = Number(ctx.req.headers['content-length'] ?? 0) || 0;
    const received = ctx.bytesReceived;
    const time = isoNow();
    const status = ctx.res.headersSent ? ctx.res.statusCode : ctx.status || 499; // nothing answered: nginx's 499
    if (this.#dest !== null) {
      const decisions = ctx.decisions.length === 0 ? null : JSON.stringify(ctx.decisions);
      const version = ctx.runtime.version;
      // One ASCII string (template literals), copied into the buffer natively: cheaper than writing it byte by byte.
      const line =
        `{"time":"${time}","type":"access","request_id":"${jsonText(ctx.requestId)}","client_ip":"${jsonText(ctx.clientIp)}","method":"${jsonText(ctx.method)}"` +
        `,"path":"${jsonText(path)}","host":"${jsonText(ctx.host)}","scheme":"${ctx.scheme}","status":${status},"source":"${ctx.source}"` +
        `${route === null ? NO_ROUTE : routeJson(route)},"consumer":${jsonOrNull(consumer)},"upstream":${jsonOrNull(ctx.upstreamTarget)}` +
        `,"tries":${ctx.tries},"error":${jsonOrNull(ctx.errorCode)},"latency":{"total_ms":${msText(t.total)},"upstream_ms":${msText(t.upstream)},"gateway_ms":${msText(t.gateway)}}` +
        `,"bytes":{"request":${requestBytes},"received":${received},"response":${ctx.bytesOut}}${decisions === null ? '' : `,"decisions":${asciiJson(decisions)}`}` +
        `${ctx.traceId === null ? '' : `,"trace_id":"${jsonText(ctx.traceId)}"`},"config_version":"${version}"}\n`; // the version is hex
      if (this.#batch === null) this.#dest.write(Buffer.from(line, 'latin1'));
      else {
        if (this.#pos + line.length > this.#batch.length) this.#handOver(line.length);
        this.#pos += this.#batch.write(line, this.#pos, 'latin1');
      }
    }
    this.onRecord?.({
      time,
      type: 'access',
      request_id: ctx.requestId,
      client_ip: ctx.clientIp,
      method: ctx.method,
      path,
      host: ctx.host,
      scheme: ctx.scheme,
      status,
      source: ctx.source,
      route: routeName,
      service,
      consumer,
      upstream: ctx.upstreamTarget,
      tries: ctx.tries,
      error: ctx.errorCode,
      latency: { total_ms: roundMs(t.total), upstream_ms: roundMs(t.upstream), gateway_ms: roundMs(t.gateway) },
      bytes: { request: requestBytes, received, response: ctx.bytesOut },
      ...(ctx.decisions.length === 0 ? {} : { decisions: ctx.decisions }),
      ...(ctx.traceId === null ? {} : { trace_id: ctx.traceId }),
      config_version: ctx.runtime.version,
    });
  }

  /**
   * Hand the lines written so far to the destination, which writes the buffer asynchronously: a new one
   * follows, with room for `n` bytes (a line longer than a batch gets a buffer of its own size).
   */
  #handOver(n = 0): void {
    if (this.#pos > 0) this.#dest!.write(this.#batch!.subarray(0, this.#pos));
    this.#batch = Buffer.allocUnsafeSlow(n <= CHUNK ? CHUNK : n);
    this.#pos = 0;
  }

  /** Write out buffered lines (a destination still opening its file is skipped). */
  flushNow(): void {
    try {
      if (this.#pos > 0) this.#handOver();
      this.#dest?.flush();
    } catch {}
  }

  /** Final flush at shutdown: resolves once every line is written (or after `timeoutMs`). */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    const dest = this.#dest;
    if (dest === null) return;
    if (this.#pos > 0) this.#handOver();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        dest.once('close', resolve);
        dest.once('error', resolve);
        dest.end();
      }),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs).unref())),
    ]);
    clearTimeout(timer);
  }
}
