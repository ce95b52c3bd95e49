/**
 * A request's way through the gateway: context → rewrite (global plugins) →
 * router → access chain → upstream (or a gateway reply) → response phase →
 * write → log phase and access log after the response is sent.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { problem, Reply } from '../pdk/index.ts';
import { headerOf, setHeaderOf } from '../pdk/own-header.ts';
import { discardUnread, RequestContext } from './context.ts';
import { ERR, type GatewayError } from './errors.ts';
import { isPromise, type Chain } from './pipeline.ts';
import { UpstreamCall, viaValue, type ProxyCallbacks } from './proxy.ts';
import { normalizePath, upstreamPath } from './router.ts';
import type { RuntimeConfig } from './runtime.ts';
import { normalizeIp, realClientIp } from './trusted.ts';
import type { AccessLog } from '../telemetry/access-log.ts';
import type { AuditTrail } from '../audit/trail.ts';

const kCall = Symbol('palisade.call');
const kHost = Symbol('palisade.host');
type Res = ServerResponse & { [kCall]?: UpstreamCall; [kHost]?: HandlerHost };

/** A request id we accept from a trusted peer: short, visible ASCII. */
const SANE_ID = /^[\x21-\x7e]{1,200}$/;

export interface HandlerHost {
  readonly runtime: RuntimeConfig;
  readonly log: Logger;
  readonly accessLog: AccessLog;
  /** Security decisions of finished requests go to the audit trail, when one is configured. */
  readonly audit: AuditTrail | null;
  /** Shutting down: responses say Connection: close. */
  readonly draining: boolean;
  /** The response is over (finished or its connection closed). */
  released(): void;
}

/** One shared 'close' listener (no per-request closure): stop the upstream leg if the client left, tell the host. */
function onResClose(this: Res): void {
  if (!this.writableFinished) this[kCall]?.abort();
  this[kHost]!.released();
}

export class RequestHandler implements ProxyCallbacks {
  readonly #host: HandlerHost;

  constructor(host: HandlerHost) {
    this.#host = host;
  }

  handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https', listenerPort: number): void {
    const runtime = this.#host.runtime;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const peer = normalizeIp(req.socket.remoteAddress);
    const trusted = runtime.trusted.has(peer);
    const incomingId = trusted ? headerOf(req.headers, runtime.settings.request_id_header) : undefined;
    const requestId = typeof incomingId === 'string' && SANE_ID.test(incomingId) ? incomingId : randomUUID();
    const authority = req.headers.host ?? '';
    // The listener made an absolute-form target origin-form; any other form (ftp://…, *) is refused below.
    if (rawPath.charCodeAt(0) !== 47) rawPath = '';
    const colon = authority.lastIndexOf(':');
    const bracket = authority.lastIndexOf(']');
    const hasPort = colon > bracket && colon > 0;
    const host = (hasPort ? authority.slice(0, colon) : authority).toLowerCase();
    const port = hasPort ? Number(authority.slice(colon + 1)) || listenerPort : listenerPort;
    const path = rawPath === '' ? null : normalizePath(rawPath);
    const ctx = new RequestContext(req, res, runtime, {
      requestId,
      scheme,
      remoteAddress: peer,
      clientIp: trusted ? realClientIp(peer, req.headers['x-forwarded-for'] as string | undefined, runtime.trusted) : peer,
      peerTrusted: trusted,
      path: path ?? '/',
      rawQuery,
      host,
      port,
    });
    runtime.enter(); // left in onDone, after the log phase
    (res as Res)[kHost] = this.#host;
    res.on('close', onResClose);
    if (path === null) return this.#gatewayError(ctx, ERR.BAD_REQUEST, null);
    try {
      const rewrite = runtime.globalChains[scheme].rewrite;
      const r = rewrite === null ? undefined : runPhase(rewrite, 'rewrite', ctx, 0);
      if (isPromise(r)) r.then((v) => this.#afterRewrite(ctx, v), (err) => this.#crash(ctx, err));
      else this.#afterRewrite(ctx, r);
    } catch (err) {
      this.#crash(ctx, err);
    }
  }

  #afterRewrite(ctx: RequestContext, reply: Reply | undefined): void {
    const runtime = ctx.runtime;
    if (reply !== undefined) {
      denied(ctx, reply);
      return this.#reply(ctx, reply, runtime.globalChains[ctx.scheme]);
    }
    const match = runtime.router.match({
      method: ctx.method,
      path: ctx.path,
      host: ctx.host,
      port: ctx.port,
      scheme: ctx.scheme,
      sni: ctx.scheme === 'https' ? ctx.request.tls!.servername : null,
      headers: ctx.req.headers,
    });
    if (match === null) return this.#gatewayError(ctx, ERR.NO_ROUTE, runtime.globalChains[ctx.scheme]);
    if (match.httpsOnly && !(ctx.peerTrusted && ctx.req.headers['x-forwarded-proto'] === 'https')) {
      // The best route exists only over https (Kong: 426, or the configured redirect to https on the same host and path).
      ctx.routeRuntime = match.route;
      const code = match.route.config.https_redirect_status_code;
      if (code === 426) return this.#gatewayError(ctx, ERR.HTTPS_REQUIRED, runtime.globalChains.http);
      const location = `https://${ctx.host}${ctx.path}${ctx.rawQuery === '' ? '' : '?' + ctx.rawQuery}`;
      return this.#reply(ctx, new Reply(code, null, { location }), runtime.globalChains.http);
    }
    ctx.routeRuntime = match.route;
    ctx.captures = match.captures;
    ctx.matchedLength = match.matchedLength;
    const chain = match.route.chains[ctx.scheme];
    const access = chain.access;
    if (access === null) return this.#proxy(ctx);
    const r = runAccess(ctx, chain, 0);
    if (isPromise(r)) r.then((v) => this.#afterAccess(ctx, v), (err) => this.#crash(ctx, err));
    else this.#afterAccess(ctx, r);
  }

  #afterAccess(ctx: RequestContext, r: [Chain, Reply | undefined]): void {
    ctx.chain = r[0];
    if (r[1] !== undefined) {
      denied(ctx, r[1]);
      return this.#reply(ctx, r[1], r[0]);
    }
    ctx.plugin = null;
    this.#proxy(ctx);
  }

  #proxy(ctx: RequestContext): void {
    const route = ctx.routeRuntime!;
    const svc = route.service;
    if (ctx.bodyBuffer !== null && ctx.bodyLimit >= 0 && ctx.bodyBuffer.length > ctx.bodyLimit) return this.#gatewayError(ctx, ERR.BODY_TOO_LARGE, chainOf(ctx));
    const target = svc.balancer.pick(this.#hashKey(ctx), null);
    if (target === null) return this.#gatewayError(ctx, ERR.NO_HEALTHY_TARGET, chainOf(ctx));
    const c = route.config;
    ctx.upstreamPath = upstreamPath(svc.path, ctx.path, ctx.matchedLength, c.strip_path, c.path_handling);
    const call = new UpstreamCall(ctx, target, this, ctx.upstreamPath);
    if (call.opts.headers === null) return this.#gatewayError(ctx, ERR.DUPLICATE_HEADER, chainOf(ctx));
    (ctx.res as Res)[kCall] = call;
    call.start();
  }

  #hashKey(ctx: RequestContext): string | null {
    const b = ctx.routeRuntime!.service.balancer;
    switch (b.hashOn) {
      case null:
        return null;
      case 'ip':
        return ctx.clientIp;
      case 'header': {
        const v = headerOf(ctx.req.headers, b.hashHeader);
        return v === undefined ? null : typeof v === 'string' ? v : v.join(',');
      }
      case 'cookie':
        return b.cookieValue(ctx.req.headers.cookie);
      case 'path':
        return ctx.path;
      case 'query_arg':
        return ctx.request.query.get(b.hashQueryArg);
      case 'consumer':
        return ctx.consumer?.id ?? null;
      default:
        return null;
    }
  }

  // ProxyCallbacks
  onHeaders(ctx: RequestContext): void | Promise<void> {
    const chain = chainOf(ctx);
    const s = ctx.status;
    ctx.holdResponse = chain.body !== null && ctx.method !== 'HEAD' && s !== 204 && s !== 304;
    const response = chain.response;
    const call = (ctx.res as Res)[kCall]!;
    try {
      const r = response === null ? undefined : runPhase(response, 'response', ctx, 0);
      if (isPromise(r)) return r.then((v) => this.#afterResponsePhase(ctx, call, v));
      this.#afterResponsePhase(ctx, call, r);
    } catch (err) {
      call.crash(err);
    }
  }

  #afterResponsePhase(ctx: RequestContext, call: UpstreamCall, reply: Reply | undefined): void {
    if (call.over) return; // the client left while an async handler ran
    if (reply !== undefined) {
      // A response-phase plugin replaced the upstream response (Kong: kong.response.exit in header_filter).
      denied(ctx, reply);
      return call.replace(reply);
    }
    ctx.plugin = null;
    const limit = ctx.responseBodyLimit;
    const s = ctx.status;
    const bodyless = ctx.method === 'HEAD' || s === 204 || s === 304;
    if (limit >= 0 && !bodyless && Number(ctx.headers['content-length']) > limit) return call.refuse(ERR.RESPONSE_TOO_LARGE);
    if (!ctx.holdResponse) this.writeHead(ctx);
  }

  onBody(ctx: RequestContext, body: Buffer | null): Reply | undefined | Promise<Reply | undefined> {
    try {
      const r = runPhase(chainOf(ctx).body!, 'body', ctx, 0, body);
      if (!isPromise(r)) return this.#afterBody(ctx, r);
      return r.then((v) => this.#afterBody(ctx, v), (err) => this.#bodyCrash(ctx, err));
    } catch (err) {
      return this.#bodyCrash(ctx, err);
    }
  }

  #afterBody(ctx: RequestContext, reply: Reply | undefined): Reply | undefined {
    if (reply !== undefined) denied(ctx, reply);
    ctx.plugin = null;
    return reply;
  }

  #bodyCrash(ctx: RequestContext, err: unknown): Reply {
    this.#host.log.error({ err, request_id: ctx.requestId, plugin: ctx.plugin }, 'plugin error');
    ctx.errorCode = ERR.INTERNAL.code;
    return problem(ERR.INTERNAL.status, ERR.INTERNAL.message, ctx.requestId);
  }

  onReply(ctx: RequestContext, reply: Reply): void {
    this.#reply(ctx, reply, chainOf(ctx));
  }

  onError(ctx: RequestContext, error: GatewayError): void {
    this.#gatewayError(ctx, error, chainOf(ctx));
  }

  onDone(ctx: RequestContext): void {
    if (ctx.endNs !== 0n) return; // once per request
    ctx.endNs = process.hrtime.bigint();
    const log = chainOf(ctx).log;
    if (log !== null) {
      for (let i = 0; i < log.fns.length; i++) {
        ctx.plugin = log.names[i]!;
        try {
          const r = log.fns[i]!(ctx);
          if (isPromise(r)) r.catch((err: unknown) => this.#host.log.error({ err, request_id: ctx.requestId, plugin: log.names[i] }, 'log phase failed'));
        } catch (err) {
          this.#host.log.error({ err, request_id: ctx.requestId, plugin: log.names[i] }, 'log phase failed');
        }
      }
      ctx.plugin = null;
    }
    try {
      this.#host.accessLog.write(ctx);
    } catch (err) {
      // Never let logging break the exchange (this runs inside undici's callbacks).
      this.#host.log.error({ err, request_id: ctx.requestId }, 'access log failed');
    }
    if (ctx.decisions.length > 0 && this.#host.audit !== null) {
      try {
        this.#host.audit.request(ctx);
      } catch (err) {
        this.#host.log.error({ err, request_id: ctx.requestId }, 'audit trail failed');
      }
    }
    ctx.markRead();
    ctx.runtime.leave();
  }

  writeHead(ctx: RequestContext): void {
    const res = ctx.res;
    const h = ctx.headers;
    setHeaderOf(h, ctx.runtime.settings.request_id_header, ctx.requestId);
    if (ctx.runtime.settings.via) {
      // Append to the Via of the upstream (RFC 9110 §7.6.3), never replace it.
      const via = viaValue(ctx.req.httpVersion);
      const prev = h.via;
      h.via = prev === undefined ? via : `${Array.isArray(prev) ? prev.join(', ') : prev}, ${via}`;
    }
    if (this.#host.draining) res.shouldKeepAlive = false;
    res.writeHead(ctx.status, h as Record<string, string | string[]>);
  }

  #gatewayError(ctx: RequestContext, e: GatewayError, chain: Chain | null): void {
    ctx.errorCode ??= e.code;
    this.#reply(ctx, problem(e.status, e.message, ctx.requestId), chain);
  }

  #reply(ctx: RequestContext, reply: Reply, chain: Chain | null): void {
    if (ctx.res.headersSent || ctx.res.destroyed) return this.onDone(ctx);
    ctx.status = reply.status;
    ctx.source = 'gateway';
    const headers: Record<string, string | string[] | undefined> = {};
    for (const k in reply.headers) setHeaderOf(headers, k.toLowerCase(), reply.headers[k]);
    if (reply.body !== null) headers['content-length'] = String(Buffer.byteLength(reply.body));
    ctx.headers = headers;
    const finish = () => {
      ctx.plugin = null; // after the response phase, also an async one (its handlers' decisions are theirs)
      this.writeHead(ctx);
      discardUnread(ctx.req, ctx.res, ctx.headers.connection);
      ctx.bytesOut = reply.body === null ? 0 : Buffer.byteLength(reply.body);
      ctx.res.end(ctx.method === 'HEAD' ? undefined : (reply.body ?? undefined));
      this.onDone(ctx);
    };
    const response = chain?.response ?? null;
    try {
      // A Reply from the response phase is ignored here: this already is the gateway's answer.
      const r = response === null ? undefined : runPhase(response, 'response', ctx, 0);
      if (isPromise(r)) r.then(finish).catch((err: unknown) => this.#crash(ctx, err));
      else finish();
    } catch (err) {
      this.#crash(ctx, err);
    }
  }

  onCrash(ctx: RequestContext, err: unknown): void {
    this.#crash(ctx, err);
  }

  #crash(ctx: RequestContext, err: unknown): void {
    this.#host.log.error({ err, request_id: ctx.requestId, route: ctx.routeRuntime?.ref.name, plugin: ctx.plugin }, 'plugin error');
    ctx.errorCode = ERR.INTERNAL.code;
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return this.onDone(ctx);
    }
    this.#reply(ctx, problem(ERR.INTERNAL.status, ERR.INTERNAL.message, ctx.requestId), null);
  }
}

/** A plugin answered instead of the upstream: a refusal (4xx/5xx) is its security decision; a preflight or redirect is not. */
function denied(ctx: RequestContext, reply: Reply): void {
  if (ctx.plugin !== null && reply.status >= 400) ctx.decide('deny', reply.reason ?? `answered ${reply.status}`, reply.status);
  ctx.plugin = null;
}

function chainOf(ctx: RequestContext): Chain {
  return ctx.chain ?? ctx.routeRuntime?.chains[ctx.scheme] ?? ctx.runtime.globalChains[ctx.scheme];
}

type StopPhase = NonNullable<Chain['access']>;
type BodyPhase = NonNullable<Chain['body']>;

const sinceStart = (ctx: RequestContext) => performance.now() - ctx.phaseOrigin;

/** Tracing (PluginHandlers.tracePhases): record a handler run; an async one ends when its promise settles. */
function ran(ctx: RequestContext, phase: 'rewrite' | 'access' | 'response' | 'body', plugin: string, start: number, r: unknown): void {
  const run = { plugin, phase, start, end: -1 };
  ctx.phaseRuns!.push(run);
  if (!isPromise(r)) run.end = sinceStart(ctx);
  else {
    const end = () => void (run.end = sinceStart(ctx));
    r.then(end, end);
  }
}

/**
 * Runs a phase whose handlers may stop it with a Reply (rewrite, response,
 * body), from index i; sync as long as handlers are sync. `body` is the body
 * phase's argument (the other phases' handlers ignore it).
 */
function runPhase(phase: StopPhase | BodyPhase, label: 'rewrite' | 'response' | 'body', ctx: RequestContext, i: number, body: Buffer | null = null): Reply | undefined | Promise<Reply | undefined> {
  for (; i < phase.fns.length; i++) {
    ctx.plugin = phase.names[i]!;
    const t0 = ctx.phaseRuns === null ? -1 : sinceStart(ctx);
    const r = (phase.fns[i] as BodyPhase['fns'][number])(ctx, body);
    if (t0 >= 0) ran(ctx, label, phase.names[i]!, t0, r);
    if (r === undefined) continue;
    if (r instanceof Reply) return r;
    const next = i + 1;
    return (r as Promise<void | Reply>).then((v) => (v instanceof Reply ? v : runPhase(phase, label, ctx, next, body)));
  }
  return undefined;
}

/**
 * The access phase. Once an authentication plugin has identified a consumer,
 * the rest of the chain is the consumer's (Kong: consumer-scoped plugins).
 */
function runAccess(ctx: RequestContext, chain: Chain, i: number): [Chain, Reply | undefined] | Promise<[Chain, Reply | undefined]> {
  const route = ctx.routeRuntime!;
  let phase = chain.access!;
  for (; i < phase.fns.length; i++) {
    ctx.plugin = phase.names[i]!;
    const t0 = ctx.phaseRuns === null ? -1 : sinceStart(ctx);
    const r = phase.fns[i]!(ctx);
    if (t0 >= 0) ran(ctx, 'access', phase.names[i]!, t0, r);
    if (r instanceof Reply) return [chain, r];
    if (isPromise(r)) {
      const next = i + 1;
      const prio = phase.priorities[i]!;
      return r.then((v) => {
        if (v instanceof Reply) return [chain, v];
        const sw = switchToConsumer(ctx, chain, prio);
        return sw === null ? runAccess(ctx, chain, next) : sw[1] < 0 ? [sw[0], undefined] : runAccess(ctx, sw[0], sw[1]);
      });
    }
    if (ctx.consumer !== null && route.consumerChains !== null) {
      const sw = switchToConsumer(ctx, chain, phase.priorities[i]!);
      if (sw !== null) {
        if (sw[1] < 0) return [sw[0], undefined];
        chain = sw[0];
        phase = chain.access!;
        i = sw[1] - 1;
      }
    }
  }
  return [chain, undefined];
}

function switchToConsumer(ctx: RequestContext, chain: Chain, priority: number): [Chain, number] | null {
  const route = ctx.routeRuntime!;
  const cc = ctx.consumer !== null ? route.consumerChains?.get(ctx.consumer.id) : undefined;
  // A consumer without consumer-scoped plugins runs the route's own chain — also when an
  // earlier plugin had switched to the anonymous consumer's chain ("any of them" auth).
  const next = (cc ?? route.chains)[ctx.scheme];
  if (next === chain) return null;
  const access = next.access;
  if (access === null) return [next, -1];
  const idx = access.priorities.findIndex((p) => p < priority);
  return [next, idx];
}


