/**
 * One structured JSON line per request, written after the response is sent
 * (asynchronous, buffered). Query values of parameters that commonly carry
 * secrets are redacted; headers are not logged.
 */
import cluster from 'node:cluster';
import { pino } from 'pino';
import type { RequestContext } from '../core/context.ts';
import { redactQuery } from '../pdk/log-record.ts';

type Destination = ReturnType<typeof pino.destination>;

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

/** ms to the microsecond. */
const us = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * The access log writes JSON lines straight to pino's SonicBoom destination:
 * one JSON.stringify per request, no logger machinery on the hot path.
 */
export class AccessLog {
  readonly #dest: Destination | null = null;
  /** Test hook: receives each record too. */
  onRecord: ((record: Record<string, unknown>) => void) | null = null;

  readonly #timer: NodeJS.Timeout | null = null;
  /** Lines not yet handed to the destination (batched here, see the constructor). */
  #pending = '';
  readonly #batch: number = 0;

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
    // Batched here, not by SonicBoom's minLength: SonicBoom measures the byte length of its whole
    // pending buffer on every write (a flattened copy of up to minLength bytes per line).
    this.#dest = pino.destination({ dest, sync: perLine, mkdir: true, minLength: 0, maxWrite: 65536 });
    if (!perLine) {
      this.#batch = 32768;
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
    const totalMs = us(t.total);
    const upstreamMs = us(t.upstream);
    const gatewayMs = us(t.gateway);
    const requestBytes = Number(ctx.req.headers['content-length'] ?? 0) || 0;
    const received = ctx.bytesReceived;
    const time = isoNow();
    if (this.#dest !== null) {
      // Built by hand (strings through JSON.stringify for escaping): a fraction of the cost of stringifying an object.
      const str = JSON.stringify;
      this.#append(
        `{"time":"${time}","type":"access","request_id":${str(ctx.requestId)},"client_ip":${str(ctx.clientIp)},"method":${str(ctx.method)},` +
          `"path":${str(path)},"host":${str(ctx.host)},"scheme":"${ctx.scheme}","status":${ctx.res.statusCode},"source":"${ctx.source}",` +
          `"route":${str(routeName)},"service":${str(service)},"consumer":${str(consumer)},"upstream":${str(ctx.upstreamTarget)},` +
          `"tries":${ctx.tries},"error":${str(ctx.errorCode)},"latency":{"total_ms":${totalMs},"upstream_ms":${upstreamMs},"gateway_ms":${gatewayMs}},` +
          `"bytes":{"request":${requestBytes},"received":${received},"response":${ctx.bytesOut}},` +
          (ctx.decisions.length === 0 ? '' : `"decisions":${str(ctx.decisions)},`) +
          (ctx.traceId === null ? '' : `"trace_id":"${ctx.traceId}",`) +
          `"config_version":"${ctx.runtime.version}"}\n`,
      );
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
      status: ctx.res.statusCode,
      source: ctx.source,
      route: routeName,
      service,
      consumer,
      upstream: ctx.upstreamTarget,
      tries: ctx.tries,
      error: ctx.errorCode,
      latency: { total_ms: totalMs, upstream_ms: upstreamMs, gateway_ms: gatewayMs },
      bytes: { request: requestBytes, received, response: ctx.bytesOut },
      ...(ctx.decisions.length === 0 ? {} : { decisions: ctx.decisions }),
      ...(ctx.traceId === null ? {} : { trace_id: ctx.traceId }),
      config_version: ctx.runtime.version,
    });
  }

  #append(line: string): void {
    if (this.#batch === 0) {
      this.#dest!.write(line);
      return;
    }
    this.#pending += line;
    if (this.#pending.length >= this.#batch) this.#handOver();
  }

  #handOver(): void {
    if (this.#pending === '') return;
    const chunk = this.#pending;
    this.#pending = '';
    this.#dest!.write(chunk);
  }

  /** Write out buffered lines (a destination still opening its file is skipped). */
  flushNow(): void {
    try {
      this.#handOver();
      this.#dest?.flush();
    } catch {}
  }

  /** Final flush at shutdown: resolves once every line is written (or after `timeoutMs`). */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    const dest = this.#dest;
    if (dest === null) return;
    this.#handOver();
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
