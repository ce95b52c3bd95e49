/**
 * One structured JSON line per request, written after the response is sent
 * (asynchronous, buffered). Query values of parameters that commonly carry
 * secrets are redacted; headers are not logged.
 */
import cluster from 'node:cluster';
import { pino } from 'pino';
import type { RequestContext } from '../core/context.ts';
import { redactQuery } from '../pdk/log-record.ts';

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

/** ms to the microsecond. */
const us = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * The same text as `String(us(ms))`, from integer arithmetic: converting a
 * fractional double to a string costs ~100 ns, three times per line.
 */
function msText(ms: number): string {
  const micros = Math.round(ms * 1000);
  if (micros < 0 || micros > 0x3fffffff) return String(micros / 1000);
  const whole = Math.floor(micros / 1000);
  const frac = micros - whole * 1000;
  if (frac === 0) return String(whole);
  if (frac % 100 === 0) return `${whole}.${frac / 100}`;
  if (frac % 10 === 0) return `${whole}.${frac < 100 ? '0' : ''}${frac / 10}`;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/** Printable ASCII without `"` and `\`: a JSON string as it is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** A JSON string (or null): JSON.stringify only for the strings that need escaping. */
const str = (s: string | null): string => (s === null ? 'null' : PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

/** Lines are written into buffers of this size and handed over whole (one write per ~80 lines). */
const CHUNK = 32768;

export class AccessLog {
  readonly #dest: Destination | null = null;
  /** Test hook: receives each record too. */
  onRecord: ((record: Record<string, unknown>) => void) | null = null;

  readonly #timer: NodeJS.Timeout | null = null;
  /** Lines not yet handed to the destination, batched here (see the constructor): #buf up to #used. */
  #buf: Buffer | null = null;
  #used = 0;
  readonly #batched: boolean = false;

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
      this.#batched = true;
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
    if (this.#dest !== null) {
      // Built by hand: a fraction of the cost of stringifying an object.
      this.#append(
        `{"time":"${time}","type":"access","request_id":${str(ctx.requestId)},"client_ip":${str(ctx.clientIp)},"method":${str(ctx.method)},` +
          `"path":${str(path)},"host":${str(ctx.host)},"scheme":"${ctx.scheme}","status":${ctx.res.statusCode},"source":"${ctx.source}",` +
          `"route":${str(routeName)},"service":${str(service)},"consumer":${str(consumer)},"upstream":${str(ctx.upstreamTarget)},` +
          `"tries":${ctx.tries},"error":${str(ctx.errorCode)},"latency":{"total_ms":${msText(t.total)},"upstream_ms":${msText(t.upstream)},"gateway_ms":${msText(t.gateway)}},` +
          `"bytes":{"request":${requestBytes},"received":${received},"response":${ctx.bytesOut}},` +
          (ctx.decisions.length === 0 ? '' : `"decisions":${JSON.stringify(ctx.decisions)},`) +
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
      latency: { total_ms: us(t.total), upstream_ms: us(t.upstream), gateway_ms: us(t.gateway) },
      bytes: { request: requestBytes, received, response: ctx.bytesOut },
      ...(ctx.decisions.length === 0 ? {} : { decisions: ctx.decisions }),
      ...(ctx.traceId === null ? {} : { trace_id: ctx.traceId }),
      config_version: ctx.runtime.version,
    });
  }

  #append(line: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    const room = line.length * 3;
    if (!this.#batched || room > CHUNK) {
      this.#handOver();
      this.#dest!.write(Buffer.from(line));
      return;
    }
    if (this.#buf !== null && this.#used + room > CHUNK) this.#handOver();
    this.#buf ??= Buffer.allocUnsafeSlow(CHUNK);
    this.#used += this.#buf.write(line, this.#used);
  }

  #handOver(): void {
    if (this.#used === 0) return;
    const chunk = this.#buf!.subarray(0, this.#used);
    // A new buffer for the next lines: the destination writes this one asynchronously.
    this.#buf = null;
    this.#used = 0;
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
