/**
 * The document of an oas-validation instance: from api_spec (Kong: the text,
 * URI-encoded by default), api_spec_file or api_spec_url (Palisade), loaded
 * and checked at config load. Instances with the same document and options
 * share one compiled validator per config version.
 */
import { createHash } from 'node:crypto';
import { loadOpenApiSync, RequestValidator, ResponseValidator, type OpenApiDocument, type OpenApiSource, type RequestValidatorOptions } from '../../pdk/openapi.ts';
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

/** Load and compile (once per config version for equal documents and options). */
export function compile(config: OasValidationConfig, services: PluginServices): Compiled {
  const src = source(config);
  const id = createHash('sha256').update(JSON.stringify(src)).digest('base64url');
  const document = services.memo(`doc:${id}`, () => {
    const doc = loadOpenApiSync(src, { timeoutMs: config.api_spec_url_timeout });
    for (const w of doc.warnings) services.logger.warn({ spec: doc.source }, `oas-validation: ${w}`);
    return doc;
  });
  const opts = requestOptions(config);
  const requests = services.memo(`req:${id}:${JSON.stringify(opts)}`, () => new RequestValidator(document, opts));
  const responses = config.validate_response_body ? services.memo(`res:${id}`, () => new ResponseValidator(document)) : null;
  return { document, requests, responses };
}
