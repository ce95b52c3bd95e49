/**
 * The plugin development kit: the only surface plugins use (enforced by
 * test/conformance/plugins.test.ts). Everything a plugin may touch of a
 * request, of the routing result, of the identity and of the response is here.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { IncomingHttpHeaders } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { Reply } from './reply.ts';

export { Reply, problem } from './reply.ts';
export { Enum, payloadSizeFields, payloadBytes } from './schema.ts';
export { logSerializer, splitTarget, redactQuery, roundMs, isSecretName, isSecretHeader, checkLogConfig, RedactField, CustomFieldsByLuaField, REDACTED, type LogRecord, type LogSerializerOptions, type NameSet } from './log-record.ts';
export { headerOf } from './own-header.ts';
export { LogQueue, QueueSchema, LOG_STREAM_QUEUE, countDrops, dropCounter, queuedLogHandlers, byteEntries, type QueueParameters, type BatchSender, type DropListener, type LogDelivery, type EntryKind } from './log-queue.ts';
export { LogArena, type ByteEntry } from './log-arena.ts';
export { asciiJson, fragment, jsonText } from './json-line.ts';
export { StreamSender, DatagramSender, type StreamTarget } from './log-transport.ts';
export { post, type PostOptions, type PostResult } from './http-post.ts';
export { mediaTypeMatcher, MEDIA_TYPE_MASK } from './media-type.ts';
export { decodable, decodeBody, describeFailure, isDecodeFailure, SUPPORTED_CODINGS, type DecodeFailure } from './content-encoding.ts';

/** What a phase handler may return: nothing (go on) or a Reply (stop the chain and answer). */
export type HandlerResult = void | Reply | Promise<void | Reply>;

export interface PdkTls {
  /** The SNI the client sent, or null. */
  readonly servername: string | null;
  /** True when the client presented a certificate that verified against the configured CAs. */
  readonly authorized: boolean;
  /** Why verification failed, when it did. */
  readonly authorizationError: string | null;
  /** The client certificate, or null when none was presented. */
  peerCertificate(): PeerCertificate | null;
}

export interface PdkRequest {
  readonly method: string;
  /** The request path without the query string, normalised (dot segments resolved, unreserved escapes decoded, // merged). */
  readonly path: string;
  /** The raw query string without '?', or ''. */
  readonly rawQuery: string;
  /** The request target exactly as received (origin form "/p?q" or absolute form), undecoded. */
  readonly target: string;
  /** HTTP version of the request ("1.1", "1.0", "2.0"). */
  readonly httpVersion: string;
  /** Parsed query (lazy). */
  readonly query: URLSearchParams;
  /** Incoming headers, lower-cased names (node:http). */
  readonly headers: IncomingHttpHeaders;
  /** First value of a header, or undefined. */
  header(name: string): string | undefined;
  /** Headers as received: name, value, name, value … (node:http rawHeaders; a repeated header stays repeated). */
  readonly rawHeaders: readonly string[];
  readonly scheme: 'http' | 'https';
  /** Host the client asked for, without port, lower-case. */
  readonly host: string;
  /** Port from the Host header (or the request target's authority), else the listener port. */
  readonly port: number;
  /** The real client IP: the peer, or the first untrusted hop of X-Forwarded-For when the peer is trusted. */
  readonly clientIp: string;
  /** The TCP peer address. */
  readonly remoteAddress: string;
  /** Declared Content-Length, or -1 when absent (chunked or no body). */
  readonly contentLength: number;
  /** Whether the request has a body: a Content-Length other than 0, or a Transfer-Encoding (RFC 9112 §6.3). */
  readonly hasBody: boolean;
  readonly tls: PdkTls | null;
  /** Cap the number of body bytes streamed upstream; above it the client gets 413. */
  setBodyLimit(bytes: number): void;
  /**
   * Read (buffer) the whole request body, at most `limit` bytes (null when it
   * is larger). The buffered body is what goes upstream afterwards. Plugins
   * that need the body declare it; everything else streams.
   */
  readBody(limit: number): Promise<Buffer | null>;
  /**
   * Read the request body as it arrives, for plugins that judge it on the fly
   * and stop early (bounded memory, early answers). Yields the chunks in order
   * and ends at the end of the body, or after the chunk that takes the total
   * past `limit` (the caller counts, and checks a declared contentLength
   * itself). Breaking out of the loop stops reading. Whatever was read still
   * goes upstream unchanged, followed by the rest of the stream; a body
   * already buffered (readBody, setBody) is yielded as one chunk. Combines
   * with readBody in either order.
   */
  bodyChunks(limit: number): AsyncIterable<Buffer>;
  /** Replace the body sent upstream (Content-Length follows). */
  setBody(body: Buffer | string): void;
  /** Replace the query string sent upstream ('' = none). */
  setRawQuery(query: string): void;
  /** Set a header on the request sent upstream. */
  setHeader(name: string, value: string): void;
  /** Remove a header from the request sent upstream. */
  removeHeader(name: string): void;
}

export interface PdkResponse {
  /** Status sent (or to be sent) to the client. */
  readonly status: number;
  /** 'upstream' when the service answered, 'gateway' when Palisade answered itself. */
  readonly source: 'upstream' | 'gateway';
  getHeader(name: string): string | string[] | undefined;
  setHeader(name: string, value: string | string[]): void;
  /** Append a value (e.g. Vary). */
  addHeader(name: string, value: string): void;
  removeHeader(name: string): void;
  /**
   * Cap the upstream response body: a declared Content-Length above it is
   * answered 502 before anything is sent; a streamed body that grows past it
   * is cut (502 when nothing was sent yet, else the connection is closed).
   */
  setBodyLimit(bytes: number): void;
  /** In the body phase: replace the response body sent to the client (Content-Length follows). */
  setBody(body: Buffer | string): void;
  /** All response headers (lower-case names) as sent (or to be sent) to the client. */
  getHeaders(): Readonly<Record<string, string | string[] | number | undefined>>;
}

/** Where the time of a request went (milliseconds; complete in the log phase). */
export interface PdkTimings {
  /** When the request arrived (ms since the epoch). */
  readonly startedAt: number;
  /** Arrival to the end of the response (Kong's latencies.request). */
  readonly total: number;
  /** From sending the request upstream to the end of its response (Kong's latencies.proxy); 0 without an upstream call. */
  readonly upstream: number;
  /** From sending the request upstream to its response headers; 0 without an upstream call. */
  readonly upstreamHeaders: number;
  /** total − upstream: the gateway's own time (Kong's latencies.kong). */
  readonly gateway: number;
  /** From arrival to sending the request upstream (its last try, when it was retried); -1 without an upstream call. */
  readonly upstreamStart: number;
}

/**
 * A security decision taken on a request: recorded by the core when a plugin
 * authenticates a client or refuses a request, and by plugins themselves
 * (`ctx.decide`) for what the core cannot see (a detection in log-only mode).
 * Metrics, logs and the audit trail read them in the log phase.
 */
export interface PdkDecision {
  /** The plugin that decided. */
  readonly plugin: string;
  /** authenticated / anonymous (identity), deny (the request was refused), detect (found, let through), allow (explicitly allowed). */
  readonly outcome: 'authenticated' | 'anonymous' | 'deny' | 'detect' | 'allow';
  /** Why, in words safe to log (never a secret or a payload). */
  readonly reason: string;
  /** The status answered, for a deny. */
  readonly status: number;
}

export interface PdkEntityRef {
  readonly id: string;
  readonly name: string | null;
  readonly tags: readonly string[];
  /** Services only: the configured host (of `url` or `host`; an upstream's name), Kong's service.host. */
  readonly host?: string;
}

export interface PdkConsumer {
  readonly id: string;
  readonly username: string | null;
  readonly custom_id: string | null;
  readonly tags: readonly string[];
  /** Names of the consumer groups it belongs to (consumer_groups). */
  readonly groups: readonly string[];
}

export interface PdkCredential {
  /** Stable id of the credential entity. */
  readonly id: string;
  /** What X-Credential-Identifier carries (key id, username, subject …), or null. */
  readonly identifier: string | null;
}

/** A consumer's credential of one kind, as declared in the config (validated, defaults filled). */
export interface CredentialEntry<C = Record<string, unknown>> {
  readonly consumer: PdkConsumer;
  readonly credential: C & { id: string };
}

/** Read-only view of the consumers of the running config version. */
export interface ConsumerDirectory {
  /** By id, username or custom_id. */
  find(ref: string): PdkConsumer | null;
  /** By exactly one field (Kong's consumer_by lookups). */
  findBy(field: 'username' | 'custom_id', value: string): PdkConsumer | null;
  all(): readonly PdkConsumer[];
}

/** Shared counters (in-process, across cluster workers, or Redis): sliding windows and locks. */
export interface CounterStore {
  /** Add `by` to a fixed window counter of `windowMs` and return the new total. */
  increment(key: string, by: number, windowMs: number): Promise<number>;
  /** Current total of the window counter, 0 when absent or expired. */
  get(key: string): Promise<number>;
  /** Set a flag that expires after `ttlMs`. */
  lock(key: string, ttlMs: number): Promise<void>;
  /** Milliseconds left on a flag, 0 when not set. */
  lockedFor(key: string): Promise<number>;
  /** Remove a counter or flag. */
  delete(key: string): Promise<void>;
  /**
   * Rate limits: count one request against several windows of `key` at once,
   * atomically — admitted only when every window has room, and then counted
   * in all of them. In-process: synchronous. Across cluster workers: the
   * primary hands out quota leases that workers consume locally (never more
   * than the limit in total). Sliding windows weigh the previous window's
   * count by the part of it still inside the sliding interval.
   */
  hit?(key: string, windows: RateWindows, sliding: boolean, now: number): RateVerdict | Promise<RateVerdict>;
}

/** One window a rate-limited request is counted in (ms since the epoch). Immutable. */
export interface RateWindow {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  /** Start of the window before this one. */
  readonly prevStart: number;
}

/** The windows of one rate-limit check, in parallel arrays (smallest window first). */
export interface RateWindows {
  /** Window names (e.g. 'second', 'minute'): part of the keys of shared stores. */
  readonly names: readonly string[];
  /** Requests allowed in each window (may be fractional, as in Kong: admitted while usage < limit). */
  readonly limits: readonly number[];
  /** The current window of each. */
  readonly current: readonly RateWindow[];
}

export interface RateVerdict {
  readonly admitted: boolean;
  /** Usage of each window, including this request when admitted (sliding: the weighted estimate). */
  readonly usage: readonly number[];
  /** When refused: the earliest time (ms since the epoch) a request can be admitted again. */
  readonly retryAt: number;
}

/** Connection settings of a Redis (standalone, Sentinel or Cluster), Kong's `redis` record plus `url`. */
export interface RedisSettings {
  /** redis:// or rediss:// URL (Palisade); the other fields complete it. */
  readonly url?: string;
  readonly host?: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly database: number;
  readonly connect_timeout: number;
  /** Command timeout (a reply must arrive within it). */
  readonly read_timeout: number;
  readonly ssl: boolean;
  readonly ssl_verify: boolean;
  readonly server_name?: string;
  readonly sentinel_master?: string;
  readonly sentinel_nodes?: readonly { host: string; port: number }[];
  readonly sentinel_username?: string;
  readonly sentinel_password?: string;
  readonly cluster_nodes?: readonly { ip: string; port: number }[];
  readonly cluster_max_redirections: number;
}

/** A store on Redis: one round trip per call, atomic (a Lua script), keys expire on their own. */
export interface RedisStore {
  /** As CounterStore.hit; rejects when Redis is unreachable or too slow (the caller decides: fail open or closed). */
  hit(key: string, windows: RateWindows, sliding: boolean, now: number): Promise<RateVerdict>;
  /**
   * Plain counters of one client (`key`, e.g. response-ratelimiting's quotas):
   * add `by[i]` to counter `fields[i]` (0 = only read) and return the totals,
   * atomically in one round trip; a counter that was added to expires at
   * `expireAt[i]` (ms since the epoch). Rejects like `hit`.
   */
  add(key: string, fields: readonly string[], by: readonly number[], expireAt: readonly number[]): Promise<number[]>;
}

/** The entity a plugin instance is attached to (stable ids; null = not scoped to that kind). */
export interface PluginScope {
  readonly service: string | null;
  readonly route: string | null;
  readonly consumer: string | null;
}

export interface PdkContext {
  readonly requestId: string;
  readonly request: PdkRequest;
  readonly response: PdkResponse;
  /** The matched route and service (null in the rewrite phase, which runs before routing). */
  readonly route: PdkEntityRef | null;
  readonly service: PdkEntityRef | null;
  /** Named captures of a regex route path. */
  readonly captures: Readonly<Record<string, string>> | null;
  readonly consumer: PdkConsumer | null;
  readonly credential: PdkCredential | null;
  /** True when the consumer is the `anonymous` fallback of an auth plugin. */
  readonly anonymous: boolean;
  /**
   * Identify the client (Kong's kong.client.authenticate). The gateway sends
   * X-Consumer-ID, -Username, -Custom-ID, X-Credential-Identifier upstream (or
   * X-Anonymous-Consumer: true) and strips any copies the client sent.
   * `consumer` null with a credential = authenticated without a consumer
   * (Kong's kong.client.authenticate(nil, credential), e.g. ldap-auth): only
   * X-Credential-Identifier goes upstream, and other auth plugins in "any of
   * them" mode see the client as authenticated.
   */
  authenticate(consumer: PdkConsumer | null, credential: PdkCredential | null, anonymous?: boolean): void;
  /** Per-request scratch space shared between plugins (Kong's kong.ctx.shared). */
  readonly shared: Record<string, unknown>;
  /** The plugin whose handler runs now (null in the core). */
  readonly plugin: string | null;
  /** Security decisions so far, in order. */
  readonly decisions: readonly PdkDecision[];
  /** Record a decision of the running plugin (see PdkDecision). */
  decide(outcome: PdkDecision['outcome'], reason: string, status?: number): void;
  /** Timings of the request (final in the log phase). */
  readonly timings: PdkTimings;
  /** The upstream target that answered (host:port), or null. */
  readonly upstreamTarget: string | null;
  /** Upstream attempts (1 + retries; 0 when the gateway answered itself). */
  readonly tries: number;
  /** Bytes received from the client for this request (head and body, on the wire). */
  readonly bytesReceived: number;
  /** Response body bytes sent to the client. */
  readonly bytesSent: number;
  /** The gateway's error code (PALISADE_ERR_*) when the gateway failed the request, else null. */
  readonly errorCode: string | null;
  /** Version (hash) of the config the request runs on. */
  readonly configVersion: string;
  /** W3C trace id (32 hex digits) when a tracing plugin traces this request (written in the access log), else null. */
  traceId: string | null;
  /**
   * Plugin handler runs of the rewrite, access, response and body phases, in
   * order — recorded only when a plugin of the config version asks for them
   * (PluginHandlers.tracePhases), else empty.
   */
  readonly phaseSpans: readonly PdkPhaseSpan[];
  /** Path and query sent upstream (after strip_path and query changes), or null when the gateway answered itself. */
  readonly upstreamUri: string | null;
  /** Answer the client now with this status, body and headers. */
  respond(status: number, body?: string | Buffer | object | null, headers?: Record<string, string>): Reply;
  /** Answer with an RFC 9457 problem document that also carries Kong's `message`. */
  reject(status: number, message: string, headers?: Record<string, string>): Reply;
}

export interface PluginHandlers {
  rewrite?(ctx: PdkContext): HandlerResult;
  access?(ctx: PdkContext): HandlerResult;
  /**
   * Upstream status and headers arrived (or the gateway answered itself).
   * Returning a Reply replaces the upstream response before anything is sent
   * (Kong's kong.response.exit in header_filter); for the gateway's own
   * replies a returned Reply is ignored.
   */
  response?(ctx: PdkContext): HandlerResult;
  /**
   * Needs the whole upstream response body: the core buffers it (up to
   * server.response_buffer_limit) after the response phase and before anything
   * is sent. `body` is null when the response is larger than that limit (it
   * is then streamed after this handler). Returning a Reply replaces the
   * upstream response; ctx.response.setBody replaces only its body. Not called
   * for HEAD requests, 1xx/204/304 responses and gateway replies.
   */
  body?(ctx: PdkContext, body: Buffer | null): HandlerResult;
  log?(ctx: PdkContext): void | Promise<void>;
  /**
   * Release what create() opened (connections, timers) when this config version
   * is retired. A promise (e.g. log entries still being delivered) is awaited
   * at shutdown, for a few seconds at most; a reload does not wait for it.
   */
  dispose?(): void | Promise<void>;
  /** Query parameters this instance reads credentials from (e.g. key-auth's key_names, jwt's uri_param_names): redacted in the access log and in log records. */
  readonly sensitiveQueryParams?: readonly string[];
  /**
   * Request headers this instance reads credentials from (e.g. key-auth's
   * key_names, jwt's header_names): redacted in log records (the access log
   * writes no headers). Authorization, Proxy-Authorization, Cookie and headers
   * named like a secret (`…-key`, `…-token` …) are redacted anyway.
   */
  readonly sensitiveHeaders?: readonly string[];
  /** Ask the core to record per-plugin phase timings (ctx.phaseSpans) on every request of this config version (tracing plugins). */
  readonly tracePhases?: boolean;
}

/** One plugin handler run (ms since the request arrived; end is -1 while it runs). */
export interface PdkPhaseSpan {
  readonly plugin: string;
  readonly phase: 'rewrite' | 'access' | 'response' | 'body';
  readonly start: number;
  readonly end: number;
}

/** How cluster workers' values of a gauge combine on /metrics (prom-client's aggregators). */
export type MetricAggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

/** Health of one upstream target (Kong's kong_upstream_target_health states). */
export interface UpstreamTargetHealth {
  readonly upstream: string;
  readonly target: string;
  readonly address: string;
  readonly state: 'healthy' | 'unhealthy' | 'healthchecks_off' | 'dns_error';
}

/**
 * The gateway's prom-client metrics. Metrics outlive config versions (a reload
 * keeps their values): get them here by name — the same name and labels give
 * the same metric, a different definition throws (a config error in create()).
 * Across cluster workers /metrics sums counters and histograms.
 */
export interface MetricsService {
  counter(name: string, help: string, labelNames: readonly string[]): Counter<string>;
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram<string>;
  /**
   * A gauge. With `fill`, it is cleared and filled by it at each scrape while
   * this config version runs (gauges that read state, e.g. upstream health).
   */
  gauge(name: string, help: string, labelNames: readonly string[], options?: { aggregator?: MetricAggregator; fill?: (gauge: Gauge<string>) => void }): Gauge<string>;
  /**
   * A counter for what every request records: look a series up once (keep
   * it), then add to its `value` — no label hashing per request. Exposed like
   * counter()'s, summed across workers.
   */
  tallyCounter(name: string, help: string, labelNames: readonly string[]): { series(labels: Readonly<Record<string, string>>): TallySeries };
  /** A histogram for what every request records: look a series up once, then observe() into it. */
  tallyHistogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): { series(labels: Readonly<Record<string, string>>): HistogramSeries };
  /** The upstream targets of this config version and their health (read-only). */
  upstreamTargets(): readonly UpstreamTargetHealth[];
}

/** One series of a tallyCounter: add to `value` (never subtract). */
export interface TallySeries {
  value: number;
}

/** One series of a tallyHistogram. */
export interface HistogramSeries {
  observe(value: number): void;
}

export interface PluginServices {
  readonly logger: Logger;
  readonly consumers: ConsumerDirectory;
  /** This plugin's credentials from every consumer (its `credential.field`). */
  readonly credentials: readonly CredentialEntry[];
  /** Build once per config version and share between this plugin's instances (indexes, caches). */
  memo<T>(key: string, build: () => T): T;
  /** The gateway's shared counter store (brute-force lockout, limits). */
  readonly counters: CounterStore;
  /** Where this plugin instance is attached. */
  readonly scope: PluginScope;
  /**
   * A Redis store for these settings. Connections are shared by equal
   * settings, opened on first use (never by a dry compile) and closed when no
   * running config version uses them any more.
   */
  redis(settings: RedisSettings): RedisStore;
  /** The gateway's metrics registry (served on /metrics of the status listener). */
  readonly metrics: MetricsService;
  /**
   * Query parameter names (lower-case) that plugins of this config version
   * read secrets from (their sensitiveQueryParams): the access log and log
   * plugins redact them. Complete once the config version is compiled (read
   * it per request).
   */
  readonly sensitiveQuery: ReadonlySet<string>;
  /** Header names (lower-case) that plugins of this config version read secrets from (their sensitiveHeaders): log plugins redact them. Complete once compiled, like sensitiveQuery. */
  readonly sensitiveHeaders: ReadonlySet<string>;
}

export interface CredentialDefinition<S extends TSchema = TSchema> {
  /** The consumer field holding this kind of credential (Kong's name, e.g. keyauth_credentials). */
  readonly field: string;
  readonly schema: S;
  /** Cross-field rules for one credential: return an error message, or null. */
  validate?(credential: Static<S>): string | null;
}

export interface PluginDefinition<S extends TSchema = TSchema> {
  /** kebab-case; equals the folder name and the config key. */
  readonly name: string;
  /** Higher runs first inside a phase. Bands: see ARCHITECTURE.md. Unique across plugins. */
  readonly priority: number;
  readonly description: string;
  readonly schema: S;
  /** Cross-field rules (Kong's custom_validator): return an error message, or null. */
  validate?(config: Static<S>): string | null;
  /** Credentials this plugin reads from consumers (declared in the config under `field`). */
  readonly credential?: CredentialDefinition;
  /** Build everything derivable from config once; throw on misconfiguration. */
  create(config: Static<S>, services: PluginServices): PluginHandlers;
}

export function definePlugin<S extends TSchema>(def: PluginDefinition<S>): PluginDefinition<S> {
  return def;
}
