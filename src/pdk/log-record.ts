/**
 * The log record: one shared serializer for every log plugin (http-log,
 * file-log, tcp-log, syslog), in the shape of Kong's kong.log.serialize()
 * plus Palisade's request id, security decisions and config version.
 * Documented field by field in docs/log-record.md.
 *
 * Secrets never reach a log: Authorization, Proxy-Authorization, Cookie,
 * Set-Cookie and API-key headers (also any header named like a secret:
 * `…-key`, `…-token`, `…-secret`, `…-password`, `…-signature`), query
 * parameters that usually carry secrets, the header and query names plugins of
 * the running config read credentials from (their sensitiveHeaders and
 * sensitiveQueryParams: services.sensitiveHeaders / sensitiveQuery), any
 * value that is a JSON Web Token, and what
 * the plugin's `redact` list names are replaced by "REDACTED" — in headers, in
 * `querystring` and in the query part of `uri`, `url` and `upstream_uri`.
 */
import { Type } from '@sinclair/typebox';
import type { IncomingHttpHeaders } from 'node:http';
import type { PdkContext, PdkDecision, PluginServices } from './index.ts';
import { asciiJson, jsonOrNull, jsonText, msText } from './json-line.ts';

export const REDACTED = 'REDACTED';

/** Query parameter names that commonly carry secrets (also used for header names). */
const SECRET_PARAMS = /^(api[-_]?key|apikey|key|token|access_token|id_token|refresh_token|client_secret|password|passwd|secret|signature|sig|code|jwt|session)$/i;

/** Headers that carry credentials or session state. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'apikey', 'signature']);

/**
 * Header names that read like a secret: x-api-key, x-apikey, x-partner-key,
 * x-session-token, x-client-secret, x-db-password, x-request-signature,
 * x-honeycomb-team, x-amzn-session … Over-redacting a harmless header beats
 * logging a credential.
 */
const SECRET_HEADER_SUFFIX = /[-_](key|apikey|token|secret|password|passwd|signature|credentials?|team|session)$/i;

/** Whether a header of this name carries a credential: the log serializers' and the admin API's config redactor's one rule. */
export function isSecretHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.has(lower) || SECRET_HEADER_SUFFIX.test(lower);
}

/** A JSON Web Token (compact JWS or JWE: the base64url of a JSON header, so "eyJ…", then a dot), alone or after an auth scheme ("Bearer ", "DPoP ", "JWT "…). */
const JWT = /^(?:[A-Za-z][\w-]*[ \t]+)?eyJ[\w-]*\./;

/**
 * Whether a value is a JSON Web Token: a bearer credential whatever the
 * header or query parameter that carries it is called, so it is redacted
 * too. Cheap: values without "eyJ" (most) are not matched, and the match
 * reads no further than the token's first segment.
 */
export const isJwt = (v: string): boolean => v.indexOf('eyJ') >= 0 && JWT.test(v);

/** A header or query value as logged: REDACTED when it is a JSON Web Token. */
const logged = (v: string): string => (isJwt(v) ? REDACTED : v);

/** A set of (lower-case) names; only membership is asked. */
export interface NameSet {
  has(name: string): boolean;
}

/** Whether a query parameter (or header) of this name is redacted: the usual secret names, or one in `extra` (lower-case). */
export function isSecretName(name: string, extra?: NameSet): boolean {
  return SECRET_PARAMS.test(name) || (extra !== undefined && extra.has(name.toLowerCase()));
}

/** A raw query string with the values of secret parameters replaced by REDACTED (names and order kept). */
export function redactQuery(rawQuery: string, extra?: NameSet): string {
  if (rawQuery === '') return '';
  return rawQuery
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      return isSecretName(safeDecode(name), extra) || isJwt(value.includes('%') || value.includes('+') ? safeDecode(value) : value) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

export interface LogEntityRef {
  id: string;
  name: string | null;
  tags: readonly string[];
}

/** The record every log plugin writes (docs/log-record.md). */
export interface LogRecord {
  request_id: string;
  request: {
    id: string;
    method: string;
    uri: string;
    url: string;
    size: number;
    querystring: Record<string, string | true | (string | true)[]>;
    headers: Record<string, string | string[]>;
    tls?: { client_verify: string; sni: string | null };
  };
  upstream_uri: string;
  response: { status: number; size: number; headers: Record<string, string | string[]> };
  route?: LogEntityRef;
  service?: LogEntityRef;
  consumer?: { id: string; username: string | null; custom_id: string | null; tags: readonly string[] };
  authenticated_entity?: { id: string; consumer_id: string | null };
  latencies: { request: number; kong: number; proxy: number; upstream_headers: number };
  tries: { ip: string; port: number }[];
  upstream_target: string | null;
  upstream_attempts: number;
  client_ip: string;
  started_at: number;
  source: 'upstream' | 'gateway';
  error_code: string | null;
  decisions: readonly PdkDecision[];
  config_version: string;
}

export interface LogSerializerOptions {
  /**
   * Palisade `redact` entries: record paths (`client_ip`, `consumer.username`,
   * `request.headers.x-email`, `request.querystring.email`); an entry without a
   * dot that is not a top-level field names a header and query parameter,
   * redacted wherever it appears.
   */
  readonly redact?: readonly string[];
  /**
   * The names plugins of the running config read credentials from: pass the
   * plugin's `services`. They fill up while the config version compiles, so
   * they are read per record. A name declared for headers or for the query is
   * redacted in both.
   */
  readonly sensitive?: Pick<PluginServices, 'sensitiveQuery' | 'sensitiveHeaders'>;
}

const TOP_LEVEL = new Set([
  'request_id', 'request', 'upstream_uri', 'response', 'route', 'service', 'consumer', 'authenticated_entity', 'latencies', 'tries',
  'upstream_target', 'upstream_attempts', 'client_ip', 'started_at', 'source', 'error_code', 'decisions', 'config_version',
]);

/** A latency in ms as logs and metrics report it: to the microsecond. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The `redact` field of every log plugin (Palisade). */
export const RedactField = Type.Array(Type.String({ minLength: 1 }), {
  default: [],
  description:
    "Palisade: more fields to replace by REDACTED: record paths (client_ip, consumer.username, request.headers.x-email, request.querystring.email) or header / query parameter names (a name without a dot that is not a top-level field), redacted wherever they appear. Credentials are always redacted (docs/log-record.md).",
});

/** Kong's `custom_fields_by_lua`: accepted in the schema so the error can say why. */
export const CustomFieldsByLuaField = Type.Optional(
  Type.Record(Type.String(), Type.String(), { description: "Kong's Lua expressions for extra log fields: not supported (Palisade has no Lua runtime); a non-empty map is a config error." }),
);

/** Cross-field checks shared by the log plugins: an error message, or null (for a plugin's validate()). */
export function checkLogConfig(config: { redact?: readonly string[]; custom_fields_by_lua?: Record<string, string> }): string | null {
  if (config.custom_fields_by_lua !== undefined && Object.keys(config.custom_fields_by_lua).length > 0) {
    return 'custom_fields_by_lua is not supported: Palisade has no Lua runtime (the log record is documented in docs/log-record.md; use redact to remove fields)';
  }
  for (const entry of config.redact ?? []) {
    if (entry.trim() === '' || entry.startsWith('.') || entry.endsWith('.') || entry.includes('..')) return `redact: '${entry}' is not a record path or a header name`;
  }
  return null;
}

/**
 * Compile a serializer once (in create()); call it in the log phase. The
 * record is a fresh object each time: plugins may add to it.
 */
export type LogSerializer = ((ctx: PdkContext) => LogRecord) & {
  /** The record as JSON text in ASCII: JSON.stringify(serialize(ctx)) with characters outside ASCII as \u escapes (built without the record object when there are no redact paths). */
  json(ctx: PdkContext): string;
};

export function logSerializer(options: LogSerializerOptions = {}): LogSerializer {
  const names = new Set<string>();
  const paths: string[][] = [];
  for (const entry of options.redact ?? []) {
    if (!entry.includes('.') && !TOP_LEVEL.has(entry)) names.add(entry.toLowerCase());
    else {
      // request.headers.<name> / request.querystring.<name> keep dots inside the name.
      const parts = entry.split('.');
      if (parts.length >= 3 && (parts[1] === 'headers' || parts[1] === 'querystring')) {
        const name = parts.slice(2).join('.');
        paths.push([parts[0]!, parts[1], parts[1] === 'headers' ? name.toLowerCase() : name]);
      } else paths.push(parts);
    }
  }
  const sensitive = options.sensitive;
  const extra: NameSet = sensitive === undefined ? names : { has: (n) => names.has(n) || sensitive.sensitiveQuery.has(n) || sensitive.sensitiveHeaders.has(n) };
  /** Whether a (lower-case) header name is redacted; the config-independent part is remembered per name (bounded). */
  const known = new Map<string, boolean>();
  const secretHeader = (name: string): boolean => {
    let fixed = known.get(name);
    if (fixed === undefined) {
      fixed = isSecretHeader(name) || SECRET_PARAMS.test(name) || names.has(name);
      if (known.size < 1024) known.set(name, fixed);
    }
    return fixed || (sensitive !== undefined && (sensitive.sensitiveQuery.has(name) || sensitive.sensitiveHeaders.has(name)));
  };

  const serialize = (ctx: PdkContext): LogRecord => {
    const req = ctx.request;
    const t = ctx.timings;
    const { uri, upstreamUri } = redactedUris(ctx, extra);
    const target = ctx.upstreamTarget;
    const record: LogRecord = {
      request_id: ctx.requestId,
      request: {
        id: ctx.requestId,
        method: req.method,
        uri,
        url: `${req.scheme}://${req.host}:${req.port}${uri}`,
        size: ctx.bytesReceived,
        querystring: parseQuery(req.rawQuery, extra),
        headers: copyHeaders(req.headers, secretHeader),
      },
      upstream_uri: upstreamUri,
      response: { status: ctx.response.status, size: ctx.bytesSent, headers: copyHeaders(ctx.response.getHeaders(), secretHeader) },
      latencies: { request: roundMs(t.total), kong: roundMs(t.gateway), proxy: t.upstream === 0 && ctx.tries === 0 ? -1 : roundMs(t.upstream), upstream_headers: roundMs(t.upstreamHeaders) },
      tries: target === null ? [] : [{ ...splitTarget(target) }],
      upstream_target: target,
      upstream_attempts: ctx.tries,
      client_ip: req.clientIp,
      started_at: t.startedAt,
      source: ctx.response.source,
      error_code: ctx.errorCode,
      decisions: ctx.decisions.length === 0 ? [] : ctx.decisions.map((d) => ({ ...d })),
      config_version: ctx.configVersion,
    };
    const tls = req.tls;
    if (tls !== null) {
      const verify = tls.authorized ? 'SUCCESS' : tls.authorizationError !== null && tls.peerCertificate() !== null ? `FAILED:${tls.authorizationError}` : 'NONE';
      record.request.tls = { client_verify: verify, sni: tls.servername };
    }
    // Copies: the record is the caller's to change, the config entities are not.
    if (ctx.route) record.route = { id: ctx.route.id, name: ctx.route.name, tags: [...ctx.route.tags] };
    if (ctx.service) record.service = { id: ctx.service.id, name: ctx.service.name, tags: [...ctx.service.tags] };
    const c = ctx.consumer;
    if (c) record.consumer = { id: c.id, username: c.username, custom_id: c.custom_id, tags: [...c.tags] };
    if (ctx.credential) record.authenticated_entity = { id: ctx.credential.id, consumer_id: c?.id ?? null };
    for (const p of paths) redactPath(record as unknown as Record<string, unknown>, p);
    return record;
  };
  // With redact paths, the record object is built, redacted and stringified; without, its JSON is built directly.
  const json = paths.length > 0 ? (ctx: PdkContext): string => asciiJson(JSON.stringify(serialize(ctx))) : (ctx: PdkContext): string => recordJson(ctx, extra, secretHeader);
  return Object.assign(serialize, { json });
}

/** A number as JSON (non-finite: null). */
const num = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null');

/** JSON of a config entity (route, service, consumer), made once per entity object. */
const entityJson = new WeakMap<object, string>();
function once<E extends object>(e: E, json: (e: E) => unknown): string {
  let out = entityJson.get(e);
  if (out === undefined) entityJson.set(e, (out = asciiJson(JSON.stringify(json(e)))));
  return out;
}
const entity = (e: { id: string; name: string | null; tags: readonly string[] }): string => once(e, () => ({ id: e.id, name: e.name, tags: e.tags }));

/** Headers as a JSON object (the names lower-case, secrets REDACTED): JSON.stringify(copyHeaders(...)), in ASCII. */
function headersJson(src: IncomingHttpHeaders | Record<string, string | string[] | number | undefined>, secret: (name: string) => boolean): string {
  let out = '';
  for (const name in src) {
    const v = src[name];
    if (v === undefined) continue;
    // Names that may collide once lower-cased: the slow way.
    if (name.toLowerCase() !== name) return asciiJson(JSON.stringify(copyHeaders(src, secret)));
    let value: string;
    if (secret(name)) value = '"REDACTED"';
    else if (typeof v === 'string') value = `"${jsonText(logged(v))}"`;
    else if (typeof v === 'number') value = `"${v}"`;
    else {
      value = '';
      for (let i = 0; i < v.length; i++) value = i === 0 ? `"${jsonText(logged(v[i]!))}"` : `${value},"${jsonText(logged(v[i]!))}"`;
      value = `[${value}]`;
    }
    out = out === '' ? `"${jsonText(name)}":${value}` : `${out},"${jsonText(name)}":${value}`;
  }
  return `{${out}}`;
}

/** The request's path and query, and the upstream's ('' without an upstream call), secret query values redacted. */
function redactedUris(ctx: PdkContext, extra: NameSet): { uri: string; upstreamUri: string } {
  const req = ctx.request;
  const raw = req.rawQuery;
  const query = raw === '' ? '' : redactQuery(raw, extra);
  const uri = query === '' ? req.path : `${req.path}?${query}`;
  const upstream = ctx.upstreamUri;
  if (upstream === null) return { uri, upstreamUri: '' };
  const q = upstream.indexOf('?');
  return { uri, upstreamUri: q < 0 ? upstream : `${upstream.slice(0, q)}?${redactQuery(upstream.slice(q + 1), extra)}` };
}

/**
 * JSON.stringify(serialize(ctx)) for a serializer without redact paths, built as one string without building the
 * record (characters outside ASCII written as \u escapes: the same JSON).
 */
function recordJson(ctx: PdkContext, extra: NameSet, secret: (name: string) => boolean): string {
  const req = ctx.request;
  const t = ctx.timings;
  const { uri, upstreamUri } = redactedUris(ctx, extra);
  const target = ctx.upstreamTarget;
  const res = ctx.response;
  const id = jsonText(ctx.requestId);
  const path = jsonText(uri);
  const tls = req.tls;
  let tlsJson = '';
  if (tls !== null) {
    const verify = tls.authorized ? 'SUCCESS' : tls.authorizationError !== null && tls.peerCertificate() !== null ? `FAILED:${tls.authorizationError}` : 'NONE';
    tlsJson = `,"tls":${asciiJson(JSON.stringify({ client_verify: verify, sni: tls.servername }))}`;
  }
  let text =
    `{"request_id":"${id}","request":{"id":"${id}","method":"${jsonText(req.method)}","uri":"${path}","url":"${jsonText(`${req.scheme}://${req.host}:${req.port}`)}${path}"` +
    `,"size":${num(ctx.bytesReceived)},"querystring":${req.rawQuery === '' ? '{}' : asciiJson(JSON.stringify(parseQuery(req.rawQuery, extra)))}` +
    `,"headers":${headersJson(req.headers, secret)}${tlsJson}},"upstream_uri":"${jsonText(upstreamUri)}"` +
    `,"response":{"status":${num(res.status)},"size":${num(ctx.bytesSent)},"headers":${headersJson(res.getHeaders(), secret)}}` +
    `,"latencies":{"request":${msText(t.total)},"kong":${msText(t.gateway)},"proxy":${t.upstream === 0 && ctx.tries === 0 ? '-1' : msText(t.upstream)},"upstream_headers":${msText(t.upstreamHeaders)}}` +
    `,"tries":${target === null ? '[]' : targetOf(target).tries},"upstream_target":${jsonOrNull(target)},"upstream_attempts":${num(ctx.tries)}` +
    `,"client_ip":"${jsonText(req.clientIp)}","started_at":${num(t.startedAt)},"source":"${res.source}","error_code":${jsonOrNull(ctx.errorCode)}` +
    `,"decisions":${ctx.decisions.length === 0 ? '[]' : asciiJson(JSON.stringify(ctx.decisions))},"config_version":"${ctx.configVersion}"`;
  if (ctx.route) text += `,"route":${entity(ctx.route)}`;
  if (ctx.service) text += `,"service":${entity(ctx.service)}`;
  const c = ctx.consumer;
  if (c) text += `,"consumer":${once(c, () => ({ id: c.id, username: c.username, custom_id: c.custom_id, tags: c.tags }))}`;
  if (ctx.credential) text += `,"authenticated_entity":${asciiJson(JSON.stringify({ id: ctx.credential.id, consumer_id: c?.id ?? null }))}`;
  return `${text}}`;
}

/**
 * Header and query maps are prototype-less: a client's `__proto__`,
 * `constructor` or `toString` is a name like any other (JSON.stringify
 * writes them as usual).
 */
const dict = <T>(): Record<string, T> => Object.create(null) as Record<string, T>;

function copyHeaders(src: IncomingHttpHeaders | Record<string, string | string[] | number | undefined>, secret: (name: string) => boolean): Record<string, string | string[]> {
  const out = dict<string | string[]>();
  for (const name in src) {
    const v = src[name];
    if (v === undefined) continue;
    const lower = name.toLowerCase();
    out[lower] = secret(lower) ? REDACTED : typeof v === 'string' ? logged(v) : typeof v === 'number' ? String(v) : v.map(logged);
  }
  return out;
}

/** Kong's kong.request.get_query(): repeated names → arrays, a name without '=' → true. */
function parseQuery(raw: string, extra: NameSet): Record<string, string | true | (string | true)[]> {
  const out = dict<string | true | (string | true)[]>();
  if (raw === '') return out;
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value: string | true = eq < 0 ? true : isSecretName(name, extra) ? REDACTED : logged(safeDecode(pair.slice(eq + 1)));
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** An upstream target, split, and the record's `tries` for it as JSON; made once per target (bounded). */
type Split = { readonly ip: string; readonly port: number };
const targets = new Map<string, { readonly split: Split; readonly tries: string }>();
function targetOf(target: string): { readonly split: Split; readonly tries: string } {
  let t = targets.get(target);
  if (t === undefined) {
    const colon = target.lastIndexOf(':');
    const split = colon > 0 && !target.endsWith(']') ? { ip: target.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(target.slice(colon + 1)) } : { ip: target.replace(/^\[|\]$/g, ''), port: -1 };
    Object.freeze(split); // shared by every record and span of this target
    t = { split, tries: asciiJson(`[${JSON.stringify(split)}]`) };
    if (targets.size < 4096) targets.set(target, t);
  }
  return t;
}

/** An upstream target `host:port` (`[v6]:port`) → its address without brackets and its port (-1 without one). */
export const splitTarget = (target: string): Split => targetOf(target).split;

function redactPath(root: Record<string, unknown>, path: readonly string[]): void {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== 'object') return;
    const key = path[i]!;
    node = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
  }
  if (node === null || typeof node !== 'object') return;
  const last = path[path.length - 1]!;
  const obj = node as Record<string, unknown>;
  if (Object.hasOwn(obj, last) && obj[last] !== null) obj[last] = REDACTED;
}
