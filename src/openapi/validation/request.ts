/**
 * Request validation compiled from a document: one operation matcher and,
 * per operation, the parameter deserialisers and validators, the security
 * check and the body validators — all built in the constructor (config
 * load). Per request: match, deserialise, validate; the body only when the
 * operation has one to check.
 */
import type { ValidateFunction } from 'ajv';
import type { HttpMethod, OpenApiDocument, Operation, ServerObject } from '../document.ts';
import { join } from '../pointer.ts';
import { BadField, mediaEntries, mediaType, parseBody, selectMedia, type MediaEntry } from './body.ts';
import { PathMatcher } from './matcher.ts';
import { BadValue, cookieValue, headerValue, paramSpec, parseCookies, parseQuery, pathValue, queryValue, type ParamSpec } from './params.ts';
import { normalise, SchemaSet } from './schemas.ts';
import { compileSecurity, securityHeaders, securityQueryNames, type SecurityCheck } from './security.ts';
import { clip, fromAjv, type Violation } from './violations.ts';

export interface RequestValidatorOptions {
  readonly pathParams?: boolean;
  readonly queryParams?: boolean;
  readonly headerParams?: boolean;
  readonly cookieParams?: boolean;
  readonly body?: boolean;
  readonly security?: boolean;
  /** Refuse query parameters the operation does not declare. */
  readonly unknownQuery?: boolean;
  /** Refuse headers the operation does not declare, except these (lower-case) and the security schemes' headers. */
  readonly unknownHeaders?: readonly string[] | null;
  /** Accept a body on an operation that declares no requestBody (default false: refused, it would reach the upstream unchecked). */
  readonly undeclaredBody?: boolean;
  /** Prefix of every path template: 'none' (default), 'servers' (the path of each server URL) or a fixed base path. */
  readonly basePath?: 'none' | 'servers' | { readonly custom: string };
}

/** What validation reads of a request. */
export interface RequestView {
  readonly rawQuery: string;
  /** A header by lower-case name (repeated headers joined as node:http does). */
  header(name: string): string | undefined;
  headerNames(): Iterable<string>;
  readonly clientCertificate: boolean;
}

interface Param {
  readonly spec: ParamSpec;
  readonly validate: ValidateFunction | null;
}

interface BodyPlan {
  readonly required: boolean;
  readonly media: readonly MediaEntry[];
  readonly validators: ReadonlyMap<MediaEntry, ValidateFunction>;
}

/** One operation, compiled. */
export interface CompiledOperation {
  readonly operation: Operation;
  readonly path: readonly Param[];
  readonly query: readonly Param[];
  readonly header: readonly Param[];
  readonly cookie: readonly Param[];
  readonly security: SecurityCheck;
  readonly body: BodyPlan | null;
  readonly headerNames: ReadonlySet<string>;
}

export type MatchResult =
  | { readonly operation: CompiledOperation; readonly pathParams: Readonly<Record<string, string>> }
  | { readonly violation: Violation };

/** A body sent to an operation that declares none. */
export const UNDECLARED_BODY: Violation = Object.freeze({ in: 'body', pointer: '', message: 'the operation does not accept a request body (it declares no requestBody)' });

/** Headers that frame the message or the connection: never "unknown". */
const FRAMING = ['host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection', 'content-length'];

/** The path of a server URL, variables replaced by their defaults ("https://x/{v}/api" → "/v1/api"); '' for "/". */
export function serverBasePath(server: ServerObject): string {
  const url = server.url.replace(/\{([^}]+)\}/g, (_, name: string) => server.variables?.[name]?.default ?? '');
  let path: string;
  try {
    path = new URL(url, 'http://base.invalid').pathname;
  } catch {
    path = '/';
  }
  return path.replace(/\/+$/, '');
}

export class RequestValidator {
  readonly document: OpenApiDocument;
  readonly #matcher = new PathMatcher<Map<string, CompiledOperation>>();
  readonly #opts: RequestValidatorOptions;
  readonly #allowedHeaders: ReadonlySet<string>;
  readonly #securityQuery: ReadonlySet<string>;

  constructor(doc: OpenApiDocument, opts: RequestValidatorOptions = {}) {
    this.document = doc;
    this.#opts = opts;
    const normalised = normalise(doc, 'request');
    const strict = new SchemaSet(doc, normalised, false);
    const coercing = new SchemaSet(doc, normalised, true);
    this.#allowedHeaders = new Set([...(opts.unknownHeaders ?? []), ...FRAMING, ...securityHeaders(doc)]);
    this.#securityQuery = new Set(securityQueryNames(doc));
    const byTemplate = new Map<string, Map<string, CompiledOperation>>();
    for (const op of doc.operations) {
      const compiled = this.#compile(doc, op, strict, coercing);
      for (const base of this.#bases(op)) {
        const template = base + op.path;
        let methods = byTemplate.get(template);
        if (!methods) {
          byTemplate.set(template, (methods = new Map()));
          this.#matcher.add(template, methods);
        }
        methods.set(op.method, compiled);
      }
    }
  }

  #bases(op: Operation): string[] {
    const b = this.#opts.basePath ?? 'none';
    if (b === 'none') return [''];
    if (b === 'servers') return [...new Set(op.servers.map(serverBasePath))];
    return [b.custom.replace(/\/+$/, '')];
  }

  #compile(doc: OpenApiDocument, op: Operation, strict: SchemaSet, coercing: SchemaSet): CompiledOperation {
    const by: Record<string, Param[]> = { path: [], query: [], header: [], cookie: [] };
    for (const p of op.parameters) {
      const spec = paramSpec(doc, p);
      by[p.in]!.push({ spec, validate: spec.schemaPointer ? coercing.compile(spec.schemaPointer) : null });
    }
    let body: BodyPlan | null = null;
    if (op.requestBody) {
      const media = mediaEntries(doc, op.requestBody.content, join(op.requestBody.pointer, 'content'));
      const validators = new Map<MediaEntry, ValidateFunction>();
      for (const m of media) {
        if (m.schemaPointer && m.kind !== 'other') validators.set(m, (m.kind === 'json' ? strict : coercing).compile(m.schemaPointer));
      }
      body = { required: op.requestBody.required === true, media, validators };
    }
    return {
      operation: op,
      path: by.path!,
      query: by.query!,
      header: by.header!,
      cookie: by.cookie!,
      security: compileSecurity(doc, op.security),
      body,
      headerNames: new Set(by.header!.map((p) => p.spec.name.toLowerCase())),
    };
  }

  /** The operation of a method and path (the path as received, without query), or why there is none. */
  match(method: string, path: string): MatchResult {
    const m = this.#matcher.match(path);
    if (!m) return { violation: { in: 'operation', pointer: '', message: 'path not found in api specification' } };
    const lower = method.toLowerCase() as HttpMethod;
    // HEAD is GET without the body (RFC 9110): an undocumented HEAD is checked as the GET.
    const operation = m.value.get(lower) ?? (lower === 'head' ? m.value.get('get') : undefined);
    if (!operation) return { violation: { in: 'operation', pointer: '', message: `method ${method.toUpperCase()} not allowed for this path (allowed: ${[...m.value.keys()].map((k) => k.toUpperCase()).join(', ')})` } };
    return { operation, pathParams: m.params };
  }

  /** Parameters, security and unknown names; the body is checked separately (it must be read first). */
  validateParameters(c: CompiledOperation, pathParams: Readonly<Record<string, string>>, req: RequestView): Violation[] {
    const out: Violation[] = [];
    const o = this.#opts;
    if (o.pathParams !== false) for (const p of c.path) check(out, p, pathValue(p.spec, pathParams[p.spec.name] ?? ''));
    let query: Map<string, string[]> | null = null;
    if ((o.queryParams !== false && c.query.length) || o.unknownQuery || (o.security !== false && c.security)) {
      const q = parseQuery(req.rawQuery);
      if (q instanceof BadValue) out.push({ in: 'query', pointer: '', message: q.message });
      else query = q;
    }
    if (query && (o.queryParams !== false || o.unknownQuery)) {
      const claimed = new Set<string>();
      for (const p of c.query) {
        const v = queryValue(p.spec, query, claimed);
        if (o.queryParams !== false) check(out, p, v);
      }
      if (o.unknownQuery) {
        for (const name of query.keys()) {
          if (!claimed.has(name) && !this.#securityQuery.has(name)) out.push({ in: 'query', name: clip(name), pointer: '', message: 'is not a parameter of this operation' });
        }
      }
    }
    if (o.headerParams !== false) for (const p of c.header) check(out, p, headerValue(p.spec, req.header(p.spec.name.toLowerCase())));
    if (o.unknownHeaders) {
      for (const name of req.headerNames()) {
        if (!c.headerNames.has(name) && !this.#allowedHeaders.has(name)) out.push({ in: 'header', name: clip(name), pointer: '', message: 'is not a header of this operation' });
      }
    }
    let cookies: Map<string, string> | null = null;
    if (o.cookieParams !== false && c.cookie.length) {
      cookies = parseCookies(req.header('cookie'));
      for (const p of c.cookie) check(out, p, cookieValue(p.spec, cookies));
    }
    if (o.security !== false && c.security) {
      const jar = cookies ?? parseCookies(req.header('cookie'));
      const problem = c.security({
        header: (n) => req.header(n),
        query: (n) => query?.has(n) ?? false,
        cookie: (n) => jar.has(n),
        clientCertificate: req.clientCertificate,
      });
      if (problem) out.push({ in: 'security', pointer: '', message: problem });
    }
    return out;
  }

  /**
   * What to do about the body: `entry` null = nothing to read (no body
   * expected, or no schema for it); violations for a missing required body
   * or an undocumented media type.
   */
  planBody(c: CompiledOperation, contentType: string | undefined, hasBody: boolean): { violations: Violation[]; entry: MediaEntry | null } {
    if (this.#opts.body === false) return { violations: [], entry: null };
    if (!c.body) return { violations: hasBody && !this.acceptsUndeclaredBody ? [UNDECLARED_BODY] : [], entry: null };
    if (!hasBody) return { violations: c.body.required ? [{ in: 'body', pointer: '', message: 'request body is required' }] : [], entry: null };
    const entry = selectMedia(c.body.media, contentType);
    if (!entry) {
      const allowed = c.body.media.map((m) => m.key).join(', ');
      const what = mediaType(contentType) === null ? 'missing or not a media type' : 'not a documented media type';
      return { violations: [{ in: 'content-type', pointer: '', message: `Content-Type is ${what} of this operation (expected ${allowed})` }], entry: null };
    }
    return { violations: [], entry: c.body.validators.has(entry) ? entry : null };
  }

  /** True when a body on an operation without requestBody is let through (body validation off, or undeclaredBody). */
  get acceptsUndeclaredBody(): boolean {
    return this.#opts.body === false || this.#opts.undeclaredBody === true;
  }

  /** Validate a body read for a media entry chosen by planBody. */
  async validateBody(c: CompiledOperation, entry: MediaEntry, body: Buffer, contentType: string | undefined): Promise<Violation[]> {
    if (body.length === 0) return c.body?.required ? [{ in: 'body', pointer: '', message: 'request body is required' }] : [];
    const value = await parseBody(entry, body, contentType);
    if (value instanceof BadField) return [{ in: 'body', name: value.field, pointer: `/${value.field}`, message: value.message }];
    if (value instanceof BadValue) return [{ in: 'body', pointer: '', message: value.message }];
    if (value === undefined) return [];
    const validate = c.body!.validators.get(entry)!;
    return validate(value) ? [] : fromAjv(validate.errors, 'body');
  }
}

function check(out: Violation[], p: Param, value: unknown): void {
  const { spec } = p;
  if (value === undefined) {
    if (spec.required) out.push({ in: spec.in, name: spec.name, pointer: '', message: 'is required' });
    return;
  }
  if (value instanceof BadValue) {
    out.push({ in: spec.in, name: spec.name, pointer: '', message: value.message });
    return;
  }
  if (p.validate && !p.validate(value)) out.push(...fromAjv(p.validate.errors, spec.in, spec.name));
}
