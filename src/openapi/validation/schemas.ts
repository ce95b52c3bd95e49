/**
 * Schemas of an OpenAPI document turned into Ajv validators, once per config.
 *
 * The document is copied and normalised so that Ajv (draft-07 for 3.0,
 * 2020-12 for 3.1) reads every Schema Object the way OpenAPI means it:
 * - 3.0 `nullable: true` → `type: [t, "null"]` (or `anyOf` with null), null added to an `enum`;
 * - 3.0 boolean `exclusiveMinimum`/`exclusiveMaximum` → the draft-06+ numeric form;
 * - 3.1 `$schema` naming the OAS dialect dropped (Ajv knows the JSON Schema vocabularies);
 * - requests: a `readOnly` property is not required; responses: a `writeOnly` one is not;
 * - integer, number and boolean schemas check the text form of coerced values (textForm).
 * The normalised copy is added to Ajv whole, and validators are compiled by
 * JSON pointer (`{ $ref: 'urn:palisade:openapi#/paths/…/schema' }`), so a
 * component schema referenced by a hundred operations is compiled once.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { OpenApiDocument } from '../document.ts';
import { getAt, isObject, isRef } from '../pointer.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export const DOC_ID = 'urn:palisade:openapi';

/** Which side of the exchange a validator is for. */
export type Side = 'request' | 'response';

type Json = Record<string, unknown>;

const SUBSCHEMA = ['additionalProperties', 'items', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems', 'additionalItems', 'contentSchema'];
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions'];
/** Keys of non-schema objects whose values are data, never schemas. */
const DATA = new Set(['example', 'examples', 'default', 'enum', 'const', 'value']);
/** Parts of the document (outside schemas) no validator reads: left out of the copy given to Ajv. */
const DOC_NOISE = new Set(['description', 'summary', 'example', 'examples', 'externalDocs', 'info', 'tags', 'webhooks', 'links', 'callbacks', 'servers']);
/** Spec members that are maps of user-chosen names. */
const MAPS = new Set(['paths', 'headers', 'content', 'responses', 'encoding', 'parameters', 'requestBodies', 'securitySchemes', 'pathItems']);
/** Annotations of Schema Objects that validate nothing. */
const SCHEMA_NOISE = new Set(['description', 'example', 'examples', 'externalDocs', 'xml', 'title', 'deprecated']);

/**
 * A copy of the document for Ajv: structure and schemas kept (every JSON
 * pointer of a schema stays valid), descriptions, examples and extensions
 * left out — for a large document that is most of its size.
 */
function project(doc: Json): Json {
  const schema = (s: unknown): unknown => {
    if (!isObject(s)) return s;
    const out: Json = {};
    for (const [k, v] of Object.entries(s)) {
      if (SCHEMA_NOISE.has(k) || k.startsWith('x-')) continue;
      if (SUBSCHEMA_MAPS.includes(k) && isObject(v)) {
        const map: Json = {};
        for (const [name, sub] of Object.entries(v)) map[name] = schema(sub);
        out[k] = map;
      } else if ((SUBSCHEMA_LISTS.includes(k) && Array.isArray(v)) || (SUBSCHEMA.includes(k) && isObject(v))) {
        out[k] = Array.isArray(v) ? v.map(schema) : schema(v);
      } else out[k] = v;
    }
    return out;
  };
  // `inMap`: the node is an entry of a map of user-chosen names (paths, headers, media types,
  // components …): its key means nothing. Spec objects lose their annotations and extensions.
  const other = (node: unknown, key: string, inMap: boolean): unknown => {
    if (Array.isArray(node)) return node.map((x) => other(x, '', false));
    if (!isObject(node)) return node;
    if (!inMap && key === 'schema') return schema(node);
    if (!inMap && key === 'schemas') {
      const map: Json = {};
      for (const [name, s] of Object.entries(node)) map[name] = schema(s);
      return map;
    }
    const isMap = !inMap && MAPS.has(key);
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) {
      if (!isMap && (DOC_NOISE.has(k) || k.startsWith('x-'))) continue;
      out[k] = typeof v === 'object' && v !== null && (isMap || !DATA.has(k)) ? other(v, k, isMap) : v;
    }
    return out;
  };
  return other(doc, '', false) as Json;
}

/** Apply `visit` to every Schema Object of the document (components.schemas and every `schema` member), depth-first. */
function eachSchema(doc: Json, visit: (schema: Json) => void): void {
  const seen = new Set<object>();
  const schema = (s: unknown) => {
    if (!isObject(s) || seen.has(s)) return;
    seen.add(s);
    for (const k of SUBSCHEMA) if (isObject(s[k])) schema(s[k]);
    for (const k of SUBSCHEMA_LISTS) if (Array.isArray(s[k])) for (const x of s[k] as unknown[]) schema(x);
    for (const k of SUBSCHEMA_MAPS) if (isObject(s[k])) for (const x of Object.values(s[k] as Json)) schema(x);
    visit(s);
  };
  const other = (node: unknown, key: string) => {
    if (Array.isArray(node)) {
      for (const x of node) other(x, '');
      return;
    }
    if (!isObject(node)) return;
    if (key === 'schema') return schema(node);
    if (key === 'schemas') {
      for (const x of Object.values(node)) schema(x);
      return;
    }
    for (const [k, v] of Object.entries(node)) if (!DATA.has(k) && typeof v === 'object') other(v, k);
  };
  other(doc, '');
}

function nullable30(s: Json): void {
  if (s.nullable === true) {
    if (typeof s.type === 'string') s.type = [s.type, 'null'];
    if (Array.isArray(s.enum) && !s.enum.includes(null)) s.enum = [...s.enum, null];
    if (s.type === undefined && (s.allOf || s.anyOf || s.oneOf || s.$ref)) {
      const rest: Json = { ...s };
      delete rest.nullable;
      for (const k of Object.keys(s)) delete s[k];
      s.anyOf = [{ type: 'null' }, rest];
      return;
    }
  }
  delete s.nullable;
  for (const [ex, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (s[ex] === true && typeof s[bound] === 'number') {
      s[ex] = s[bound];
      delete s[bound];
    } else if (typeof s[ex] === 'boolean') delete s[ex];
  }
}

const KNOWN_DIALECTS = /json-schema\.org\/(draft-07|draft\/2020-12|draft\/2019-09)\/schema/;

/** The normalised copy of a document for one side. */
export function normalise(doc: OpenApiDocument, side: Side): Json {
  const copy = project(doc.raw as Json);
  const hidden = side === 'request' ? 'readOnly' : 'writeOnly';
  const is30 = doc.version === '3.0';
  const target = (s: unknown): unknown => {
    for (let i = 0; i < 16 && isRef(s) && s.$ref.startsWith('#'); i++) s = getAt(copy, s.$ref.slice(1));
    return s;
  };
  eachSchema(copy, (s) => {
    if (is30) nullable30(s);
    else if (typeof s.$schema === 'string' && !KNOWN_DIALECTS.test(s.$schema)) delete s.$schema;
    textForm(s);
    if (Array.isArray(s.required) && isObject(s.properties)) {
      const props = s.properties;
      const keep = (s.required as string[]).filter((name) => {
        const p = target(props[name]) as Json | undefined;
        return !(isObject(p) && p[hidden] === true) && !(isObject(props[name]) && props[name][hidden] === true);
      });
      if (keep.length !== s.required.length) s.required = keep;
    }
  });
  copy.$id = DOC_ID;
  return copy;
}

/** The keyword that checks the text form of a value before it is coerced (see textForm). */
export const TEXT_FORM = 'x-palisade-text';

/**
 * How a number or boolean must be written when it arrives as text (a
 * parameter, a form field): Ajv's coercion reads "0x10", "0b11", "5e1" or
 * " 50" as numbers (JavaScript's Number()); upstreams read them differently.
 * Integers: decimal digits with an optional minus sign, no leading zeros;
 * numbers: the JSON number grammar; booleans: exactly true or false.
 */
const TEXT: Record<string, RegExp> = {
  integer: /^-?(?:0|[1-9]\d*)$/,
  number: /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/,
  boolean: /^(?:true|false)$/,
};
/** Keys that stay on a wrapped schema object: references into it, and the annotations normalise() reads. */
const KEEP = ['$id', '$anchor', '$dynamicAnchor', '$defs', 'definitions', '$schema', 'readOnly', 'writeOnly'];

/**
 * For values that arrive as text: a schema that accepts an integer, a number
 * or a boolean (and not a string) is wrapped so that the text is checked
 * before Ajv coerces it — `{ allOf: [{ x-palisade-text: [kinds] }, <the
 * schema>] }`: Ajv checks `type` (and coerces) before the other keywords of
 * an object, so the check must sit in an earlier allOf member. The keyword
 * checks in the coercing validators and compiles to nothing in the strict
 * ones (JSON bodies), which share the normalised document.
 */
function textForm(s: Json): void {
  const types = typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? (s.type as unknown[]) : [];
  if (types.includes('string')) return;
  const kinds = types.filter((t): t is string => typeof t === 'string' && t in TEXT);
  if (kinds.length === 0) return;
  const inner: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (KEEP.includes(k)) continue;
    inner[k] = v;
    delete s[k];
  }
  s.allOf = [{ [TEXT_FORM]: types.includes('null') ? [...kinds, 'null'] : kinds }, inner];
}

/** The text-form check: a string must be written as one of the kinds ("" stands for null); nothing for strict validators. */
function textFormKeyword(ajv: Ajv, coerce: boolean): void {
  if (!coerce) {
    ajv.addKeyword({ keyword: TEXT_FORM, schemaType: 'array', macro: () => true });
    return;
  }
  const names: Record<string, string> = { integer: 'a decimal integer (digits, an optional minus sign)', number: 'a JSON number', boolean: 'true or false' };
  ajv.addKeyword({
    keyword: TEXT_FORM,
    type: 'string',
    schemaType: 'array',
    errors: true,
    validate: function check(kinds: string[], data: string): boolean {
      if (kinds.some((k) => (k === 'null' ? data === '' : TEXT[k]!.test(data)))) return true;
      const wanted = kinds.filter((k) => k !== 'null').map((k) => names[k]).join(' or ');
      (check as unknown as { errors: Partial<ErrorObject>[] }).errors = [{ keyword: TEXT_FORM, message: `must be written as ${wanted}`, params: { kinds } }];
      return false;
    },
  });
}

/** OpenAPI's own formats (not in ajv-formats). */
function addOpenApiFormats(ajv: Ajv): void {
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  ajv.addFormat('binary', true);
  ajv.addFormat('password', true);
}

/**
 * Validators over one normalised document. `coerce` compiles for values
 * that arrive as text (parameters, form fields): "42" passes `integer`,
 * "0x2A" does not (textForm).
 */
export class SchemaSet {
  readonly #ajv: Ajv;
  readonly #doc: OpenApiDocument;
  readonly #cache = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument, normalised: Json, coerce: boolean) {
    const opts: Options = { allErrors: true, strict: false, logger: false, validateSchema: false, inlineRefs: false, coerceTypes: coerce ? 'array' : false, discriminator: false };
    this.#ajv = doc.version === '3.1' ? (new Ajv2020(opts) as unknown as Ajv) : new Ajv(opts);
    addFormats(this.#ajv);
    addOpenApiFormats(this.#ajv);
    textFormKeyword(this.#ajv, coerce);
    this.#ajv.addSchema(normalised);
    this.#doc = doc;
  }

  /** The validator of the schema at a pointer of the document (compiled once); throws an OpenApiError naming the pointer. */
  compile(pointer: string): ValidateFunction {
    let fn = this.#cache.get(pointer);
    if (fn) return fn;
    try {
      fn = this.#ajv.compile({ $ref: `${DOC_ID}#${pointer.split('/').map(encodeURIComponent).join('/')}` });
    } catch (err) {
      throw this.#doc.error(pointer, `the schema cannot be compiled: ${(err as Error).message}`, 'Fix the schema (a JSON Schema of the dialect of this OpenAPI version).');
    }
    this.#cache.set(pointer, fn);
    return fn;
  }
}

export type { ErrorObject, ValidateFunction };
