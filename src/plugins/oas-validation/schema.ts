/**
 * Config of the oas-validation plugin: Kong Enterprise's fields, names and
 * defaults (kong/plugins/oas-validation/schema.lua), plus Palisade's
 * (api_spec_file, api_spec_url, cookie and security checks, body limit,
 * response failure status).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';

export const OasValidationSchema = Type.Object(
  {
    api_spec: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The OpenAPI 3.0/3.1 document itself, YAML or JSON (Kong). With `api_spec_encoded` (default) percent-escapes (%XX) in it are decoded first. Exactly one of api_spec, api_spec_file, api_spec_url.',
      }),
    ),
    api_spec_encoded: Type.Boolean({ default: true, description: 'Whether api_spec is URI-encoded (Kong): %XX escapes are decoded before parsing ("+" is kept).' }),
    api_spec_file: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Palisade: path of the OpenAPI document (YAML or JSON), read at config load; relative paths are resolved against the working directory. Relative-file $refs in it are followed.',
      }),
    ),
    api_spec_url: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: 'Palisade: http(s) URL of the OpenAPI document, fetched at config load (and on every reload); its relative $refs are fetched too. A fetch failure is a config error.',
      }),
    ),
    api_spec_url_timeout: Type.Integer({
      default: 10000,
      minimum: 1,
      description: 'Palisade: time allowed to fetch api_spec_url and every document it references, in milliseconds. The config load waits at most this long (plus the start of the loader thread, once).',
    }),
    api_spec_url_ttl: Type.Integer({
      default: 300,
      minimum: 0,
      description:
        'Palisade: seconds a fetched api_spec_url document is reused by later config loads (reloads) without asking the server; after that it is revalidated (If-None-Match / If-Modified-Since). 0: revalidate on every load. When revalidation fails the copy already fetched is kept (logged).',
    }),
    verbose_response: Type.Boolean({ default: false, description: "Put the detailed violations in the answer's `message` (Kong); without it `message` is Kong's generic text. The `errors` list is always there." }),
    validate_request_body: Type.Boolean({ default: true, description: 'Validate the request body (JSON, form-urlencoded, multipart/form-data, text) and its Content-Type against the operation.' }),
    notify_only_request_validation_failure: Type.Boolean({ default: false, description: 'Log request violations and let the request through (Kong: notify only).' }),
    validate_request_header_params: Type.Boolean({ default: true, description: 'Validate header parameters.' }),
    validate_request_query_params: Type.Boolean({ default: true, description: 'Validate query parameters.' }),
    validate_request_uri_params: Type.Boolean({ default: true, description: 'Validate path parameters.' }),
    validate_request_cookie_params: Type.Boolean({ default: true, description: 'Palisade: validate cookie parameters.' }),
    validate_request_security: Type.Boolean({
      default: true,
      description: "Palisade: refuse requests that present no credential where the operation's security requirements say (an API key header, query parameter or cookie; Authorization with the scheme; a client certificate). Presence only: authentication plugins verify.",
    }),
    validate_response_body: Type.Boolean({
      default: false,
      description: 'Validate upstream responses: status documented, documented headers, Content-Type and body schema (the body is buffered up to server.response_buffer_limit).',
    }),
    notify_only_response_body_validation_failure: Type.Boolean({ default: false, description: 'Log response violations and send the response unchanged (Kong: notify only).' }),
    response_validation_failure_status: Enum([502, 406], {
      default: 502,
      description: 'Palisade: status answered for a response that breaks the document (when not notify-only): 502 (the upstream answered something invalid), or 406 as Kong answers.',
    }),
    query_parameter_check: Type.Boolean({ default: false, description: 'Refuse query parameters the operation does not declare (security schemes\' API key parameters are allowed).' }),
    header_parameter_check: Type.Boolean({ default: false, description: 'Refuse headers the operation does not declare, except allowed_header_parameters, the security schemes\' headers and connection framing headers.' }),
    allowed_header_parameters: Type.String({
      default: 'Host,Content-Type,User-Agent,Accept,Content-Length',
      description: 'Comma-separated headers always allowed by header_parameter_check (Kong).',
    }),
    include_base_path: Type.Boolean({ default: false, description: "Match request paths against the document's paths prefixed with the path of its servers' URLs (e.g. /v1) (Kong)." }),
    custom_base_path: Type.Optional(Type.String({ pattern: '^/', description: 'Base path to prefix instead of the servers\' paths; ignored unless include_base_path is set (Kong).' })),
    collect_all_errors: Type.Boolean({ default: false, description: 'Accepted for Kong compatibility: Palisade always reports every violation.' }),
    structured_errors: Type.Boolean({ default: false, description: 'Accepted for Kong compatibility: the answer always carries the structured `errors` list.' }),
    max_structured_errors: Type.Optional(Type.Integer({ minimum: 1, description: 'Largest number of violations listed in an answer (Kong); default: all.' })),
    request_body_max_size: Type.Integer({
      default: 8388608,
      minimum: 1,
      description:
        'Palisade: largest request body read for validation, in bytes (default 8 MiB), as received and once decoded (Content-Encoding gzip, deflate, br, zstd); a larger body is refused with 413 (let through and logged when notify_only_request_validation_failure).',
    }),
    response_body_max_size: Type.Integer({
      default: 10485760,
      minimum: 1,
      description:
        'Palisade: largest upstream response body validated once decoded (Content-Encoding gzip, deflate, br, zstd), in bytes (default 10 MiB); a larger one is not validated (logged), like a body above server.response_buffer_limit.',
    }),
    allow_undeclared_request_body: Type.Boolean({
      default: false,
      description:
        'Palisade: let a request body through to an operation that declares no requestBody (it is not validated). Default: refused with 400, as the upstream would receive it unchecked.',
    }),
  },
  { additionalProperties: false, description: 'Validate requests (and optionally responses) against an OpenAPI 3.0/3.1 document.' },
);

export type OasValidationConfig = Static<typeof OasValidationSchema>;

/** Cross-field rules. */
export function validateOasConfig(config: OasValidationConfig): string | null {
  const given = [config.api_spec, config.api_spec_file, config.api_spec_url].filter((x) => x !== undefined).length;
  if (given !== 1) return 'exactly one of api_spec, api_spec_file, api_spec_url must be set';
  return null;
}
