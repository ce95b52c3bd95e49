/**
 * Writes a JSON line straight into a byte buffer: constant fragments copied as
 * bytes, strings checked and copied in one pass (JSON.stringify only for those
 * that need escaping), integers and milliseconds written digit by digit. No
 * JavaScript string is built for the line: building the access-log line as a
 * string, then encoding it, cost a few µs a request.
 *
 * The caller makes sure the buffer has room (`room()` gives an upper bound).
 */
const QUOTE = 0x22;
const NULL = Buffer.from('null');

/** Bytes a JSON string of `length` UTF-16 units can take at most (`\uXXXX` escapes, quotes). */
export const jsonStringBound = (length: number): number => 6 * length + 2;

/** A constant fragment, encoded once. */
export const fragment = (text: string): Buffer => Buffer.from(text, 'latin1');

export class JsonLine {
  buf: Buffer;
  pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  /** Constant bytes (see fragment()); chains: `w.raw(KEY).str(value)`. */
  raw(bytes: Buffer): this {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** A JSON string, or null. */
  str(s: string | null): void {
    if (s === null) {
      this.raw(NULL);
      return;
    }
    const buf = this.buf;
    const start = this.pos;
    let p = start + 1;
    buf[start] = QUOTE;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
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

  /** Text that is valid JSON as it is (a number, a literal, an already-encoded value). */
  json(text: string): void {
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** A whole number. */
  int(n: number): void {
    if (!(n >= 0 && n <= 0x7fffffff && Math.floor(n) === n)) return this.json(String(n));
    const buf = this.buf;
    let digits = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
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
    if (!(micros >= 0 && micros <= 0x7fffffff)) return this.json(String(micros / 1000));
    const whole = Math.floor(micros / 1000);
    let frac = micros - whole * 1000;
    this.int(whole);
    if (frac === 0) return;
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
