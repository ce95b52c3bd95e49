/**
 * Parameter serialisation (OpenAPI "style" and "explode"): turn the text of
 * a path segment, query string, header or cookie into the value its schema
 * describes (a string, an array, an object), before Ajv checks it (with
 * type coercion: "42" is an integer, "true" a boolean).
 *
 *   path   simple (default) "3,4,5" · label ".3.4.5" · matrix ";id=3,4,5"
 *   query  form (default, explode) "id=3&id=4" · form "id=3,4" · spaceDelimited "id=3%204"
 *          · pipeDelimited "id=3|4" · deepObject "color[R]=100&color[G]=200"
 *   header simple "3,4,5"          cookie form "id=3,4,5"
 * A parameter with `content` (e.g. application/json) is parsed as that media type.
 */
import type { Located, OpenApiDocument, ParameterObject, SchemaObject } from '../document.ts';
import { isObject, join } from '../pointer.ts';

export type Shape = 'primitive' | 'array' | 'object';

/**
 * An object built from names the client chose: no prototype, so "__proto__"
 * or "constructor" are plain keys (no prototype pollution, nothing inherited
 * that a `required` check could see).
 */
export function dict<T = unknown>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** What the schema at `pointer` is: an array, an object or a primitive (following $refs and allOf/anyOf/oneOf). */
export function shapeOf(doc: OpenApiDocument, schema: SchemaObject | undefined, pointer: string, depth = 0): Shape {
  if (schema === undefined || typeof schema === 'boolean' || depth > 16) return 'primitive';
  const { value: s, pointer: p } = doc.resolve<Record<string, unknown>>(schema, pointer);
  if (!isObject(s)) return 'primitive';
  const types = Array.isArray(s.type) ? s.type : typeof s.type === 'string' ? [s.type] : [];
  if (types.includes('array')) return 'array';
  if (types.includes('object')) return 'object';
  if (types.length) return 'primitive';
  if (s.items !== undefined || s.prefixItems !== undefined) return 'array';
  if (s.properties !== undefined || s.additionalProperties !== undefined) return 'object';
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    const list = s[k];
    if (!Array.isArray(list)) continue;
    for (let i = 0; i < list.length; i++) {
      const shape = shapeOf(doc, list[i] as SchemaObject, `${p}/${k}/${i}`, depth + 1);
      if (shape !== 'primitive') return shape;
    }
  }
  return 'primitive';
}

/** Declared property names of an object schema (with allOf members). */
export function propertiesOf(doc: OpenApiDocument, schema: SchemaObject | undefined, pointer: string, depth = 0): string[] {
  if (schema === undefined || typeof schema === 'boolean' || depth > 16) return [];
  const { value: s, pointer: p } = doc.resolve<Record<string, unknown>>(schema, pointer);
  if (!isObject(s)) return [];
  const out = isObject(s.properties) ? Object.keys(s.properties) : [];
  if (Array.isArray(s.allOf)) s.allOf.forEach((x, i) => out.push(...propertiesOf(doc, x as SchemaObject, `${p}/allOf/${i}`, depth + 1)));
  return out;
}

/** A parameter ready to deserialise. */
export interface ParamSpec {
  readonly name: string;
  readonly in: ParameterObject['in'];
  readonly required: boolean;
  readonly style: string;
  readonly explode: boolean;
  readonly shape: Shape;
  readonly allowEmpty: boolean;
  /** Property names of an exploded form object (they appear as query names of their own). */
  readonly properties: readonly string[];
  /** The parameter uses `content` with a JSON media type. */
  readonly json: boolean;
  /** Pointer of its schema (under `schema` or `content.<type>.schema`), or null. */
  readonly schemaPointer: string | null;
}

const DEFAULT_STYLE: Record<ParameterObject['in'], string> = { path: 'simple', query: 'form', header: 'simple', cookie: 'form' };

export function paramSpec(doc: OpenApiDocument, p: Located<ParameterObject>): ParamSpec {
  const style = p.style ?? DEFAULT_STYLE[p.in];
  let schema = p.schema;
  let schemaPointer: string | null = p.schema !== undefined ? `${p.pointer}/schema` : null;
  let json = false;
  if (schema === undefined && isObject(p.content)) {
    const [type, media] = Object.entries(p.content)[0] ?? [];
    if (type && media) {
      json = /[/+]json\b/i.test(type);
      schema = media.schema;
      if (schema !== undefined) schemaPointer = join(p.pointer, 'content', type, 'schema');
    }
  }
  const shape = json ? 'primitive' : shapeOf(doc, schema, schemaPointer ?? p.pointer);
  return {
    name: p.name,
    in: p.in,
    required: p.required === true,
    style,
    explode: p.explode ?? style === 'form',
    shape,
    allowEmpty: p.allowEmptyValue === true,
    properties: shape === 'object' && style === 'form' ? propertiesOf(doc, schema, schemaPointer ?? p.pointer) : [],
    json,
    schemaPointer,
  };
}

/** A value that could not be deserialised: the message says why (never the value). */
export class BadValue {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** Decode a query component ("+" is a space). */
export function decodeQuery(s: string): string {
  return decodeURIComponent(s.indexOf('+') >= 0 ? s.replace(/\+/g, ' ') : s);
}

/** Split a raw query string into decoded names → raw (undecoded) values. */
export function parseQuery(raw: string): Map<string, string[]> | BadValue {
  const out = new Map<string, string[]>();
  if (raw === '') return out;
  try {
    for (const pair of raw.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const name = decodeQuery(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      const list = out.get(name);
      if (list) list.push(value);
      else out.set(name, [value]);
    }
  } catch {
    return new BadValue('the query string is not valid percent-encoding');
  }
  return out;
}

/** A cookie sent more than once: which copy a server reads varies (first, last), so a declared one is refused. */
export const DUPLICATE_COOKIE = '\0duplicate';

/** Name=value pairs of a Cookie header (values raw); a name sent twice maps to DUPLICATE_COOKIE. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    out.set(name, out.has(name) ? DUPLICATE_COOKIE : part.slice(eq + 1).trim());
  }
  return out;
}

type Decode = (s: string) => string;

/** Parts → the value of a shape: an array of parts, an object from "k,v,k,v" or "k=v" parts, or the text. */
function fromParts(parts: readonly string[], spec: ParamSpec, keyValue: boolean, dec: Decode): unknown {
  if (spec.shape === 'array') return parts.map(dec);
  if (spec.shape === 'object') {
    const obj = dict<string>();
    if (keyValue) {
      for (const part of parts) {
        const eq = part.indexOf('=');
        if (eq > 0) obj[dec(part.slice(0, eq))] = dec(part.slice(eq + 1));
        else return new BadValue('is not a list of key=value pairs');
      }
    } else {
      if (parts.length % 2) return new BadValue('is not a list of key,value pairs');
      for (let i = 0; i < parts.length; i += 2) obj[dec(parts[i]!)] = dec(parts[i + 1]!);
    }
    return obj;
  }
  return dec(parts.join(','));
}

function guarded(fn: () => unknown): unknown {
  try {
    return fn();
  } catch {
    return new BadValue('is not valid percent-encoding');
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return new BadValue('is not valid JSON');
  }
}

/** A path parameter's value from its raw text (undefined never: path parameters are always there). */
export function pathValue(spec: ParamSpec, raw: string): unknown {
  return guarded(() => {
    if (spec.json) return parseJson(decodeURIComponent(raw));
    let text = raw;
    if (spec.style === 'label') {
      if (!text.startsWith('.')) return new BadValue("must start with '.' (label style)");
      text = text.slice(1);
      if (spec.shape === 'primitive') return decodeURIComponent(text);
      return fromParts(text.split(spec.explode ? '.' : ','), spec, spec.explode, decodeURIComponent);
    }
    if (spec.style === 'matrix') {
      if (spec.shape === 'object' && spec.explode) return fromParts(text.split(';').slice(1), spec, true, decodeURIComponent);
      const prefix = `;${spec.name}=`;
      if (spec.shape === 'array' && spec.explode) {
        const parts = text.split(';').slice(1);
        if (!parts.every((p) => p.startsWith(`${spec.name}=`))) return new BadValue(`must be ;${spec.name}=… (matrix style)`);
        return parts.map((p) => decodeURIComponent(p.slice(spec.name.length + 1)));
      }
      if (!text.startsWith(prefix)) return text === `;${spec.name}` && spec.shape === 'primitive' ? '' : new BadValue(`must start with '${prefix}' (matrix style)`);
      text = text.slice(prefix.length);
      if (spec.shape === 'primitive') return decodeURIComponent(text);
      return fromParts(text.split(','), spec, false, decodeURIComponent);
    }
    if (spec.shape === 'primitive') return decodeURIComponent(text);
    return fromParts(text.split(','), spec, spec.explode, decodeURIComponent);
  });
}

/** A header parameter's value (simple style), or undefined when absent. */
export function headerValue(spec: ParamSpec, header: string | undefined): unknown {
  if (header === undefined) return undefined;
  if (spec.json) return parseJson(header);
  if (spec.shape === 'primitive') return header.trim();
  return fromParts(header.split(',').map((s) => s.trim()), spec, spec.explode, (s) => s);
}

/** A cookie parameter's value (form style), or undefined when absent. */
export function cookieValue(spec: ParamSpec, cookies: Map<string, string>): unknown {
  const raw = cookies.get(spec.name);
  if (raw === undefined) return undefined;
  if (raw === DUPLICATE_COOKIE) return new BadValue('must appear only once');
  return guarded(() => {
    if (spec.json) return parseJson(decodeURIComponent(raw));
    if (spec.shape === 'primitive') return decodeURIComponent(raw);
    return fromParts(raw.split(','), spec, false, decodeURIComponent);
  });
}

const DELIMITER: Record<string, RegExp> = { spaceDelimited: /%20|\+| /i, pipeDelimited: /\||%7C/i };

/**
 * A query parameter's value, or undefined when absent. `claimed` collects the
 * query names this parameter consumed (for the unknown-parameter check).
 */
export function queryValue(spec: ParamSpec, query: Map<string, string[]>, claimed: Set<string>): unknown {
  return guarded(() => {
    if (spec.style === 'deepObject') {
      const prefix = `${spec.name}[`;
      let obj: Record<string, unknown> | undefined;
      for (const [name, values] of query) {
        if (!name.startsWith(prefix) || !name.endsWith(']')) continue;
        claimed.add(name);
        const keys = name.slice(prefix.length, -1).split('][');
        obj ??= dict();
        let node = obj;
        for (const k of keys.slice(0, -1)) node = (isObject(node[k]) ? node[k] : (node[k] = dict())) as Record<string, unknown>;
        const decoded = values.map(decodeQuery);
        node[keys.at(-1)!] = decoded.length === 1 ? decoded[0] : decoded;
      }
      return obj;
    }
    if (spec.shape === 'object' && spec.explode && spec.style === 'form' && !spec.json) {
      let obj: Record<string, unknown> | undefined;
      for (const prop of spec.properties) {
        const values = query.get(prop);
        if (!values) continue;
        claimed.add(prop);
        (obj ??= dict())[prop] = values.length === 1 ? decodeQuery(values[0]!) : values.map(decodeQuery);
      }
      return obj;
    }
    const values = query.get(spec.name);
    if (!values) return undefined;
    claimed.add(spec.name);
    if (spec.shape === 'array' && spec.explode && spec.style === 'form') return values.map(decodeQuery);
    if (values.length > 1) return new BadValue('must appear only once');
    const raw = values[0]!;
    if (raw === '' && !spec.allowEmpty) return new BadValue('must not be empty (allowEmptyValue is not set)');
    if (spec.json) return parseJson(decodeQuery(raw));
    if (spec.shape === 'primitive') return decodeQuery(raw);
    const delimiter = DELIMITER[spec.style];
    return fromParts(delimiter && spec.shape === 'array' ? raw.split(delimiter) : raw.split(','), spec, false, decodeQuery);
  });
}
