/**
 * OpenAPI for plugins: load a document (file, URL, text) at config load and
 * compile request and response validators from it. The implementation lives
 * in src/openapi/ (shared with the CLI's lint, openapi2config and mock).
 */
export { loadOpenApiSync, readSourceSync, OpenApiDocument, OpenApiError, type LoadOptions, type OpenApiSource, type Operation } from '../openapi/document.ts';
export { RequestValidator, UNDECLARED_BODY, type CompiledOperation, type RequestValidatorOptions, type RequestView } from '../openapi/validation/request.ts';
export { ResponseValidator, type CompiledResponse } from '../openapi/validation/response.ts';
export { mediaType, type MediaEntry } from '../openapi/validation/body.ts';
export { summary, type Violation } from '../openapi/validation/violations.ts';
