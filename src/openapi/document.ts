/**
 * OpenAPI 3.0 / 3.1 documents: load (file, URL, text or object), bundle
 * external $refs, check against the official schema, and list the operations
 * with their parameters (path + operation level merged), request body,
 * responses, effective security and servers.
 *
 *   const doc = await loadOpenApi({ file: 'openapi.yaml' });     // CLI tools
 *   const doc = loadOpenApiSync({ text: yaml });                   // config load (plugin create()); URLs cached (url-cache.ts)
 *   for (const op of doc.operations) op.method, op.path, op.parameters …
 *
 * The document keeps its internal `$ref`s ("#/components/…"): `resolve()`
 * follows one, `dereferenced()` gives a copy without any (cycles become
 * shared objects). Schemas stay where they are so a validator can compile
 * them by pointer (`op.requestBody.pointer + '/content/…/schema'`).
 * Errors are OpenApiError: file, JSON pointer, line when known, what to do.
 */
import { getAt, isObject, isRef, join, toPointer } from './pointer.ts';
import { hasExternalRefs, lineOf, OpenApiError, readLocal, readSource, type LoadOptions, type OpenApiSource, type ParsedSource } from './source.ts';
import { checkStructure } from './structure.ts';
import { loadInWorker, loadUrlSync } from './url-cache.ts';

export { OpenApiError, OpenApiUnreadableError, type LoadOptions, type OpenApiSource } from './source.ts';

export type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'options' | 'head' | 'patch' | 'trace';
export const HTTP_METHODS: readonly HttpMethod[] = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** A JSON Schema (OpenAPI Schema Object); `true`/`false` in 3.1. */
export type SchemaObject = Record<string, unknown> | boolean;

export interface EncodingObject {
  contentType?: string;
  headers?: Record<string, unknown>;
  style?: string;
  explode?: boolean;
  allowReserved?: boolean;
}

export interface MediaTypeObject {
  schema?: SchemaObject;
  example?: unknown;
  examples?: Record<string, unknown>;
  encoding?: Record<string, EncodingObject>;
  [extension: string]: unknown;
}

export type ParameterLocation = 'query' | 'header' | 'path' | 'cookie';

export interface ParameterObject {
  name: string;
  in: ParameterLocation;
  description?: string;
  required?: boolean;
  deprecated?: boolean;
  allowEmptyValue?: boolean;
  style?: string;
  explode?: boolean;
  allowReserved?: boolean;
  schema?: SchemaObject;
  content?: Record<string, MediaTypeObject>;
  example?: unknown;
  examples?: Record<string, unknown>;
  [extension: string]: unknown;
}

/** A value of the document with the JSON pointer where it is defined (after following $refs). */
export type Located<T> = T & { readonly pointer: string };

export type HeaderObject = Omit<ParameterObject, 'name' | 'in'>;

export interface RequestBodyObject {
  description?: string;
  content: Record<string, MediaTypeObject>;
  required?: boolean;
}

export interface ResponseObject {
  description?: string;
  /** Response headers, $refs followed. */
  headers: Record<string, Located<HeaderObject>>;
  content?: Record<string, MediaTypeObject>;
  links?: Record<string, unknown>;
}

/** Scheme name → scopes. One requirement object = every scheme in it; a list = any one of them; `{}` = anonymous allowed. */
export type SecurityRequirement = Record<string, string[]>;

export interface SecuritySchemeObject {
  type: 'apiKey' | 'http' | 'oauth2' | 'openIdConnect' | 'mutualTLS';
  description?: string;
  name?: string;
  in?: 'query' | 'header' | 'cookie';
  scheme?: string;
  bearerFormat?: string;
  flows?: Record<string, unknown>;
  openIdConnectUrl?: string;
}

export interface ServerObject {
  url: string;
  description?: string;
  variables?: Record<string, { default: string; enum?: string[]; description?: string }>;
}

export interface Operation {
  readonly method: HttpMethod;
  /** The path template as written under `paths` ("/pets/{petId}"). */
  readonly path: string;
  /** JSON pointer of the operation object ("/paths/~1pets~1{petId}/get"). */
  readonly pointer: string;
  readonly operationId: string | undefined;
  readonly summary: string | undefined;
  readonly description: string | undefined;
  readonly deprecated: boolean;
  readonly tags: readonly string[];
  /** Path-item and operation parameters merged (the operation's win on the same name + location); $refs followed. */
  readonly parameters: readonly Located<ParameterObject>[];
  readonly requestBody: Located<RequestBodyObject> | undefined;
  /** By status code as written ("200", "4XX", "default"); $refs followed. */
  readonly responses: Readonly<Record<string, Located<ResponseObject>>>;
  /** Effective security: the operation's, else the document's; [] = none required. */
  readonly security: readonly SecurityRequirement[];
  /** Effective servers: the operation's, else the path item's, else the document's, else [{ url: '/' }]. */
  readonly servers: readonly ServerObject[];
  /** The operation's specification extensions (x-…). */
  readonly extensions: Readonly<Record<string, unknown>>;
}

export type OpenApiVersion = '3.0' | '3.1';

const SWAGGER_HINT = 'Palisade reads OpenAPI 3.0 and 3.1; convert a Swagger 2.0 document first (e.g. `npx swagger2openapi in.yaml -o out.yaml`).';

export class OpenApiDocument {
  /** The file path, URL or "<inline>" the document came from (named in errors). */
  readonly source: string;
  /** The `openapi` field ("3.0.3", "3.1.0" …). */
  readonly openapi: string;
  readonly version: OpenApiVersion;
  /** The whole document, external $refs bundled in (only internal "#/…" refs left). Treat as read-only. */
  readonly raw: Readonly<Record<string, unknown>>;
  readonly operations: readonly Operation[];
  /** Security schemes of components, $refs followed. */
  readonly securitySchemes: Readonly<Record<string, Located<SecuritySchemeObject>>>;
  /** Not fatal findings (duplicate operationId …). */
  readonly warnings: readonly string[];
  /** True when the document's own text determines it (no external $ref was bundled in). */
  readonly selfContained: boolean;
  readonly #text: string | null;
  #dereferenced: Record<string, unknown> | null = null;

  constructor(parsed: ParsedSource, opts: LoadOptions = {}) {
    this.source = parsed.label;
    this.#text = parsed.text;
    this.raw = parsed.raw;
    this.selfContained = parsed.bundled !== true;
    const doc = parsed.raw;
    if (typeof doc.swagger === 'string') throw this.error('/swagger', `Swagger ${doc.swagger} is not supported`, SWAGGER_HINT);
    if (typeof doc.openapi !== 'string') throw this.error('', "missing the 'openapi' version field", "Start the document with `openapi: 3.1.0` (or 3.0.x).");
    const m = /^3\.([01])\.\d+(-.+)?$/.exec(doc.openapi);
    if (!m) throw this.error('/openapi', `unsupported OpenAPI version '${doc.openapi}'`, 'Use OpenAPI 3.0.x or 3.1.x.');
    this.openapi = doc.openapi;
    this.version = m[1] === '0' ? '3.0' : '3.1';
    if (!opts.skipStructureCheck) {
      const problems = checkStructure(doc, this.version);
      if (problems.length) {
        const located = problems.map((p) => ({ ...p, line: lineOf(this.#text, p.pointer) }));
        const first = located[0]!;
        throw new OpenApiError(this.source, first.pointer, first.message, `The document does not follow the OpenAPI ${this.version} specification; fix it (every problem is listed).`, first.line, located);
      }
    }
    this.securitySchemes = this.#schemes();
    const warnings: string[] = [];
    this.operations = this.#operations(warnings);
    this.warnings = warnings;
  }

  /** An OpenApiError at a pointer of this document, with the line when the text is known. */
  error(pointer: string, problem: string, hint: string): OpenApiError {
    return new OpenApiError(this.source, pointer, problem, hint, lineOf(this.#text, pointer));
  }

  /** The value at a JSON pointer of the document. */
  get(pointer: string): unknown {
    return getAt(this.raw, pointer);
  }

  /** Follow $refs from a value found at `pointer` until a non-reference; returns the value and where it is. */
  resolve<T = unknown>(value: unknown, pointer: string): { value: T; pointer: string } {
    let v = value;
    let p = pointer;
    for (let hops = 0; isRef(v); hops++) {
      const ref = v.$ref;
      if (hops > 64) throw this.error(p, `$ref cycle through '${ref}'`, 'Break the reference cycle.');
      if (!ref.startsWith('#')) throw this.error(join(p, '$ref'), `external $ref '${ref}' left after bundling`, 'Load the document with loadOpenApi()/loadOpenApiSync() so external references are bundled.');
      const target = ref.slice(1);
      const next = getAt(this.raw, target);
      if (next === undefined) throw this.error(join(p, '$ref'), `$ref '${ref}' points to nothing`, `Define ${target} or fix the reference.`);
      v = next;
      p = target;
    }
    return { value: v as T, pointer: p };
  }

  /** A copy of the whole document without any $ref (a cycle becomes a shared object, so the copy can be cyclic). */
  dereferenced(): Record<string, unknown> {
    if (this.#dereferenced) return this.#dereferenced;
    const byTarget = new Map<string, unknown>();
    const copy = (node: unknown, pointer: string): unknown => {
      if (isRef(node)) {
        const { value, pointer: target } = this.resolve(node, pointer);
        const seen = byTarget.get(target);
        if (seen !== undefined) return seen;
        if (typeof value !== 'object' || value === null) return value;
        const out: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
        byTarget.set(target, out);
        fill(out, value, target);
        return out;
      }
      if (typeof node !== 'object' || node === null) return node;
      const seen = byTarget.get(pointer);
      if (seen !== undefined) return seen;
      const out: Record<string, unknown> | unknown[] = Array.isArray(node) ? [] : {};
      byTarget.set(pointer, out);
      fill(out, node, pointer);
      return out;
    };
    const fill = (out: Record<string, unknown> | unknown[], node: object, pointer: string) => {
      if (Array.isArray(node)) node.forEach((v, i) => ((out as unknown[])[i] = copy(v, join(pointer, i))));
      else for (const [k, v] of Object.entries(node)) (out as Record<string, unknown>)[k] = copy(v, join(pointer, k));
    };
    this.#dereferenced = copy(this.raw, '') as Record<string, unknown>;
    return this.#dereferenced;
  }

  /** The operation for a method and a path template as written in the document, or undefined. */
  operation(method: string, path: string): Operation | undefined {
    const m = method.toLowerCase();
    return this.operations.find((o) => o.method === m && o.path === path);
  }

  #schemes(): Record<string, Located<SecuritySchemeObject>> {
    const out: Record<string, Located<SecuritySchemeObject>> = {};
    const schemes = (this.raw.components as Record<string, unknown> | undefined)?.securitySchemes;
    if (!isObject(schemes)) return out;
    for (const [name, s] of Object.entries(schemes)) {
      const r = this.resolve<SecuritySchemeObject>(s, toPointer(['components', 'securitySchemes', name]));
      out[name] = { ...r.value, pointer: r.pointer };
    }
    return out;
  }

  #security(list: unknown, pointer: string): SecurityRequirement[] {
    if (!Array.isArray(list)) return [];
    list.forEach((req: Record<string, unknown>, i) => {
      for (const name of Object.keys(req)) {
        if (!this.securitySchemes[name]) throw this.error(join(pointer, i, name), `security scheme '${name}' is not defined`, 'Declare it under components.securitySchemes or fix the name.');
      }
    });
    return list as SecurityRequirement[];
  }

  #operations(warnings: string[]): Operation[] {
    const out: Operation[] = [];
    const paths = isObject(this.raw.paths) ? this.raw.paths : {};
    const docSecurity = this.#security(this.raw.security, '/security');
    const docServers = Array.isArray(this.raw.servers) && this.raw.servers.length ? (this.raw.servers as ServerObject[]) : [{ url: '/' }];
    const ids = new Map<string, string>();
    for (const [path, rawItem] of Object.entries(paths)) {
      const { value: item, pointer: itemPtr } = this.resolve<Record<string, unknown>>(rawItem, toPointer(['paths', path]));
      const common = this.#parameters(item.parameters, join(itemPtr, 'parameters'));
      const itemServers = Array.isArray(item.servers) && item.servers.length ? (item.servers as ServerObject[]) : docServers;
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!isObject(op)) continue;
        const pointer = join(itemPtr, method);
        const own = this.#parameters(op.parameters, join(pointer, 'parameters'));
        const key = (p: ParameterObject) => `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
        const merged = new Map(common.map((p) => [key(p), p]));
        for (const p of own) merged.set(key(p), p);
        const parameters = [...merged.values()];
        this.#checkPathParameters(path, parameters, pointer);
        const operationId = typeof op.operationId === 'string' ? op.operationId : undefined;
        if (operationId !== undefined) {
          const prev = ids.get(operationId);
          if (prev) warnings.push(`operationId '${operationId}' is used by ${prev} and ${pointer}`);
          else ids.set(operationId, pointer);
        }
        let requestBody: Located<RequestBodyObject> | undefined;
        if (op.requestBody !== undefined) {
          const r = this.resolve<RequestBodyObject>(op.requestBody, join(pointer, 'requestBody'));
          requestBody = { ...r.value, content: r.value.content ?? {}, pointer: r.pointer };
        }
        const extensions: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(op)) if (k.startsWith('x-')) extensions[k] = v;
        out.push({
          method,
          path,
          pointer,
          operationId,
          summary: typeof op.summary === 'string' ? op.summary : undefined,
          description: typeof op.description === 'string' ? op.description : undefined,
          deprecated: op.deprecated === true,
          tags: Array.isArray(op.tags) ? (op.tags as string[]) : [],
          parameters,
          requestBody,
          responses: this.#responses(op.responses, join(pointer, 'responses')),
          security: op.security !== undefined ? this.#security(op.security, join(pointer, 'security')) : docSecurity,
          servers: Array.isArray(op.servers) && op.servers.length ? (op.servers as ServerObject[]) : itemServers,
          extensions,
        });
      }
    }
    return out;
  }

  #parameters(list: unknown, pointer: string): Located<ParameterObject>[] {
    if (!Array.isArray(list)) return [];
    return list.map((p, i) => {
      const r = this.resolve<ParameterObject>(p, join(pointer, i));
      return { ...r.value, pointer: r.pointer };
    });
  }

  #checkPathParameters(path: string, parameters: readonly Located<ParameterObject>[], pointer: string): void {
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const name of names) {
      if (!parameters.some((p) => p.in === 'path' && p.name === name)) {
        throw this.error(pointer, `path parameter '${name}' of '${path}' is not declared`, `Add { name: ${name}, in: path, required: true, schema: … } to the parameters of the operation or of the path item.`);
      }
    }
    for (const p of parameters) {
      if (p.in === 'path' && !names.includes(p.name)) throw this.error(p.pointer, `path parameter '${p.name}' does not appear in '${path}'`, `Use {${p.name}} in the path template or remove the parameter.`);
    }
  }

  #responses(responses: unknown, pointer: string): Record<string, Located<ResponseObject>> {
    const out: Record<string, Located<ResponseObject>> = {};
    if (!isObject(responses)) return out;
    for (const [status, raw] of Object.entries(responses)) {
      if (status.startsWith('x-')) continue;
      const r = this.resolve<ResponseObject>(raw, join(pointer, status));
      const headers: Record<string, Located<HeaderObject>> = {};
      for (const [name, h] of Object.entries((r.value.headers as Record<string, unknown> | undefined) ?? {})) {
        const hr = this.resolve<HeaderObject>(h, join(r.pointer, 'headers', name));
        headers[name] = { ...hr.value, pointer: hr.pointer };
      }
      out[status] = { ...r.value, headers, pointer: r.pointer };
    }
    return out;
  }
}

/** Load a document (file, URL, text or object): the asynchronous API for tools. */
export async function loadOpenApi(source: OpenApiSource, opts: LoadOptions = {}): Promise<OpenApiDocument> {
  return new OpenApiDocument(await readSource(source, opts), opts);
}

/**
 * Load a document synchronously (plugin create() at config load). Files,
 * text and objects without external references are read in-process; a URL
 * (cached, see url-cache.ts) or external $refs are fetched and bundled by a
 * worker thread while this thread waits (at most opts.timeoutMs).
 */
export function loadOpenApiSync(source: OpenApiSource, opts: LoadOptions = {}): OpenApiDocument {
  return new OpenApiDocument(readSourceSync(source, opts).parsed, opts);
}

/** The parsed (and bundled) source, synchronously; warnings when a cached URL copy could not be revalidated. */
export function readSourceSync(source: OpenApiSource, opts: LoadOptions = {}): { parsed: ParsedSource; hash: string | null; warnings: readonly string[] } {
  if ('url' in source) return loadUrlSync(source.url, source.headers, { ...opts, ttlMs: opts.urlTtlMs ?? 0 });
  const parsed = readLocal(source, opts);
  if (!hasExternalRefs(parsed.raw)) return { parsed, hash: null, warnings: [] };
  return { parsed: loadInWorker(source, opts)!, hash: null, warnings: [] };
}
