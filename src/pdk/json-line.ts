/**
 * JSON lines built as ASCII strings.
 *
 * A line (an access-log line, a log record, an OTLP span) is one template
 * literal over constant text, each value escaped by jsonText() (a string
 * that needs nothing is used as it is), and is copied into its buffer with
 * one native latin1 write (the access log's batch, a LogArena). Under
 * callgrind this cost about half the instructions of writing the same line
 * byte by byte in JavaScript (docs/architecture.md, hot-path lessons).
 * Characters outside ASCII are written as \u escapes: the same JSON, and a
 * copy that needs no encoding.
 */
const charCodeAt = String.prototype.charCodeAt;
/** What JSON.stringify escapes, and what is not ASCII. */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\u0080-\uffff]/;
/** What JSON.stringify leaves as it is but is not ASCII. */
const NON_ASCII = /[\u0080-\uffff]/g;
const unicodeEscape = (c: string): string => `\\u${charCodeAt.call(c, 0).toString(16).padStart(4, '0')}`;

/** JSON text with its characters outside ASCII written as \u escapes (the same JSON). */
export const asciiJson = (json: string): string => json.replace(NON_ASCII, unicodeEscape);

/**
 * A string's JSON text without the quotes, in ASCII: what JSON.stringify
 * writes between them, characters outside ASCII as \u escapes. A string that
 * needs nothing (most) is returned as it is.
 */
export function jsonText(s: string): string {
  // A regular expression beats a loop over the characters, even for short strings (callgrind).
  return NEEDS_ESCAPE.test(s) ? asciiJson(JSON.stringify(s)).slice(1, -1) : s;
}

/** `"<jsonText(s)>"`, or `null`. */
export const jsonOrNull = (s: string | null): string => (s === null ? 'null' : `"${jsonText(s)}"`);

/** The text of each thousandth of a millisecond: '.001' … '.999', trailing zeros cut ('' for 0). */
const FRACTION = Array.from({ length: 1000 }, (_, i) => (i === 0 ? '' : `.${String(i).padStart(3, '0').replace(/0+$/, '')}`));

/** Milliseconds rounded to the microsecond, as text: String(Math.round(ms * 1000) / 1000). */
export function msText(ms: number): string {
  const micros = Math.round(ms * 1000);
  if (!(micros >= 0 && micros <= 0x7fffffff)) return Number.isFinite(micros) ? String(micros / 1000) : 'null';
  const whole = Math.floor(micros / 1000);
  return `${whole}${FRACTION[micros - whole * 1000]!}`;
}

/** A constant fragment, encoded once. */
export const fragment = (text: string): Buffer => Buffer.from(text, 'latin1');
