/**
 * Response validation compiled from a document: per operation and status
 * (exact code, then "4XX"-style ranges, then "default") the headers and the
 * media types with their body validators, in the response-side dialect
 * (writeOnly properties not required).
 */
import type { ValidateFunction } from 'ajv';
import type { OpenApiDocument, Operation } from '../document.ts';
import { join } from '../pointer.ts';
import { mediaEntries, mediaType, parseBody, selectMedia, type MediaEntry } from './body.ts';
import { BadValue, headerValue, paramSpec, type ParamSpec } from './params.ts';
import { normalise, SchemaSet } from './schemas.ts';
import { fromAjv, type Violation } from './violations.ts';

export interface CompiledResponse {
  /** The status key as written ("200", "2XX", "default"). */
  readonly status: string;
  readonly headers: readonly { readonly spec: ParamSpec; readonly validate: ValidateFunction | null }[];
  readonly media: readonly MediaEntry[];
  readonly validators: ReadonlyMap<MediaEntry, ValidateFunction>;
}

export class ResponseValidator {
  readonly document: OpenApiDocument;
  readonly #byOperation = new Map<Operation, Map<string, CompiledResponse>>();

  constructor(doc: OpenApiDocument) {
    this.document = doc;
    const normalised = normalise(doc, 'response');
    const strict = new SchemaSet(doc, normalised, false);
    const coercing = new SchemaSet(doc, normalised, true);
    for (const op of doc.operations) {
      const map = new Map<string, CompiledResponse>();
      for (const [status, r] of Object.entries(op.responses)) {
        const headers = Object.entries(r.headers)
          .filter(([name]) => name.toLowerCase() !== 'content-type')
          .map(([name, h]) => {
            const spec = paramSpec(doc, { ...h, name, in: 'header' });
            return { spec, validate: spec.schemaPointer ? coercing.compile(spec.schemaPointer) : null };
          });
        const media = mediaEntries(doc, r.content, join(r.pointer, 'content'));
        const validators = new Map<MediaEntry, ValidateFunction>();
        for (const m of media) if (m.schemaPointer && m.kind !== 'other') validators.set(m, (m.kind === 'json' ? strict : coercing).compile(m.schemaPointer));
        map.set(status.toUpperCase(), { status, headers, media, validators });
      }
      this.#byOperation.set(op, map);
    }
  }

  /** The documented response for a status: exact, then range ("4XX"), then "default"; null when undocumented. */
  select(op: Operation, status: number): CompiledResponse | null {
    const map = this.#byOperation.get(op);
    if (!map) return null;
    return map.get(String(status)) ?? map.get(`${String(status).charAt(0)}XX`) ?? map.get('DEFAULT') ?? null;
  }

  /** Status and headers (the response phase): the violations and the documented response, when there is one. */
  validateHead(op: Operation, status: number, header: (name: string) => string | undefined): { violations: Violation[]; response: CompiledResponse | null } {
    const response = this.select(op, status);
    if (!response) return { violations: [{ in: 'status', pointer: '', message: `status ${status} is not documented for this operation` }], response: null };
    const violations: Violation[] = [];
    for (const h of response.headers) {
      const v = headerValue(h.spec, header(h.spec.name.toLowerCase()));
      if (v === undefined) {
        if (h.spec.required) violations.push({ in: 'header', name: h.spec.name, pointer: '', message: 'is required' });
      } else if (v instanceof BadValue) violations.push({ in: 'header', name: h.spec.name, pointer: '', message: v.message });
      else if (h.validate && !h.validate(v)) violations.push(...fromAjv(h.validate.errors, 'header', h.spec.name));
    }
    return { violations, response };
  }

  /** The body of a documented response (the body phase). An empty body is not checked. */
  async validateBody(response: CompiledResponse, contentType: string | undefined, body: Buffer): Promise<Violation[]> {
    if (body.length === 0 || response.media.length === 0) return [];
    const entry = selectMedia(response.media, contentType);
    if (!entry) {
      const what = mediaType(contentType) === null ? 'missing or not a media type' : 'not a documented media type';
      return [{ in: 'content-type', pointer: '', message: `Content-Type is ${what} of this response (expected ${response.media.map((m) => m.key).join(', ')})` }];
    }
    const validate = response.validators.get(entry);
    if (!validate) return [];
    const value = await parseBody(entry, body, contentType);
    if (value instanceof BadValue) return [{ in: 'body', pointer: '', message: value.message }];
    if (value === undefined) return [];
    return validate(value) ? [] : fromAjv(validate.errors, 'body');
  }
}
