/**
 * The document of an oas-validation instance: from api_spec (Kong: the text,
 * URI-encoded by default), api_spec_file or api_spec_url (Palisade), loaded
 * and checked at config load. Instances with the same document and options
 * share one compiled validator per config version.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  loadOpenApiSync,
  OpenApiDocument,
  readSourceSync,
  RequestValidator,
  ResponseValidator,
  type LoadOptions,
  type OpenApiSource,
  type RequestValidatorOptions,
} from '../../pdk/openapi.ts';
import type { PluginServices } from '../../pdk/index.ts';
import type { OasValidationConfig } from './schema.ts';

/** Kong's api_spec_encoded: decode %XX escapes (runs of them, as UTF-8); anything else is kept. */
export function decodeSpec(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

function source(config: OasValidationConfig): OpenApiSource {
  if (config.api_spec !== undefined) return { text: config.api_spec_encoded ? decodeSpec(config.api_spec) : config.api_spec, name: 'api_spec' };
  if (config.api_spec_file !== undefined) return { file: config.api_spec_file };
  return { url: config.api_spec_url! };
}

export function requestOptions(config: OasValidationConfig): RequestValidatorOptions {
  return {
    pathParams: config.validate_request_uri_params,
    queryParams: config.validate_request_query_params,
    headerParams: config.validate_request_header_params,
    cookieParams: config.validate_request_cookie_params,
    body: config.validate_request_body,
    security: config.validate_request_security,
    undeclaredBody: config.allow_undeclared_request_body,
    unknownQuery: config.query_parameter_check,
    unknownHeaders: config.header_parameter_check
      ? config.allowed_header_parameters.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)
      : null,
    basePath: !config.include_base_path ? 'none' : config.custom_base_path !== undefined ? { custom: config.custom_base_path } : 'servers',
  };
}

export interface Compiled {
  readonly document: OpenApiDocument;
  readonly requests: RequestValidator;
  readonly responses: ResponseValidator | null;
}

/**
 * Compiled documents kept across config versions, by the hash of their
 * content (Kong caches the same way): a reload that does not change a
 * document does not compile it again (a large one takes seconds, with the
 * event loop blocked). Documents from api_spec or api_spec_file without
 * external $refs (their text is all there is to them) and api_spec_url
 * documents (hashed once fetched, the references they bundle included);
 * a few entries, least recently used first out.
 */
const reused = new Map<string, unknown>();
const REUSED_MAX = 8;

function remember<T>(key: string | null, build: () => T, keep: (value: T) => boolean): T {
  if (key === null) return build();
  const hit = reused.get(key);
  if (hit !== undefined) {
    reused.delete(key);
    reused.set(key, hit);
    return hit as T;
  }
  const value = build();
  if (keep(value)) {
    reused.set(key, value);
    if (reused.size > REUSED_MAX) reused.delete(reused.keys().next().value!);
  }
  return value;
}

/** The hash of a local document's text (null when it cannot be read: the loader reports it). */
function textHash(src: OpenApiSource): string | null {
  let text: string;
  if ('text' in src) text = `text\0${src.text}`;
  else if ('file' in src) {
    try {
      text = `file\0${resolve(src.file)}\0${readFileSync(src.file, 'utf8')}`;
    } catch {
      return null;
    }
  } else return null;
  return createHash('sha256').update(text).digest('base64url');
}

/** Load and compile (once per config version for equal documents and options, and across versions while the content is the same). */
export function compile(config: OasValidationConfig, services: PluginServices): Compiled {
  const src = source(config);
  const id = createHash('sha256').update(JSON.stringify(src)).digest('base64url');
  const load: LoadOptions = { timeoutMs: config.api_spec_url_timeout, urlTtlMs: config.api_spec_url_ttl * 1000 };
  const warn = (w: string, spec: string) => services.logger.warn({ spec }, `oas-validation: ${w}`);
  let hash: string | null;
  let build: () => OpenApiDocument;
  if ('url' in src) {
    // Fetched (or taken from the URL cache) once per config version.
    const fetched = services.memo(`src:${id}`, () => {
      const r = readSourceSync(src, load);
      for (const w of r.warnings) warn(w, r.parsed.label);
      return r;
    });
    hash = fetched.hash !== null ? `url\0${fetched.hash}` : null;
    build = () => new OpenApiDocument(fetched.parsed, load);
  } else {
    hash = textHash(src);
    build = () => loadOpenApiSync(src, load);
  }
  const keep = (doc: OpenApiDocument) => 'url' in src || doc.selfContained;
  const document = services.memo(`doc:${id}`, () =>
    remember(hash && `doc:${hash}`, () => {
      const doc = build();
      for (const w of doc.warnings) warn(w, doc.source);
      return doc;
    }, keep),
  );
  const opts = requestOptions(config);
  const optsKey = JSON.stringify(opts);
  const requests = services.memo(`req:${id}:${optsKey}`, () => remember(hash && `req:${hash}:${optsKey}`, () => new RequestValidator(document, opts), (v) => keep(v.document)));
  const responses = config.validate_response_body ? services.memo(`res:${id}`, () => remember(hash && `res:${hash}`, () => new ResponseValidator(document), (v) => keep(v.document))) : null;
  return { document, requests, responses };
}
