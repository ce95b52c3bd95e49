/**
 * OTLP JSON written straight into bytes (a JsonLine: the exporter's
 * LogArena writer), with no span, attribute or string built on the way:
 * attribute keys are constant fragments encoded once, ids are already hex,
 * times are written as decimal nanoseconds digit by digit. The output is
 * opentelemetry-proto's JSON mapping, the same as JSON.stringify of the
 * equivalent object (same field order).
 */
import { fragment, type JsonLine } from '../../pdk/index.ts';

export type AttrValue = string | number | boolean;

const QUOTE = 0x22;
const COMMA = 0x2c;

/** An attribute key: the fragments that open its value, each with the comma before it and without (`first`). */
export interface AttrKey {
  readonly key: string;
  readonly str: Buffer;
  readonly int: Buffer;
  readonly firstStr: Buffer;
  readonly firstInt: Buffer;
}

export function attrKey(key: string): AttrKey {
  const open = `{"key":${JSON.stringify(key)},"value":{`;
  const str = fragment(`,${open}"stringValue":`);
  const int = fragment(`,${open}"intValue":"`);
  return { key, str, int, firstStr: str.subarray(1), firstInt: int.subarray(1) };
}

/** One attribute as OTLP JSON text: string, bool, int (as a decimal string) or double. */
function attributeJson(key: string, v: AttrValue): string {
  const open = `{"key":${JSON.stringify(key)},"value":{`;
  if (typeof v === 'string') return `${open}"stringValue":${JSON.stringify(v)}}}`;
  if (typeof v === 'boolean') return `${open}"boolValue":${v}}}`;
  if (Number.isInteger(v)) return `${open}"intValue":"${v}"}}`;
  return `${open}"doubleValue":${Number.isFinite(v) ? String(v) : 'null'}}}`;
}

/** A map of attributes as an OTLP JSON array (resource attributes: written once). */
export function attributes(attrs: Readonly<Record<string, AttrValue>>): string {
  return `[${Object.entries(attrs).map(([key, v]) => attributeJson(key, v)).join(',')}]`;
}

const F = {
  end: fragment('}}'),
  endInt: fragment('"}}'),
  traceId: fragment('{"traceId":'),
  spanId: fragment(',"spanId":'),
  parent: fragment(',"parentSpanId":'),
  traceState: fragment(',"traceState":'),
  name: fragment(',"name":'),
  kind: fragment(',"kind":'),
  start: fragment(',"startTimeUnixNano":'),
  endTime: fragment(',"endTimeUnixNano":'),
  attributes: fragment(',"attributes":['),
  events: fragment('],"events":['),
  status: fragment('],"status":'),
  unset: fragment('{"code":0}}'),
  error: fragment('{"code":2,"message":'),
  eventTime: fragment('{"timeUnixNano":'),
  eventName: fragment(',"name":"palisade.decision","attributes":['),
  eventEnd: fragment(']}'),
};

/** A string attribute (`first`: the first of its list, no comma before it). */
export function strAttr(w: JsonLine, k: AttrKey, v: string, first = false): void {
  w.raw(first ? k.firstStr : k.str).str(v);
  w.raw(F.end);
}

/** An integer attribute, written as a decimal string (OTLP JSON's int64); other numbers as doubleValue. */
export function intAttr(w: JsonLine, k: AttrKey, v: number, first = false): void {
  if (!Number.isInteger(v)) {
    if (!first) w.byte(COMMA);
    w.json(attributeJson(k.key, v));
    return;
  }
  w.raw(first ? k.firstInt : k.int).int(v);
  w.raw(F.endInt);
}

/** ms since the epoch (fractional) → nanoseconds as a quoted decimal string (no float precision lost on the ms part). */
export function nanos(w: JsonLine, ms: number): void {
  let whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac >= 1e6) {
    whole += 1;
    frac = 0;
  }
  w.byte(QUOTE);
  w.int(whole);
  w.need(7);
  const buf = w.buf;
  for (let i = w.pos + 5; i >= w.pos; i--) {
    buf[i] = 0x30 + (frac % 10);
    frac = Math.floor(frac / 10);
  }
  w.pos += 6;
  buf[w.pos++] = QUOTE;
}

/**
 * Opens one span, up to its attribute list: `{"traceId":…,"attributes":[`.
 * The caller then writes the attributes (the first with `first`), the
 * events if any (openEvents(), openEvent()/closeEvent() each), and closes the
 * span with closeSpan().
 */
export function openSpan(
  w: JsonLine, traceId: string, spanId: string, parentSpanId: string, traceState: string | null, name: string, kind: number, startMs: number, endMs: number,
): void {
  w.raw(F.traceId).str(traceId);
  w.raw(F.spanId).str(spanId);
  if (parentSpanId !== '') w.raw(F.parent).str(parentSpanId);
  if (traceState !== null) w.raw(F.traceState).str(traceState);
  w.raw(F.name).str(name);
  w.raw(F.kind).int(kind);
  nanos(w.raw(F.start), startMs);
  nanos(w.raw(F.endTime), endMs);
  w.raw(F.attributes);
}

/** Ends the span's attributes and starts its events. */
export function openEvents(w: JsonLine): void {
  w.raw(F.events);
}

/** Opens one event (a security decision) up to its attribute list; close it with closeEvent(). */
export function openEvent(w: JsonLine, timeMs: number, first: boolean): void {
  if (!first) w.byte(COMMA);
  nanos(w.raw(F.eventTime), timeMs);
  w.raw(F.eventName);
}

export function closeEvent(w: JsonLine): void {
  w.raw(F.eventEnd);
}

/** Ends the span (its attribute or event list): its status, unset or failed with `error` as the message. */
export function closeSpan(w: JsonLine, error: string | null): void {
  w.raw(F.status);
  if (error === null) {
    w.raw(F.unset);
    return;
  }
  w.raw(F.error).str(error);
  w.raw(F.end);
}
