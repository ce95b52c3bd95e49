/**
 * Trace context propagation: extract the parent from W3C Trace Context
 * (traceparent/tracestate), B3 multi-header and B3 single-header; inject the
 * gateway's context upstream in the configured formats. Ids are lower-case
 * hex: trace ids 32 digits, span ids 16.
 */
import { randomFillSync } from 'node:crypto';
import type { PdkContext } from '../../pdk/index.ts';

export type Format = 'w3c' | 'b3' | 'b3-single';

/** What an incoming request carried. */
export interface Extracted {
  readonly format: Format;
  readonly traceId: string;
  /** The caller's span (our root span's parent), or null (B3 sampling-only header). */
  readonly parentId: string | null;
  /** The caller's sampling decision, or null when it made none. */
  readonly sampled: boolean | null;
  readonly tracestate: string | null;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const HEX = /^[0-9a-f]+$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

/** W3C Trace Context §3.3: at most 32 list members; Palisade keeps a tracestate of at most 512 characters (what §3.3.1.5 asks vendors to propagate). */
const TRACESTATE_MEMBERS = 32;
const TRACESTATE_CHARS = 512;
/** §3.3.1.3.1: simple-key, or tenant-id@system-id. */
const TRACESTATE_KEY = /^(?:[a-z][a-z0-9_*/-]{0,255}|[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13})$/;
/** §3.3.1.3.2: printable ASCII without ',' and '=', spaces allowed inside, not at the end. */
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * The incoming tracestate (several headers are one list, joined by ','),
 * validated per W3C Trace Context §3.3: null when absent or invalid (too
 * long, more than 32 members, a bad key or value, a duplicate key) — it is
 * then dropped, the traceparent is kept (§3.3.1.1). Empty members are removed.
 */
export function parseTracestate(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const raw = Array.isArray(header) ? header.join(',') : header;
  if (raw.length > TRACESTATE_CHARS) return null;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const part of raw.split(',')) {
    const member = part.replace(/^[ \t]+|[ \t]+$/g, '');
    if (member === '') continue;
    const eq = member.indexOf('=');
    if (eq < 0) return null;
    const key = member.slice(0, eq);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(eq + 1)) || keys.has(key)) return null;
    keys.add(key);
    members.push(member);
    if (members.length > TRACESTATE_MEMBERS) return null;
  }
  return members.length === 0 ? null : members.join(',');
}

/** W3C Trace Context §3.2: invalid or all-zero ids are ignored (a new trace starts). */
function w3c(ctx: PdkContext): Extracted | null {
  const tp = ctx.request.header('traceparent');
  if (tp === undefined) return null;
  const m = TRACEPARENT.exec(tp.trim());
  if (m === null || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return null;
  if (m[2] === ZERO32 || m[3] === ZERO16) return null;
  const tracestate = parseTracestate(ctx.request.headers.tracestate);
  return { format: 'w3c', traceId: m[2]!, parentId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1, tracestate };
}

/** B3 trace ids may be 64-bit: left-padded to 128 bits. */
const traceId128 = (id: string) => (id.length === 16 ? ZERO16 + id : id);
const validTrace = (id: string | undefined): id is string => id !== undefined && (id.length === 16 || id.length === 32) && HEX.test(id) && /[1-9a-f]/.test(id);
const validSpan = (id: string | undefined): id is string => id !== undefined && id.length === 16 && HEX.test(id) && id !== ZERO16;

function b3Sampled(s: string | undefined, flags?: string): boolean | null {
  if (flags === '1' || s === 'd') return true;
  if (s === '1' || s === 'true') return true;
  if (s === '0' || s === 'false') return false;
  return null;
}

function b3(ctx: PdkContext): Extracted | null {
  const h = (n: string) => ctx.request.header(n)?.trim().toLowerCase();
  const trace = h('x-b3-traceid');
  const span = h('x-b3-spanid');
  if (!validTrace(trace) || !validSpan(span)) return null;
  return { format: 'b3', traceId: traceId128(trace), parentId: span, sampled: b3Sampled(h('x-b3-sampled'), h('x-b3-flags')), tracestate: null };
}

function b3Single(ctx: PdkContext): Extracted | null {
  const v = ctx.request.header('b3')?.trim().toLowerCase();
  if (v === undefined) return null;
  const [trace, span, sampling] = v.split('-');
  if (!validTrace(trace) || !validSpan(span)) return null; // a sampling-only "b3: 0" starts a new trace
  return { format: 'b3-single', traceId: traceId128(trace), parentId: span, sampled: b3Sampled(sampling), tracestate: null };
}

const EXTRACTORS: Record<Format, (ctx: PdkContext) => Extracted | null> = { w3c, b3, 'b3-single': b3Single };

/** The first format found, in the configured order. */
export function extract(ctx: PdkContext, formats: readonly Format[]): Extracted | null {
  for (const f of formats) {
    const e = EXTRACTORS[f](ctx);
    if (e !== null) return e;
  }
  return null;
}

/** The context sent upstream: our trace, the span that calls the upstream, the decision. */
export interface Outgoing {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentId: string;
  readonly sampled: boolean;
  readonly tracestate: string | null;
}

export function inject(ctx: PdkContext, format: Format, o: Outgoing): void {
  const req = ctx.request;
  if (format === 'w3c') {
    req.setHeader('traceparent', `00-${o.traceId}-${o.spanId}-${o.sampled ? '01' : '00'}`);
    // The caller's tracestate goes with our traceparent only when it was valid (and of the trace it continues).
    if (o.tracestate !== null) req.setHeader('tracestate', o.tracestate);
    else req.removeHeader('tracestate');
  } else if (format === 'b3') {
    req.setHeader('x-b3-traceid', o.traceId);
    req.setHeader('x-b3-spanid', o.spanId);
    req.setHeader('x-b3-parentspanid', o.parentId);
    req.setHeader('x-b3-sampled', o.sampled ? '1' : '0');
  } else {
    req.setHeader('b3', `${o.traceId}-${o.spanId}-${o.sampled ? '1' : '0'}-${o.parentId}`);
  }
}

/** Random ids from a pooled buffer (one randomFillSync per 256 ids). */
const pool = Buffer.alloc(2048);
const ZEROS: Record<number, string> = { 8: '0'.repeat(16), 16: '0'.repeat(32) };
let offset = pool.length;
function hex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return s === ZEROS[bytes] ? hex(bytes) : s;
}
export const newSpanId = () => hex(8);
/** A new trace's ids: the trace id, the root span's and the client span's, from one draw. */
export function newIds(): { traceId: string; rootId: string; clientId: string } {
  const s = hex(32);
  const traceId = s.slice(0, 32);
  const rootId = s.slice(32, 48);
  const clientId = s.slice(48);
  return traceId === ZEROS[16] || rootId === ZEROS[8] || clientId === ZEROS[8] ? newIds() : { traceId, rootId, clientId };
}

/** TraceIdRatioBased: sampled when the trace id's last 52 bits fall below rate × 2^52 (the same decision on every node). */
export function sampledByRatio(traceId: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  return parseInt(traceId.slice(19), 16) < rate * 2 ** 52;
}
