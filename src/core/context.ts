/**
 * The per-request context: fixed shape (every field set in the constructor),
 * lazy getters for what most requests never need. It is what plugins see as
 * PdkContext; the core reads the same object.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { problem, Reply, type PdkConsumer, type PdkContext, type PdkCredential, type PdkDecision, type PdkEntityRef, type PdkPhaseSpan, type PdkRequest, type PdkResponse, type PdkTimings, type PdkTls } from '../pdk/index.ts';
import { headerOf, setHeaderOf } from '../pdk/own-header.ts';
import type { Chain } from './pipeline.ts';
import type { RouteRuntime, RuntimeConfig } from './runtime.ts';

export type ResponseHeaders = Record<string, string | string[] | number | undefined>;


class TlsView implements PdkTls {
  readonly #socket: TLSSocket;
  constructor(socket: TLSSocket) {
    this.#socket = socket;
  }
  get servername(): string | null {
    const s = (this.#socket as TLSSocket & { servername?: string | false }).servername;
    return s ? s.toLowerCase() : null;
  }
  get authorized(): boolean {
    return this.#socket.authorized;
  }
  get authorizationError(): string | null {
    const e = this.#socket.authorizationError;
    return e ? String(e) : null;
  }
  peerCertificate() {
    const cert = this.#socket.getPeerCertificate(true);
    return cert && Object.keys(cert).length > 0 ? cert : null;
  }
}

class RequestView implements PdkRequest {
  readonly #ctx: RequestContext;
  #query: URLSearchParams | null = null;
  #tls: TlsView | null | undefined = undefined;

  constructor(ctx: RequestContext) {
    this.#ctx = ctx;
  }
  get method() {
    return this.#ctx.method;
  }
  get path() {
    return this.#ctx.path;
  }
  get rawQuery() {
    return this.#ctx.rawQuery;
  }
  get target() {
    return this.#ctx.req.url ?? '/';
  }
  get httpVersion() {
    return this.#ctx.req.httpVersion;
  }
  get query() {
    return (this.#query ??= new URLSearchParams(this.#ctx.rawQuery));
  }
  get headers(): IncomingHttpHeaders {
    return this.#ctx.req.headers;
  }
  header(name: string): string | undefined {
    const v = headerOf(this.#ctx.req.headers, name.toLowerCase());
    return Array.isArray(v) ? v[0] : v;
  }
  get rawHeaders(): readonly string[] {
    return this.#ctx.req.rawHeaders;
  }
  get scheme() {
    return this.#ctx.scheme;
  }
  get host() {
    return this.#ctx.host;
  }
  get port() {
    return this.#ctx.port;
  }
  get clientIp() {
    return this.#ctx.clientIp;
  }
  get remoteAddress() {
    return this.#ctx.remoteAddress;
  }
  get hasBody() {
    return hasBody(this.#ctx.req);
  }
  get contentLength() {
    const v = this.#ctx.req.headers['content-length'];
    return v === undefined ? -1 : Number(v);
  }
  get tls(): PdkTls | null {
    if (this.#tls === undefined) this.#tls = this.#ctx.scheme === 'https' ? new TlsView(this.#ctx.socket as TLSSocket) : null;
    return this.#tls;
  }
  setBodyLimit(bytes: number): void {
    this.#ctx.bodyLimit = this.#ctx.bodyLimit < 0 ? bytes : Math.min(this.#ctx.bodyLimit, bytes);
  }
  setHeader(name: string, value: string): void {
    (this.#ctx.upstreamHeaders ??= new Map()).set(name.toLowerCase(), value);
  }
  removeHeader(name: string): void {
    (this.#ctx.upstreamHeaders ??= new Map()).set(name.toLowerCase(), null);
  }
  readBody(limit: number): Promise<Buffer | null> {
    // Each reader gets an answer for its own limit; reads run one after another (the body is read once, then kept).
    const ctx = this.#ctx;
    const read = () => readBody(ctx, limit);
    return (ctx.bodyRead = ctx.bodyRead === null ? read() : ctx.bodyRead.then(read, read));
  }
  bodyChunks(limit: number): AsyncIterable<Buffer> {
    return bodyChunks(this.#ctx, limit);
  }
  setBody(body: Buffer | string): void {
    this.#ctx.bodyBuffer = typeof body === 'string' ? Buffer.from(body) : body;
    this.#ctx.bodyPrefix = null;
  }
  setRawQuery(query: string): void {
    this.#ctx.upstreamQuery = query;
  }
}

/** Whether the request has a body (a non-zero Content-Length, or Transfer-Encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return cl !== undefined ? Number(cl) !== 0 : req.headers['transfer-encoding'] !== undefined; // the parser admits digits only ('00' too)
}

/** How much of an unread request body the gateway reads past its own answer to keep the connection (Go's net/http: 256 KiB). */
export const DISCARD_LIMIT = 256 * 1024;
/** How long a connection given up over an unread body is still read from before it is closed (Go waits 0.5 s, nginx's lingering_timeout is 5 s). */
export const LINGER_MS = 2000;

/**
 * The gateway answers before the request body arrived whole (a refusal, a
 * size limit): what follows is read and dropped up to DISCARD_LIMIT, so that
 * the connection can carry the next request. Past that the connection is
 * given up: once the answer is out, the gateway half-closes it and reads on
 * for LINGER_MS before closing (closing at once would send a reset that can
 * reach a client still sending before it has read the answer). An answer
 * that closes the connection anyway (Connection: close, draining) is left to
 * node:http. Alone, node:http would read any amount (a 413 would not spare
 * the gateway the upload), or nothing once a plugin stopped reading (the
 * connection hangs). Call it after writeHead.
 */
export function discardUnread(req: IncomingMessage, res: ServerResponse, connection: string | string[] | number | undefined): void {
  if (req.complete || req.destroyed || !res.shouldKeepAlive || (connection !== undefined && /\bclose\b/i.test(String(connection))) || !hasBody(req)) return;
  let left = DISCARD_LIMIT;
  const drop = (chunk: Buffer): void => {
    left -= chunk.length;
    if (left >= 0) return;
    req.off('data', drop); // still flowing: the rest is dropped
    const socket = req.socket;
    const linger = (): void => {
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    };
    if (res.writableFinished) linger();
    else res.once('finish', linger);
  };
  req.on('data', drop);
  req.resume();
}

/**
 * The next chunk of the request body (kept in ctx.bodyPrefix: the proxy sends
 * what was read, then the rest of the stream), or null at its end. The
 * iterator does not destroy the stream when a reader stops early (a plain
 * for-await would, and the client's connection with it).
 */
async function pullChunk(ctx: RequestContext): Promise<Buffer | null> {
  if (ctx.bodyEnded) return null;
  ctx.continueBody();
  const it = (ctx.bodyIter ??= ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>);
  const r = await it.next();
  if (r.done === true) {
    ctx.bodyEnded = true;
    ctx.bodyIter = null;
    return null;
  }
  (ctx.bodyPrefix ??= []).push(r.value);
  return r.value;
}

/** A reader stopped before the end of the body: release the stream for the proxy (or the next reader). */
async function stopReading(ctx: RequestContext): Promise<void> {
  const it = ctx.bodyIter;
  ctx.bodyIter = null;
  await it?.return?.();
}

/** Buffers the body up to `limit`; above it, keeps what was read for the proxy to stream first. */
async function readBody(ctx: RequestContext, limit: number): Promise<Buffer | null> {
  if (ctx.bodyBuffer !== null) return ctx.bodyBuffer.length <= limit ? ctx.bodyBuffer : null;
  const req = ctx.req;
  if (!hasBody(req)) return (ctx.bodyBuffer = Buffer.alloc(0));
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return null;
  let total = 0;
  if (ctx.bodyPrefix !== null) for (const chunk of ctx.bodyPrefix) total += chunk.length;
  while (total <= limit) {
    const chunk = await pullChunk(ctx);
    if (chunk === null) {
      const chunks = ctx.bodyPrefix;
      ctx.bodyPrefix = null;
      return (ctx.bodyBuffer = chunks === null ? Buffer.alloc(0) : Buffer.concat(chunks, total));
    }
    total += chunk.length;
  }
  await stopReading(ctx);
  return null;
}

/** The body as it arrives (see PdkRequest.bodyChunks): chunks an earlier reader took first, then the stream. */
async function* bodyChunks(ctx: RequestContext, limit: number): AsyncGenerator<Buffer> {
  if (ctx.bodyBuffer !== null) {
    if (ctx.bodyBuffer.length > 0) yield ctx.bodyBuffer;
    return;
  }
  if (!hasBody(ctx.req)) return;
  let total = 0;
  const taken = ctx.bodyPrefix;
  if (taken !== null) {
    for (let i = 0; i < taken.length && total <= limit; i++) {
      total += taken[i]!.length;
      yield taken[i]!;
    }
  }
  try {
    while (total <= limit) {
      const chunk = await pullChunk(ctx);
      if (chunk === null) return;
      total += chunk.length;
      yield chunk;
    }
  } finally {
    if (!ctx.bodyEnded) await stopReading(ctx);
  }
}

const NO_DECISIONS: readonly PdkDecision[] = Object.freeze([]);
const kReadMark = Symbol('palisade.readMark');
type MarkedSocket = Socket & { [kReadMark]?: number };
const NO_SPANS: readonly PdkPhaseSpan[] = Object.freeze([]);
const ms = (ns: bigint) => Number(ns) / 1e6;

/** Timings read off the context when asked (the log phase has the final ones). */
class Timings implements PdkTimings {
  readonly startedAt: number;
  readonly total: number;
  readonly upstream: number;
  readonly upstreamHeaders: number;
  readonly gateway: number;
  readonly upstreamStart: number;
  constructor(ctx: RequestContext) {
    const end = ctx.endNs || process.hrtime.bigint();
    this.startedAt = ctx.startedAt;
    this.total = ms(end - ctx.startNs);
    const up = ctx.upstreamStartNs;
    this.upstream = up === 0n ? 0 : ms((ctx.upstreamEndNs || end) - up);
    this.upstreamHeaders = up === 0n || ctx.upstreamHeadersNs === 0n ? 0 : ms(ctx.upstreamHeadersNs - up);
    this.gateway = this.total - this.upstream;
    this.upstreamStart = up === 0n ? -1 : ms(up - ctx.startNs);
  }
}

export class RequestContext implements PdkContext, PdkResponse {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly runtime: RuntimeConfig;
  readonly startNs: bigint;
  /** Arrival time, ms since the epoch. */
  readonly startedAt: number;
  /** Set when the exchange is over (before the log phase). */
  endNs = 0n;
  /** The connection (req.socket is detached once the response is done). */
  readonly socket: Socket;
  /** Socket bytes read before this request (to count what it received on the wire). */
  readonly bytesReadAtStart: number;
  readonly requestId: string;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly remoteAddress: string;
  readonly clientIp: string;
  readonly peerTrusted: boolean;
  path: string;
  rawQuery: string;
  host: string;
  port: number;
  routeRuntime: RouteRuntime | null = null;
  /** The plugin chain in use (the consumer's once one is identified). */
  chain: Chain | null = null;
  captures: Record<string, string> | null = null;
  matchedLength = 0;
  consumer: PdkConsumer | null = null;
  credential: PdkCredential | null = null;
  anonymous = false;
  /** A buffered request body (read by a plugin, or replaced); sent instead of the stream. */
  bodyBuffer: Buffer | null = null;
  /** Chunks already read from a body that was too large to buffer; sent before the rest of the stream. */
  bodyPrefix: Buffer[] | null = null;
  bodyRead: Promise<Buffer | null> | null = null;
  /** The body iterator of a reader in progress (readBody, bodyChunks); null between readers. */
  bodyIter: AsyncIterator<Buffer> | null = null;
  /** The whole body was read from the client (it is in bodyPrefix or bodyBuffer). */
  bodyEnded = false;
  /**
   * The client sent Expect: 100-continue and waits for it before sending the body: the listener does not
   * answer it (it would, before access control), the first reader of the body does (continueBody()).
   */
  #awaitsContinue = true;
  /** Query string sent upstream when a plugin replaced it. */
  upstreamQuery: string | null = null;
  /** Header overrides for the upstream request (null value = remove). */
  upstreamHeaders: Map<string, string | null> | null = null;
  bodyLimit = -1;
  status = 0;
  source: 'upstream' | 'gateway' = 'gateway';
  /** Response headers (lower-case names) before they are written. */
  headers: ResponseHeaders = {};
  upstreamStartNs = 0n;
  upstreamHeadersNs = 0n;
  upstreamEndNs = 0n;
  upstreamTarget: string | null = null;
  /** Path sent upstream (set when the upstream call is built). */
  upstreamPath: string | null = null;
  tries = 0;
  bytesOut = 0;
  errorCode: string | null = null;
  traceId: string | null = null;
  /** Plugin handler runs, when a plugin of this version asked for them (PluginHandlers.tracePhases). */
  readonly phaseRuns: { plugin: string; phase: PdkPhaseSpan['phase']; start: number; end: number }[] | null;
  /** performance.now() at arrival, when phases are traced (their times are ms since it: cheaper than hrtime.bigint). */
  readonly phaseOrigin: number;
  /** The plugin whose handler runs now. */
  plugin: string | null = null;
  /** Upstream response body cap (-1 = none), and the plugin that set it. */
  responseBodyLimit = -1;
  responseLimitBy: string | null = null;
  /** The upstream response is held for the body phase (head not written yet). */
  holdResponse = false;
  /** A response body set in the body phase. */
  responseBody: Buffer | null = null;
  #decisions: PdkDecision[] | null = null;
  #shared: Record<string, unknown> | null = null;
  #request: RequestView | null = null;
  #timings: Timings | null = null;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    runtime: RuntimeConfig,
    init: { requestId: string; scheme: 'http' | 'https'; remoteAddress: string; clientIp: string; peerTrusted: boolean; path: string; rawQuery: string; host: string; port: number },
  ) {
    this.req = req;
    this.res = res;
    this.runtime = runtime;
    this.phaseRuns = runtime.tracePhases ? [] : null;
    this.phaseOrigin = runtime.tracePhases ? performance.now() : 0;
    this.startNs = process.hrtime.bigint();
    this.startedAt = Date.now();
    this.socket = req.socket;
    // node:http has read this request's head already: count from where the previous request on this connection ended.
    this.bytesReadAtStart = (req.socket as MarkedSocket)[kReadMark] ?? 0;
    this.method = req.method ?? 'GET';
    this.requestId = init.requestId;
    this.scheme = init.scheme;
    this.remoteAddress = init.remoteAddress;
    this.clientIp = init.clientIp;
    this.peerTrusted = init.peerTrusted;
    this.path = init.path;
    this.rawQuery = init.rawQuery;
    this.host = init.host;
    this.port = init.port;
  }

  get request(): PdkRequest {
    return (this.#request ??= new RequestView(this));
  }
  get response(): PdkResponse {
    return this;
  }
  get route(): PdkEntityRef | null {
    return this.routeRuntime?.ref ?? null;
  }
  get service(): PdkEntityRef | null {
    return this.routeRuntime?.service.ref ?? null;
  }
  get shared(): Record<string, unknown> {
    return (this.#shared ??= {});
  }

  authenticate(consumer: PdkConsumer | null, credential: PdkCredential | null, anonymous = false): void {
    this.consumer = consumer;
    this.credential = credential;
    this.anonymous = anonymous;
    this.decide(anonymous ? 'anonymous' : 'authenticated', anonymous ? 'anonymous consumer' : 'credentials accepted');
  }

  get decisions(): readonly PdkDecision[] {
    return this.#decisions ?? NO_DECISIONS;
  }
  decide(outcome: PdkDecision['outcome'], reason: string, status = 0): void {
    (this.#decisions ??= []).push({ plugin: this.plugin ?? 'core', outcome, reason, status });
  }
  get phaseSpans(): readonly PdkPhaseSpan[] {
    return this.phaseRuns ?? NO_SPANS;
  }
  get timings(): PdkTimings {
    // Final once the exchange is over (the log phase): computed once for every log plugin that asks.
    if (this.endNs !== 0n) return (this.#timings ??= new Timings(this));
    return new Timings(this);
  }
  get bytesReceived(): number {
    return this.socket.bytesRead - this.bytesReadAtStart;
  }
  /** About to read the request body: answer a pending Expect: 100-continue (a refusal before it never asks for the body). */
  continueBody(): void {
    if (!this.#awaitsContinue) return;
    this.#awaitsContinue = false;
    const expect = this.req.headers.expect;
    if (expect !== undefined && expect.trim().toLowerCase() === '100-continue' && !this.res.headersSent) this.res.writeContinue();
  }
  /** The exchange is over (after the log phase): the next request on this connection counts its bytes from here. */
  markRead(): void {
    (this.socket as MarkedSocket)[kReadMark] = this.socket.bytesRead;
  }
  get bytesSent(): number {
    return this.bytesOut;
  }
  get configVersion(): string {
    return this.runtime.version;
  }
  get upstreamUri(): string | null {
    if (this.upstreamPath === null) return null;
    const q = this.upstreamQuery ?? this.rawQuery;
    return q === '' ? this.upstreamPath : `${this.upstreamPath}?${q}`;
  }

  respond(status: number, body?: string | Buffer | object | null, headers?: Record<string, string>): Reply {
    if (body === undefined || body === null) return new Reply(status, null, headers ?? {});
    if (typeof body === 'string' || Buffer.isBuffer(body)) return new Reply(status, body, headers ?? {});
    return new Reply(status, JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8', ...headers });
  }
  reject(status: number, message: string, headers?: Record<string, string>): Reply {
    return problem(status, message, this.requestId, headers);
  }

  // PdkResponse
  getHeader(name: string): string | string[] | undefined {
    const v = headerOf(this.headers, name.toLowerCase());
    return typeof v === 'number' ? String(v) : v;
  }
  setHeader(name: string, value: string | string[]): void {
    setHeaderOf(this.headers, name.toLowerCase(), value);
  }
  addHeader(name: string, value: string): void {
    const key = name.toLowerCase();
    const cur = headerOf(this.headers, key);
    if (cur === undefined) setHeaderOf(this.headers, key, value);
    else if (Array.isArray(cur)) cur.push(value);
    else setHeaderOf(this.headers, key, [String(cur), value]);
  }
  removeHeader(name: string): void {
    delete this.headers[name.toLowerCase()];
  }
  getHeaders(): Readonly<ResponseHeaders> {
    return this.headers;
  }
  setBodyLimit(bytes: number): void {
    if (this.responseBodyLimit < 0 || bytes < this.responseBodyLimit) {
      this.responseBodyLimit = bytes;
      this.responseLimitBy = this.plugin;
    }
  }
  /** The response body limit refused or cut the response: the decision of the plugin that set it. */
  decideLimit(): void {
    const running = this.plugin;
    this.plugin = this.responseLimitBy;
    this.decide('deny', 'Response size limit exceeded', 502);
    this.plugin = running;
  }
  setBody(body: Buffer | string): void {
    this.responseBody = typeof body === 'string' ? Buffer.from(body) : body;
  }
}
