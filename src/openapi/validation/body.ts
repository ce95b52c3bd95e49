/**
 * Message bodies: choose the media type of `content` that a Content-Type
 * matches (exact, then `type/*`, then `*\/*`; parameters ignored), and turn
 * the bytes into the value its schema describes — JSON (`application/json`,
 * `*+json`), `application/x-www-form-urlencoded` (fields by their encoding's
 * style, like query parameters), `multipart/form-data` (parts; objects and
 * JSON parts parsed; files as text), `text/*` (a string). Other media types
 * are checked for their type only.
 */
import type { EncodingObject, MediaTypeObject, OpenApiDocument } from '../document.ts';
import { isObject, join } from '../pointer.ts';
import { BadValue, decodeQuery, dict, parseQuery, propertiesOf, queryValue, shapeOf, type ParamSpec } from './params.ts';

export type BodyKind = 'json' | 'form' | 'multipart' | 'text' | 'other';

export interface MediaEntry {
  /** The media type as written in the document. */
  readonly key: string;
  /** type/subtype, lower-case, without parameters. */
  readonly type: string;
  readonly kind: BodyKind;
  readonly schemaPointer: string | null;
  /** Form and multipart fields with a declared shape or encoding. */
  readonly fields: readonly ParamSpec[];
  /** Multipart fields whose parts are JSON. */
  readonly jsonFields: ReadonlySet<string>;
}

/** "Application/JSON; charset=utf-8" → "application/json". */
export function mediaType(contentType: string | undefined): string | null {
  if (contentType === undefined) return null;
  const semi = contentType.indexOf(';');
  const t = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return t.includes('/') ? t : null;
}

function kindOf(type: string): BodyKind {
  if (type === 'application/json' || type.endsWith('+json') || type === '*/*' || type === 'application/*') return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  if (type === 'multipart/form-data') return 'multipart';
  if (type.startsWith('text/')) return 'text';
  return 'other';
}

/** The media entries of a `content` map (at `pointer`). */
export function mediaEntries(doc: OpenApiDocument, content: Record<string, MediaTypeObject> | undefined, pointer: string): MediaEntry[] {
  if (!isObject(content)) return [];
  return Object.entries(content).map(([key, media]) => {
    const type = mediaType(key) ?? key.toLowerCase();
    const schemaPointer = media.schema !== undefined ? join(pointer, key, 'schema') : null;
    const fields: ParamSpec[] = [];
    const jsonFields = new Set<string>();
    const kind = kindOf(type);
    if ((kind === 'form' || kind === 'multipart') && schemaPointer) {
      const { value: schema, pointer: sp } = doc.resolve<Record<string, unknown>>(media.schema, schemaPointer);
      const encoding = (media.encoding ?? {}) as Record<string, EncodingObject>;
      const props = isObject(schema) ? collectProperties(doc, schema, sp) : new Map<string, [unknown, string]>();
      for (const name of propertiesOf(doc, schema as Record<string, unknown>, sp)) {
        const [propSchema, propPointer] = props.get(name) ?? [undefined, ''];
        const shape = propSchema === undefined ? 'primitive' : shapeOf(doc, propSchema as Record<string, unknown>, propPointer);
        const enc = encoding[name] ?? {};
        const json = enc.contentType !== undefined ? /[/+]json\b/i.test(enc.contentType) : kind === 'multipart' && shape === 'object';
        if (json) jsonFields.add(name);
        const style = enc.style ?? 'form';
        fields.push({ name, in: 'query', required: false, style, explode: enc.explode ?? style === 'form', shape, allowEmpty: true, properties: [], json, schemaPointer: null });
      }
    }
    return { key, type, kind, schemaPointer, fields, jsonFields };
  });
}

/** Property name → [schema, pointer] of an object schema, allOf members included. */
function collectProperties(doc: OpenApiDocument, schema: Record<string, unknown>, pointer: string, out = new Map<string, [unknown, string]>(), depth = 0): Map<string, [unknown, string]> {
  if (depth > 16) return out;
  if (isObject(schema.properties)) for (const [k, v] of Object.entries(schema.properties)) if (!out.has(k)) out.set(k, [v, join(pointer, 'properties', k)]);
  if (Array.isArray(schema.allOf)) {
    schema.allOf.forEach((m, i) => {
      const r = doc.resolve<Record<string, unknown>>(m, join(pointer, 'allOf', i));
      if (isObject(r.value)) collectProperties(doc, r.value, r.pointer, out, depth + 1);
    });
  }
  return out;
}

/** The entry a Content-Type selects: exact type, then `type/*`, then `*\/*`. */
export function selectMedia(entries: readonly MediaEntry[], contentType: string | undefined): MediaEntry | null {
  const t = mediaType(contentType);
  if (t === null) return entries.find((e) => e.type === '*/*') ?? null;
  const exact = entries.find((e) => e.type === t);
  if (exact) return exact;
  const range = `${t.slice(0, t.indexOf('/'))}/*`;
  return entries.find((e) => e.type === range) ?? entries.find((e) => e.type === '*/*') ?? null;
}

/** A field value failed to parse: where and why. */
export class BadField extends BadValue {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** The value of a body for its media entry (BadValue when it cannot be parsed; `undefined` for kinds not validated). */
export async function parseBody(entry: MediaEntry, body: Buffer, contentType: string | undefined): Promise<unknown> {
  switch (entry.kind) {
    case 'json':
      try {
        return JSON.parse(body.toString('utf8'));
      } catch {
        return new BadValue('is not valid JSON');
      }
    case 'text':
      return body.toString('utf8');
    case 'form':
      return parseForm(entry, body);
    case 'multipart':
      return parseMultipart(entry, body, contentType ?? '');
    default:
      return undefined;
  }
}

function parseForm(entry: MediaEntry, body: Buffer): unknown {
  const pairs = parseQuery(body.toString('utf8'));
  if (pairs instanceof BadValue) return new BadValue('is not valid application/x-www-form-urlencoded');
  const obj = dict();
  const claimed = new Set<string>();
  for (const spec of entry.fields) {
    const v = queryValue(spec, pairs, claimed);
    if (v instanceof BadValue) return new BadField(spec.name, v.message);
    if (v !== undefined) obj[spec.name] = v;
  }
  try {
    for (const [name, values] of pairs) {
      if (!claimed.has(name)) obj[name] = values.length === 1 ? decodeQuery(values[0]!) : values.map(decodeQuery);
    }
  } catch {
    return new BadValue('is not valid percent-encoding');
  }
  return obj;
}

async function parseMultipart(entry: MediaEntry, body: Buffer, contentType: string): Promise<unknown> {
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(body) as Uint8Array<ArrayBuffer>, { headers: { 'content-type': contentType } }).formData();
  } catch {
    return new BadValue('is not valid multipart/form-data');
  }
  const shapes = new Map(entry.fields.map((f) => [f.name, f]));
  const obj = dict();
  for (const name of new Set(form.keys())) {
    const parts: unknown[] = [];
    for (const part of form.getAll(name)) {
      // A file part is validated as text (one character per byte: maxLength counts bytes).
      const text = typeof part === 'string' ? part : Buffer.from(await part.arrayBuffer()).toString('latin1');
      if (entry.jsonFields.has(name)) {
        try {
          parts.push(JSON.parse(text));
        } catch {
          return new BadField(name, 'is not valid JSON');
        }
        continue;
      }
      parts.push(text);
    }
    obj[name] = shapes.get(name)?.shape === 'array' || parts.length > 1 ? parts : parts[0];
  }
  return obj;
}
