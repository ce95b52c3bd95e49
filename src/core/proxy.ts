/**
 * The upstream leg: pick a target, build the upstream request head, stream the
 * body both ways through an undici keep-alive pool, retry safe requests on
 * connection failures, map failures to Kong's statuses (502/503/504).
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { mediaTypeMatcher, type Reply } from '../pdk/index.ts';
import { isPromise } from './pipeline.ts';
import { BodyLimitError, ERR, type GatewayError } from './errors.ts';
import { setHeaderOf } from '../pdk/own-header.ts';
import { hasBody, type RequestContext } from './context.ts';
import type { Target } from './balancer.ts';

/**
 * Request headers never forwarded (hop-by-hop, RFC 9110 §7.6.1) or always rewritten by the gateway.
 * `expect` is hop-by-hop in practice: node:http has already answered 100-continue, and undici refuses it.
 */
const SKIP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'expect',
  'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-path', 'x-forwarded-prefix', 'x-real-ip',
  // Identity headers only the gateway may set: a client's copies are spoofing attempts.
  'x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-consumer-groups', 'x-credential-identifier', 'x-credential-username',
  'x-anonymous-consumer', 'x-anonymous-groups', 'x-authenticated-groups', 'x-authenticated-scope', 'x-authenticated-userid',
]);
/** Response headers never forwarded to the client. */
const SKIP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate']);

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Calls `then` with the value (at once when it is not a promise); an exception in `then` goes to `fail`. */
function settle<T>(v: T | Promise<T>, then: (v: T) => void, fail: (err: unknown) => void): void {
  if (isPromise(v)) {
    (v as Promise<T>).then(then).catch(fail);
    return;
  }
  try {
    then(v);
  } catch (err) {
    fail(err);
  }
}

/** Server-sent events never end: a body phase cannot hold them. */
const eventStream = mediaTypeMatcher(['text/event-stream']);
const isEventStream = (type: string | string[] | number | undefined): boolean => typeof type === 'string' && eventStream(type);

export interface ProxyCallbacks {
  /**
   * Upstream answered: status and headers are in ctx; run the response phase
   * and write them — unless the chain has a body phase (then set
   * ctx.holdResponse and leave the head to onBody).
   */
  onHeaders(ctx: RequestContext): void | Promise<void>;
  /** The body phase, with the whole body or null when it outgrew the buffer. Never rejects. */
  onBody(ctx: RequestContext, body: Buffer | null): Reply | undefined | Promise<Reply | undefined>;
  /** Write the response head (status and ctx.headers). */
  writeHead(ctx: RequestContext): void;
  /** Answer with a reply instead of the upstream response (nothing was sent yet). */
  onReply(ctx: RequestContext, reply: Reply): void;
  /** A plugin or the head threw after the upstream answered: log it, answer 500 (or close the connection) and finish. */
  onCrash(ctx: RequestContext, err: unknown): void;
  /** The gateway must answer with an error (nothing was sent to the client yet). */
  onError(ctx: RequestContext, error: GatewayError): void;
  /** The exchange is over (complete, or the client connection was closed on a mid-stream failure). */
  onDone(ctx: RequestContext): void;
}

/** The request body as read so far (by a plugin) followed by the rest of the stream, capped at `limit` (-1 = none). */
async function* bodyStream(prefix: Buffer[] | null, rest: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  if (prefix !== null) {
    for (const chunk of prefix) {
      seen += chunk.length;
      if (limit >= 0 && seen > limit) throw new BodyLimitError();
      yield chunk;
    }
  }
  for await (const chunk of rest) {
    seen += chunk.length;
    if (limit >= 0 && seen > limit) throw new BodyLimitError();
    yield chunk;
  }
}

/**
 * The upstream request head, or null when the request repeats a header that
 * must appear once (Content-Type, Authorization): plugins and the upstream
 * could read different copies (RFC 9110 §5.3), so it is refused.
 */
export function buildUpstreamHeaders(ctx: RequestContext, hostHeader: string): string[] | null {
  const req = ctx.req;
  const raw = req.rawHeaders;
  const out: string[] = [];
  const extra = connectionListed(req.headers.connection);
  const reqIdHeader = ctx.runtime.settings.request_id_header;
  const overrides = ctx.upstreamHeaders;
  const newBody = ctx.bodyBuffer;
  let once = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'content-type' || lower === 'authorization') {
      const bit = lower === 'content-type' ? 1 : 2;
      if ((once & bit) !== 0) return null;
      once |= bit;
    }
    if (SKIP_REQUEST.has(lower) || lower === reqIdHeader || (extra !== null && extra.has(lower)) || (overrides !== null && overrides.has(lower))) continue;
    if (newBody !== null && lower === 'content-length') continue;
    out.push(name, raw[i + 1]!);
  }
  if (newBody !== null && (newBody.length > 0 || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
    out.push('content-length', String(newBody.length));
  }
  const route = ctx.routeRuntime!;
  const trusted = ctx.peerTrusted;
  const h = req.headers;
  const xff = h['x-forwarded-for'];
  out.push('host', route.config.preserve_host && h.host ? h.host : hostHeader);
  out.push('x-forwarded-for', trusted && xff ? `${xff}, ${ctx.remoteAddress}` : ctx.remoteAddress);
  // Kong: a trusted peer's values are kept; otherwise the connection's (the port is the listener's, not the Host header's).
  out.push('x-forwarded-proto', (trusted && (h['x-forwarded-proto'] as string | undefined)) || ctx.scheme);
  out.push('x-forwarded-host', (trusted && (h['x-forwarded-host'] as string | undefined)) || ctx.host);
  out.push('x-forwarded-port', (trusted && (h['x-forwarded-port'] as string | undefined)) || String(req.socket.localPort ?? ctx.port));
  out.push('x-forwarded-path', (trusted && (h['x-forwarded-path'] as string | undefined)) || ctx.path);
  const prefix = trusted ? (h['x-forwarded-prefix'] as string | undefined) : undefined;
  if (prefix) out.push('x-forwarded-prefix', prefix);
  else if (ctx.matchedLength > 0 && route.config.strip_path) out.push('x-forwarded-prefix', ctx.path.slice(0, ctx.matchedLength));
  out.push('x-real-ip', ctx.clientIp);
  out.push(reqIdHeader, ctx.requestId);
  if (ctx.runtime.settings.via) out.push('via', viaValue(req.httpVersion));
  const consumer = ctx.consumer;
  if (consumer !== null) {
    out.push('x-consumer-id', consumer.id);
    if (consumer.username !== null) out.push('x-consumer-username', consumer.username);
    if (consumer.custom_id !== null) out.push('x-consumer-custom-id', consumer.custom_id);
    if (ctx.anonymous) out.push('x-anonymous-consumer', 'true');
  }
  // Also without a consumer (Kong's kong.client.authenticate(nil, credential), e.g. ldap-auth).
  if (ctx.credential?.identifier) out.push('x-credential-identifier', ctx.credential.identifier);
  if (overrides !== null) for (const [k, v] of overrides) if (v !== null) out.push(k, v);
  return out;
}

export function viaValue(httpVersion: string): string {
  return `${httpVersion} palisade`;
}

/** Headers an upstream names in its Connection header are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(conn: string | string[] | undefined): Set<string> | null {
  if (conn === undefined) return null;
  const list = typeof conn === 'string' ? conn : conn.join(',');
  if (list === 'keep-alive' || list === 'close') return null;
  const names = new Set(list.toLowerCase().split(',').map((t) => t.trim()));
  // Connection options, not header names.
  names.delete('close');
  names.delete('keep-alive');
  return names;
}

/**
 * The upstream's response headers without the hop-by-hop ones, as a new object:
 * deleting them from undici's object instead would turn it into a slow
 * dictionary-mode object for every later read and for node's writeHead.
 */
function forwardedResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const listed = connectionListed(headers.connection);
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) {
    if (SKIP_RESPONSE.has(name) || (listed !== null && listed.has(name))) continue;
    setHeaderOf(out, name, headers[name]); // undici keeps a `__proto__` header as an own property too
  }
  return out;
}

function classify(err: Error & { code?: string }): { error: GatewayError; health: 'tcp_failure' | 'timeout' } {
  const code = err.code ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ETIMEDOUT') return { error: ERR.UPSTREAM_TIMEOUT, health: 'timeout' };
  return { error: ERR.UPSTREAM_CONNECT, health: 'tcp_failure' };
}

function clientClosed(): Error {
  return Object.assign(new Error('client closed the connection'), { name: 'AbortError' });
}

/** One exchange with the upstream (with retries). Implements undici's DispatchHandler. */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  readonly ctx: RequestContext;
  readonly cb: ProxyCallbacks;
  readonly opts: Dispatcher.DispatchOptions & { headers: string[] | null };
  readonly canRetry: boolean;
  target: Target;
  #controller: Dispatcher.DispatchController | null = null;
  #started = false;
  /** The exchange is over for this call (ended, failed, refused or cut): late callbacks are ignored. */
  #over = false;
  /** This attempt's bookkeeping (target.active, end time) is done. */
  #attemptDone = false;
  /** Response chunks held for the body phase. */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  #onDrain: (() => void) | null = null;

  constructor(ctx: RequestContext, target: Target, cb: ProxyCallbacks, path: string) {
    this.ctx = ctx;
    this.cb = cb;
    this.target = target;
    const svc = ctx.routeRuntime!.service;
    const req = ctx.req;
    const withBody = hasBody(req);
    let body: Readable | Buffer | null = null;
    if (ctx.bodyBuffer !== null) body = ctx.bodyBuffer.length > 0 ? ctx.bodyBuffer : null;
    else if (withBody) {
      ctx.continueBody(); // the body is streamed on: the client may send it now
      body = ctx.bodyLimit >= 0 || ctx.bodyPrefix !== null ? Readable.from(bodyStream(ctx.bodyPrefix, req, ctx.bodyLimit), { objectMode: false }) : req;
    }
    // A buffered body can be sent again; a stream cannot.
    this.canRetry = (body === null || Buffer.isBuffer(body)) && IDEMPOTENT.has(ctx.method);
    const query = ctx.upstreamQuery ?? ctx.rawQuery;
    this.opts = {
      path: query === '' ? path : `${path}?${query}`,
      method: ctx.method as Dispatcher.HttpMethod,
      headers: buildUpstreamHeaders(ctx, svc.hostHeaders.get(target)!),
      body,
      headersTimeout: svc.readTimeout,
      bodyTimeout: svc.readTimeout,
      idempotent: this.canRetry,
      blocking: true,
      upgrade: null,
    };
  }

  start(): void {
    const ctx = this.ctx;
    ctx.tries++;
    ctx.upstreamTarget = this.target.address;
    ctx.upstreamStartNs = process.hrtime.bigint();
    this.target.active++;
    this.#attemptDone = false;
    ctx.routeRuntime!.service.pools.get(this.target)!.pool.dispatch(this.opts, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The request waited in the pool for a connection and the client left meanwhile: do not send it.
    if (this.ctx.res.destroyed) controller.abort(clientClosed());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    const ctx = this.ctx;
    if (statusCode < 200) return; // 1xx informational: not forwarded
    this.#started = true;
    ctx.upstreamHeadersNs = process.hrtime.bigint();
    ctx.status = statusCode;
    ctx.source = 'upstream';
    ctx.headers = forwardedResponseHeaders(headers);
    ctx.routeRuntime!.service.balancer.report(this.target, 'success', statusCode);
    const r = this.cb.onHeaders(ctx);
    // Held from now on (onHeaders decides synchronously): chunks arriving while an async response phase runs are not written before the head.
    if (ctx.holdResponse && !this.#over) this.#held = [];
    if (r === undefined) return void this.#afterHeaders(controller);
    controller.pause();
    r.then(() => {
      // The overflow resumes the stream itself once the body phase has decided.
      if (!this.#over && !this.#afterHeaders(controller)) controller.resume();
    }).catch((err: unknown) => this.crash(err));
  }

  /** The response phase is done: an event stream cannot be held for the body phase; it goes on as an overflow (true then). */
  #afterHeaders(controller: Dispatcher.DispatchController): boolean {
    if (this.#held === null || this.#over || !isEventStream(this.ctx.headers['content-type'])) return false;
    this.#overflow(controller);
    return true;
  }

  /** True once the exchange is over for this call: the handler must not write anything more for it. */
  get over(): boolean {
    return this.#over;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#over) return;
    const ctx = this.ctx;
    ctx.bytesOut += chunk.length;
    if (ctx.responseBodyLimit >= 0 && ctx.bytesOut > ctx.responseBodyLimit) return this.#cut();
    if (this.#held !== null) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes > ctx.runtime.settings.response_buffer_limit) this.#overflow(controller);
      return;
    }
    if (!ctx.res.write(chunk)) {
      controller.pause();
      ctx.res.once('drain', (this.#onDrain ??= () => this.#controller?.resume()));
    }
  }

  onResponseEnd(): void {
    if (this.#over) return;
    this.#over = true;
    this.#finish();
    const ctx = this.ctx;
    if (this.#held === null) {
      ctx.res.end();
      return this.cb.onDone(ctx);
    }
    const held = this.#held;
    const body = held.length === 1 ? held[0]! : Buffer.concat(held, this.#heldBytes);
    this.#held = null;
    settle(
      this.cb.onBody(ctx, body),
      (reply) => {
        if (reply !== undefined) return this.cb.onReply(ctx, reply);
        const out = ctx.responseBody ?? body;
        ctx.headers['content-length'] = String(out.length);
        ctx.bytesOut = out.length;
        this.cb.writeHead(ctx);
        ctx.res.end(out);
        this.cb.onDone(ctx);
      },
      (err) => this.cb.onCrash(ctx, err),
    );
  }

  /** The held body outgrew the buffer: run the body phase without it, then stream what was held and the rest. */
  #overflow(controller: Dispatcher.DispatchController): void {
    const held = this.#held!;
    this.#held = null;
    controller.pause();
    settle(
      this.cb.onBody(this.ctx, null),
      (reply) => {
        if (this.#over) return; // the client left meanwhile (already finished)
        if (reply !== undefined) return this.replace(reply);
        this.cb.writeHead(this.ctx);
        for (const chunk of held) this.ctx.res.write(chunk);
        controller.resume();
      },
      (err) => this.crash(err),
    );
  }

  /** A plugin's response body limit was crossed: 502 when nothing was sent yet, else close the client connection. */
  #cut(): void {
    const ctx = this.ctx;
    this.#end();
    ctx.errorCode = ERR.RESPONSE_TOO_LARGE.code;
    ctx.decideLimit();
    if (!ctx.res.headersSent) return this.cb.onError(ctx, ERR.RESPONSE_TOO_LARGE);
    ctx.res.destroy();
    this.cb.onDone(ctx);
  }

  /** Refuse the upstream response after its head (a declared length above the limit). Nothing was sent yet. */
  refuse(error: GatewayError): void {
    if (this.#over) return;
    this.#end();
    this.ctx.errorCode = error.code;
    this.ctx.decideLimit();
    this.cb.onError(this.ctx, error);
  }

  /** Answer with a reply instead of the upstream response (a response-phase plugin decided so). */
  replace(reply: Reply): void {
    if (this.#over) return;
    this.#end();
    this.cb.onReply(this.ctx, reply);
  }

  /** A handler threw after the upstream answered. */
  crash(err: unknown): void {
    if (this.#over) return;
    this.#end();
    this.cb.onCrash(this.ctx, err);
  }

  /** Stop the upstream exchange on the gateway's decision. */
  #end(): void {
    this.#over = true;
    this.#held = null;
    this.#finish();
    this.#controller?.abort(Object.assign(new Error('response refused by the gateway'), { name: 'AbortError' }));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error & { code?: string }): void {
    if (this.#over) return;
    this.#over = true;
    this.#finish();
    const ctx = this.ctx;
    // A streamed request body left unread mid-way (a size limit, an upstream gone): the connection closes after the answer.
    const body = this.opts.body;
    if (body !== null && !Buffer.isBuffer(body) && !ctx.req.complete) ctx.res.shouldKeepAlive = false;
    if (err instanceof BodyLimitError || (err as { cause?: unknown }).cause instanceof BodyLimitError) {
      ctx.errorCode = ERR.BODY_TOO_LARGE.code;
      if (!this.#started && !ctx.res.headersSent) return this.cb.onError(ctx, ERR.BODY_TOO_LARGE);
      ctx.res.destroy();
      return this.cb.onDone(ctx);
    }
    if (ctx.res.destroyed || (ctx.req.destroyed && err.name === 'AbortError')) {
      // The client went away (before or during the response): not the upstream's fault. (A request without
      // a body is read, so destroyed, from the start: for it only the gateway's own aborts reach here.)
      ctx.errorCode = 'PALISADE_ERR_CLIENT_CLOSED';
      if (!ctx.res.headersSent) ctx.status = 499; // nginx's "client closed request": nothing was answered
      return this.cb.onDone(ctx);
    }
    if (ctx.res.headersSent) {
      // Reset mid-response: the client cannot be told with a status; close its connection.
      ctx.errorCode = 'PALISADE_ERR_UPSTREAM_RESET';
      ctx.res.destroy();
      return this.cb.onDone(ctx);
    }
    if (this.#started) {
      // Reset after the head while nothing was sent yet (held for a plugin): still a 502.
      ctx.errorCode = 'PALISADE_ERR_UPSTREAM_RESET';
      return this.cb.onError(ctx, ERR.UPSTREAM_CONNECT);
    }
    const { error, health } = classify(err);
    const balancer = ctx.routeRuntime!.service.balancer;
    balancer.report(this.target, health);
    if (this.canRetry && ctx.tries <= ctx.routeRuntime!.service.retries) {
      const next = balancer.pick(null, this.target);
      if (next !== null) {
        this.target = next;
        this.#retarget();
        this.#controller = null;
        this.#over = false;
        return this.start();
      }
    }
    ctx.errorCode = error.code;
    this.cb.onError(ctx, error);
  }

  /** A retry goes to another target: the Host built for the first becomes this one's (an upstream without host_header names each). */
  #retarget(): void {
    const route = this.ctx.routeRuntime!;
    const h = this.opts.headers;
    if (h === null || (route.config.preserve_host && this.ctx.req.headers.host)) return;
    for (let i = 0; i < h.length; i += 2) if (h[i] === 'host') return void (h[i + 1] = route.service.hostHeaders.get(this.target)!);
  }

  #finish(): void {
    if (this.#attemptDone) return;
    this.#attemptDone = true;
    this.target.active--;
    this.ctx.upstreamEndNs = process.hrtime.bigint();
    if (this.#onDrain !== null) this.ctx.res.off('drain', this.#onDrain);
  }

  /** The client went away: stop talking to the upstream (a request still queued is dropped in onRequestStart). */
  abort(): void {
    this.#controller?.abort(clientClosed());
  }
}
