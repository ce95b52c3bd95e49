/**
 * OTLP JSON written straight to strings (no intermediate span or attribute
 * objects, no JSON.stringify of nested objects): attribute keys are constant
 * fragments built once, ids are already hex, times are decimal nanosecond
 * strings. The output is opentelemetry-proto's JSON mapping, the same as
 * JSON.stringify of the equivalent object (same field order).
 */
export type AttrValue = string | number | boolean;

const str = JSON.stringify as (s: string) => string;

/** The last whole millisecond written and its text: a request's spans share a few (the epoch ms is not a small integer, its text is slow to make). */
let lastWhole = Number.NaN;
let lastWholeText = '';

/** ms since the epoch (fractional) → nanoseconds as a decimal string (no float precision lost on the ms part). */
export function nanos(ms: number): string {
  let whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac >= 1e6) {
    whole += 1;
    frac = 0;
  }
  if (whole !== lastWhole) {
    lastWhole = whole;
    lastWholeText = String(whole);
  }
  return frac === 0 ? `${lastWholeText}000000` : lastWholeText + String(1e6 + frac).slice(1);
}

/** The opening of an attribute with this key, up to the value's type: `{"key":"…","value":{`. */
export const attrKey = (key: string): string => `{"key":${str(key)},"value":{`;

/** An attribute (`prefix` from attrKey) in OTLP JSON: string, bool, int (as a decimal string) or double. */
export function attr(prefix: string, v: AttrValue): string {
  if (typeof v === 'string') return `${prefix}"stringValue":${str(v)}}}`;
  if (typeof v === 'boolean') return `${prefix}"boolValue":${v}}}`;
  if (Number.isInteger(v)) return `${prefix}"intValue":"${v}"}}`;
  return `${prefix}"doubleValue":${Number.isFinite(v) ? String(v) : 'null'}}}`;
}

export const strAttr = (prefix: string, v: string): string => `${prefix}"stringValue":${str(v)}}}`;
export const intAttr = (prefix: string, v: number): string => (Number.isInteger(v) ? `${prefix}"intValue":"${v}"}}` : attr(prefix, v));

/** A map of attributes as an OTLP JSON array. */
export function attributes(attrs: Readonly<Record<string, AttrValue>>): string {
  let out = '';
  for (const key in attrs) out += (out === '' ? '' : ',') + attr(attrKey(key), attrs[key]!);
  return `[${out}]`;
}

/** A status object: unset, or error with a message. */
export const STATUS_UNSET = '{"code":0}';
export const errorStatus = (message: string): string => `{"code":2,"message":${str(message)}}`;

/**
 * One span in OTLP JSON. `attrs` and `events` are already-encoded JSON arrays
 * (without brackets: comma-separated items; '' for none).
 */
export function spanJson(
  traceId: string, spanId: string, parentSpanId: string, traceState: string | null, name: string, kind: number,
  startNanos: string, endNanos: string, attrs: string, events: string, status: string,
): string {
  return (
    `{"traceId":"${traceId}","spanId":"${spanId}"` +
    (parentSpanId === '' ? '' : `,"parentSpanId":"${parentSpanId}"`) +
    (traceState === null ? '' : `,"traceState":${str(traceState)}`) +
    `,"name":${str(name)},"kind":${kind},"startTimeUnixNano":"${startNanos}","endTimeUnixNano":"${endNanos}","attributes":[${attrs}]` +
    (events === '' ? '' : `,"events":[${events}]`) +
    `,"status":${status}}`
  );
}
