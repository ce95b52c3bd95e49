/**
 * OTLP JSON for one span, built as one ASCII string (template literals over
 * constant text, each value escaped by jsonText()) and written into the
 * exporter's queue with one native copy (LogArena.add()). Cheaper than
 * writing the span byte by byte in JavaScript: under callgrind a request's
 * span cost about half the instructions. The output is opentelemetry-proto's
 * JSON mapping: JSON.stringify of the equivalent span object (same field
 * order), with characters outside ASCII written as \u escapes.
 */
import { jsonText } from '../../pdk/index.ts';

export type AttrValue = string | number | boolean;

/** An attribute key: the text that opens its value, as a string or as an integer. */
export interface AttrKey {
  readonly key: string;
  readonly str: string;
  readonly int: string;
}

export function attrKey(key: string): AttrKey {
  const open = `{"key":"${jsonText(key)}","value":{`;
  return { key, str: `${open}"stringValue":"`, int: `${open}"intValue":"` };
}

/** One attribute as OTLP JSON text: string, bool, int (as a decimal string) or double. */
function attributeJson(key: string, v: AttrValue): string {
  const open = `{"key":"${jsonText(key)}","value":{`;
  if (typeof v === 'string') return `${open}"stringValue":"${jsonText(v)}"}}`;
  if (typeof v === 'boolean') return `${open}"boolValue":${v}}}`;
  if (Number.isInteger(v)) return `${open}"intValue":"${v}"}}`;
  return `${open}"doubleValue":${Number.isFinite(v) ? String(v) : 'null'}}}`;
}

/** A map of attributes as an OTLP JSON array (resource attributes: written once). */
export function attributes(attrs: Readonly<Record<string, AttrValue>>): string {
  return `[${Object.entries(attrs).map(([key, v]) => attributeJson(key, v)).join(',')}]`;
}

/** A string attribute; attributes are joined with commas by the caller. */
export const strAttr = (k: AttrKey, v: string): string => `${k.str}${jsonText(v)}"}}`;

/** An integer attribute, written as a decimal string (OTLP JSON's int64); other numbers as doubleValue. */
export const intAttr = (k: AttrKey, v: number): string => (Number.isInteger(v) ? `${k.int}${v}"}}` : attributeJson(k.key, v));

/** ms since the epoch (fractional) → nanoseconds as a decimal string (no float precision lost on the ms part). */
export function nanos(ms: number): string {
  if (!(ms >= 0 && ms < 2 ** 53)) return '0'; // never a time the collector would refuse the whole batch for
  let whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac >= 1e6) {
    whole += 1;
    frac = 0;
  }
  if (whole === 0) return String(frac);
  return frac === 0 ? `${whole}000000` : `${whole}${String(frac + 1e6).slice(1)}`;
}

/** One event (a security decision) with its attributes (joined with commas). */
export const event = (timeMs: number, attrs: string): string => `{"timeUnixNano":"${nanos(timeMs)}","name":"palisade.decision","attributes":[${attrs}]}`;

/** The parts of a span: ids are lower-case hex (as propagation.ts makes and checks them), `attrs` and `events` joined with commas. */
export interface SpanParts {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for none. */
  readonly parentSpanId: string;
  readonly traceState: string | null;
  readonly name: string;
  readonly kind: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly attrs: string;
  /** '' for none. */
  readonly events: string;
  /** null: status unset; else failed, with this message. */
  readonly error: string | null;
}

/** A span as OTLP JSON: ASCII only. */
export function span(s: SpanParts): string {
  return (
    `{"traceId":"${s.traceId}","spanId":"${s.spanId}"${s.parentSpanId === '' ? '' : `,"parentSpanId":"${s.parentSpanId}"`}` +
    `${s.traceState === null ? '' : `,"traceState":"${jsonText(s.traceState)}"`},"name":"${jsonText(s.name)}","kind":${s.kind}` +
    `,"startTimeUnixNano":"${nanos(s.startMs)}","endTimeUnixNano":"${nanos(s.endMs)}","attributes":[${s.attrs}]` +
    `${s.events === '' ? '' : `,"events":[${s.events}]`},"status":${s.error === null ? '{"code":0}' : `{"code":2,"message":"${jsonText(s.error)}"}`}}`
  );
}
