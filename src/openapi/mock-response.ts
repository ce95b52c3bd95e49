/**
 * What the mock answers for an operation: the response (status) chosen from
 * the document and the `Prefer` header, the media type from `Accept`, and a
 * body and headers (required ones, or with an example) made of the
 * document's examples or, failing those, values generated from the schemas — deterministic by default (openapi-sampler:
 * `example`/`default`, formats, bounds, enums, minItems), random with
 * `Prefer: dynamic=true` (json-schema-faker).
 */
import { randomInt } from 'node:crypto';
import { sample } from 'openapi-sampler';
import { generateSync } from 'json-schema-faker';
import type { MediaTypeObject, OpenApiDocument, Operation, ResponseObject } from './document.ts';
import { isObject, join } from './pointer.ts';

/** `Prefer: code=404, example=name, dynamic=true` (Prism's convention). */
export interface Preferences {
  code?: number;
  example?: string;
  dynamic?: boolean;
}

export function parsePrefer(header: string | string[] | undefined): Preferences {
  const out: Preferences = {};
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const part of text.split(/[,;]/)) {
    const m = /^\s*([A-Za-z-]+)\s*=\s*"?([^"]*)"?\s*$/.exec(part);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key.toLowerCase() === 'code' && /^\d{3}$/.test(value)) out.code = Number(value);
    else if (key.toLowerCase() === 'example') out.example = value;
    else if (key.toLowerCase() === 'dynamic') out.dynamic = value === 'true';
  }
  return out;
}

export interface MockAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | null;
  /** Where the body came from: example, example:<name>, generated, dynamic, none. */
  source: string;
}

/** A problem the client can fix (an unknown Prefer code or example, nothing acceptable). */
export class MockRequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const isJson = (type: string) => /^application\/(.+\+)?json\b/i.test(type) || type === '*/*';

/** The response key for a status: exact, then its class (4XX), then default. */
function responseFor(op: Operation, prefs: Preferences): { key: string; status: number } {
  const keys = Object.keys(op.responses);
  if (prefs.code !== undefined) {
    const code = prefs.code;
    const key = keys.find((k) => k === String(code)) ?? keys.find((k) => k.toUpperCase() === `${String(code)[0]}XX`) ?? keys.find((k) => k === 'default');
    if (!key) throw new MockRequestError(400, `Prefer: code=${code}: ${op.method.toUpperCase()} ${op.path} has no such response (it has ${keys.join(', ') || 'none'})`);
    return { key, status: code };
  }
  const numeric = (k: string) => (/^\d{3}$/.test(k) ? Number(k) : /^\dXX$/i.test(k) ? Number(k[0]) * 100 : NaN);
  const success = keys.filter((k) => numeric(k) >= 200 && numeric(k) < 300).sort((a, b) => numeric(a) - numeric(b))[0];
  if (success) return { key: success, status: numeric(success) };
  if (keys.includes('default')) return { key: 'default', status: 200 };
  const first = keys.filter((k) => !Number.isNaN(numeric(k))).sort((a, b) => numeric(a) - numeric(b))[0];
  if (!first) throw new MockRequestError(500, `${op.method.toUpperCase()} ${op.path} defines no response`);
  return { key: first, status: numeric(first) };
}

/** The media type of `content` the client accepts (order and q of Accept honoured; JSON preferred without one). */
function negotiate(content: Record<string, MediaTypeObject>, accept: string | undefined): string | null {
  const types = Object.keys(content);
  if (types.length === 0) return null;
  const ranges = (accept ?? '*/*')
    .split(',')
    .map((r, i) => {
      const [type, ...params] = r.trim().split(';');
      const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find((v) => v !== undefined);
      return { type: type!.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), i };
    })
    .filter((r) => r.type && r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranges) {
    const matches = types.filter((t) => {
      const base = t.split(';')[0]!.trim().toLowerCase();
      if (r.type === '*/*') return true;
      if (r.type.endsWith('/*')) return base.startsWith(r.type.slice(0, -1));
      return base === r.type;
    });
    if (matches.length) return matches.find(isJson) ?? matches[0]!;
  }
  throw new MockRequestError(406, `none of the response media types (${types.join(', ')}) is acceptable (Accept: ${accept})`);
}

/** A value for a schema: sampled (deterministic) or faked (random). */
function generate(doc: OpenApiDocument, schema: unknown, dynamic: boolean): unknown {
  if (dynamic) {
    const root = { ...(schema as object), components: (doc.raw as Record<string, unknown>).components } as never;
    return generateSync(root, { seed: randomInt(2 ** 31), maxDepth: 5, alwaysFakeOptionals: false });
  }
  return sample(schema as never, { skipWriteOnly: true, quiet: true } as never, doc.raw as never);
}

/** The `examples` entry value ($refs followed; externalValue is not fetched). */
function exampleValue(doc: OpenApiDocument, example: unknown, pointer: string): unknown {
  const ex = doc.resolve<Record<string, unknown>>(example, pointer).value;
  return isObject(ex) ? ex.value : undefined;
}

function bodyValue(doc: OpenApiDocument, media: MediaTypeObject, pointer: string, prefs: Preferences): { value: unknown; source: string } | null {
  const examples = isObject(media.examples) ? media.examples : {};
  if (prefs.example !== undefined) {
    if (!(prefs.example in examples)) {
      throw new MockRequestError(400, `Prefer: example=${prefs.example}: no such example (${Object.keys(examples).join(', ') || 'the response has no named examples'})`);
    }
    return { value: exampleValue(doc, examples[prefs.example], join(pointer, 'examples', prefs.example)), source: `example:${prefs.example}` };
  }
  if (media.schema !== undefined && prefs.dynamic) return { value: generate(doc, media.schema, true), source: 'dynamic' };
  if (media.example !== undefined) return { value: media.example, source: 'example' };
  const first = Object.keys(examples)[0];
  if (first !== undefined) return { value: exampleValue(doc, examples[first], join(pointer, 'examples', first)), source: `example:${first}` };
  if (media.schema !== undefined) return { value: generate(doc, media.schema, false), source: 'generated' };
  return null;
}

function serialize(value: unknown, type: string): string {
  if (isJson(type) || (typeof value === 'object' && value !== null)) return JSON.stringify(value);
  return String(value);
}

/** The mock's answer for a valid request to `op`. Throws MockRequestError for an unusable Prefer or Accept. */
export function mockAnswer(doc: OpenApiDocument, op: Operation, prefs: Preferences, accept: string | undefined): MockAnswer {
  const { key, status } = responseFor(op, prefs);
  const res: ResponseObject & { pointer: string } = op.responses[key]!;
  const headers: Record<string, string> = {};
  for (const [name, h] of Object.entries(res.headers)) {
    if (name.toLowerCase() === 'content-type') continue;
    const examples = isObject(h.examples) ? Object.values(h.examples) : [];
    let value = h.example ?? (examples.length ? exampleValue(doc, examples[0], h.pointer) : undefined);
    // Generated only for required headers: an invented CORS or rate-limit header would mislead more than help.
    if (value === undefined && h.schema !== undefined && h.required === true) value = generate(doc, h.schema, prefs.dynamic === true);
    if (value !== undefined && value !== null) headers[name.toLowerCase()] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  const content = isObject(res.content) ? (res.content as Record<string, MediaTypeObject>) : {};
  const type = negotiate(content, accept);
  if (type === null) return { status, headers, body: null, source: 'none' };
  const value = bodyValue(doc, content[type]!, join(res.pointer, 'content', type), prefs);
  headers['content-type'] = type === '*/*' ? 'application/octet-stream' : type;
  if (value === null) return { status, headers, body: null, source: 'none' };
  return { status, headers, body: serialize(value.value, type), source: value.source };
}
