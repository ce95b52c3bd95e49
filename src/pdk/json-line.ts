/**
 * Writes a JSON line straight into a byte buffer: constant fragments copied as
 * bytes, strings checked and copied in one pass (JSON.stringify only for those
 * that need escaping), integers and milliseconds written digit by digit. No
 * JavaScript string is built for the line: building the access-log line as a
 * string, then encoding it, cost a few µs a request.
 *
 * Each write makes room for itself first (`need`): by default the buffer is
 * replaced by a larger copy; a writer that owns its buffers (the log arena,
 * the access log's batches) brings its own `grow`.
 */
const QUOTE = 0x22;
const NULL = Buffer.from('null');
/**
 * Called as charCodeAt.call(s, i): `s.charCodeAt` would load the method from the string,
 * a megamorphic load (the strings written come in many representations) for each character.
 */
const charCodeAt = String.prototype.charCodeAt;
/** Strings longer than this are checked with NEEDS_ESCAPE and copied natively; shorter ones char by char. */
const LONG = 48;
/** What JSON.stringify escapes, and what is not one byte in UTF-8. */
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\u007f-\uffff]/;

/** What JSON.stringify leaves as it is but is not ASCII. */
const NON_ASCII = /[\u0080-\uffff]/g;
const unicodeEscape = (c: string): string => `\\u${charCodeAt.call(c, 0).toString(16).padStart(4, '0')}`;

/**
 * A string's JSON text without the quotes, ASCII only: what JSON.stringify
 * writes between them, with characters outside ASCII as \u escapes (the same
 * JSON). For text built as a string and written with JsonLine.ascii().
 * Plain strings (most) are returned as they are.
 */
export function jsonText(s: string): string {
  // The regular expression beats a loop over the characters, even for short strings (callgrind).
  return NEEDS_ESCAPE.test(s) ? asciiJson(JSON.stringify(s)).slice(1, -1) : s;
}

/** JSON text with its characters outside ASCII written as \u escapes (the same JSON). */
export const asciiJson = (json: string): string => json.replace(NON_ASCII, unicodeEscape);

/** `"<jsonText(s)>"`, or `null`. */
export const jsonOrNull = (s: string | null): string => (s === null ? 'null' : `"${jsonText(s)}"`);

/** Text of 1000 fractions of a millisecond: '.001' … '.999', trailing zeros cut ('' for 0). */
const FRACTION = Array.from({ length: 1000 }, (_, i) => (i === 0 ? '' : `.${String(i).padStart(3, '0').replace(/0+$/, '')}`));

/** Milliseconds rounded to the microsecond as text: String(Math.round(ms * 1000) / 1000), as JsonLine.ms() writes them. */
export function msText(ms: number): string {
  const micros = Math.round(ms * 1000);
  if (!(micros >= 0 && micros <= 0x7fffffff)) return Number.isFinite(micros) ? String(micros / 1000) : 'null';
  const whole = Math.floor(micros / 1000);
  return `${whole}${FRACTION[micros - whole * 1000]!}`;
}

/** Bytes a JSON string of `length` UTF-16 units can take at most (`\uXXXX` escapes, quotes). */
export const jsonStringBound = (length: number): number => 6 * length + 2;

/** A constant fragment, encoded once. */
export const fragment = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Called when `n` more bytes do not fit: afterwards w.buf[w.pos, w.pos + n) must be writable. */
export type Grow = (w: JsonLine, n: number) => void;

/** The default: the buffer is replaced by a larger copy. */
const growCopy: Grow = (w, n) => {
  const bigger = Buffer.allocUnsafe(Math.max(2 * w.buf.length, w.pos + n));
  w.buf.copy(bigger, 0, 0, w.pos);
  w.buf = bigger;
};

/**
 * One class for every writer: the access log, the log record and the OTLP
 * spans call the same methods. A writer that owns its buffers passes a `grow`
 * hook instead of subclassing, so every call site sees one shape.
 */
export class JsonLine {
  buf: Buffer;
  pos = 0;
  /** Where buf[0] is in everything written (moveTo() keeps it). */
  base = 0;
  readonly #grow: Grow;

  constructor(buf: Buffer, grow: Grow = growCopy) {
    this.buf = buf;
    this.#grow = grow;
  }

  /** The current position, valid across growth (for rewind()). */
  mark(): number {
    return this.base + this.pos;
  }

  /** Back to a mark(): what was written since is dropped. */
  rewind(mark: number): void {
    this.pos = mark - this.base;
  }

  /**
   * Carry on in `next` (for a grow hook that owns its buffers): what was written from `from` on moves to its
   * start, and marks stay valid. `from` = pos moves nothing (a fresh buffer after handing the old one over).
   */
  moveTo(next: Buffer, from: number): void {
    this.buf.copy(next, 0, from, this.pos);
    this.base += from;
    this.pos -= from;
    this.buf = next;
  }

  /** Make room for `n` more bytes. */
  need(n: number): void {
    if (this.pos + n > this.buf.length) this.#grow(this, n);
  }

  /** Constant bytes (see fragment()); chains: `w.raw(KEY).str(value)`. */
  raw(bytes: Buffer): this {
    const n = bytes.length;
    this.need(n);
    if (n > 32) this.buf.set(bytes, this.pos);
    else {
      // Short fragments (most): a loop beats the native call.
      const buf = this.buf;
      const p = this.pos;
      for (let i = 0; i < n; i++) buf[p + i] = bytes[i]!;
    }
    this.pos += n;
    return this;
  }

  /** One byte (a structural character). */
  byte(c: number): void {
    this.need(1);
    this.buf[this.pos++] = c;
  }

  /** A JSON string, or null. */
  str(s: string | null): void {
    if (s === null) {
      this.raw(NULL);
      return;
    }
    // Read once: the strings written here come in many representations, so `s.length` is a
    // megamorphic load (a stub-cache probe); in the loop's condition it cost one per character.
    const n = s.length;
    if (n > LONG && !NEEDS_ESCAPE.test(s)) {
      // Long and plain (tokens, user agents): checked by the regular expression engine, copied natively.
      this.need(n + 2);
      const buf = this.buf;
      const start = this.pos;
      buf[start] = QUOTE;
      const p = start + 1 + buf.write(s, start + 1, 'latin1');
      buf[p] = QUOTE;
      this.pos = p + 1;
      return;
    }
    this.need(jsonStringBound(n));
    const buf = this.buf;
    const start = this.pos;
    let p = start + 1;
    buf[start] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = charCodeAt.call(s, i);
      if (c < 0x20 || c === QUOTE || c === 0x5c || c > 0x7e) {
        // Needs escaping or UTF-8 encoding: write it again from the start, the slow way.
        this.pos = start + buf.write(JSON.stringify(s), start, 'utf8');
        return;
      }
      buf[p++] = c;
    }
    buf[p++] = QUOTE;
    this.pos = p;
  }

  /** ASCII text (built with jsonText()), copied natively: one call for a whole entry. */
  ascii(text: string): void {
    const n = text.length;
    this.need(n);
    this.pos += this.buf.write(text, this.pos, n, 'latin1');
  }

  /** Text that is valid JSON as it is (a number, a literal, an already-encoded value). */
  json(text: string): void {
    this.need(3 * text.length);
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** A number, written as String(n) would be (whole numbers digit by digit). */
  int(n: number): void {
    if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER && Math.floor(n) === n)) return this.json(String(n));
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
    this.need(digits);
    const buf = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    let v = n;
    do {
      buf[--p] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }

  /** Milliseconds rounded to the microsecond, written as String(Math.round(ms * 1000) / 1000) would be. */
  ms(ms: number): void {
    const micros = Math.round(ms * 1000);
    if (!(micros >= 0 && micros <= 0x7fffffff)) return this.json(Number.isFinite(micros) ? String(micros / 1000) : 'null');
    const whole = Math.floor(micros / 1000);
    let frac = micros - whole * 1000;
    this.int(whole);
    if (frac === 0) return;
    this.need(4);
    const buf = this.buf;
    buf[this.pos++] = 0x2e; // '.'
    let digits = 3;
    while (frac % 10 === 0) {
      frac /= 10;
      digits--;
    }
    for (let i = digits - 1; i >= 0; i--) {
      buf[this.pos + i] = 0x30 + (frac % 10);
      frac = Math.floor(frac / 10);
    }
    this.pos += digits;
  }
}
