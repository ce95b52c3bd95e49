/**
 * A streaming JSON tokenizer and validator (RFC 8259) that enforces structural
 * limits while it reads: bytes go in chunk by chunk, nothing is materialised
 * (no values, no strings, except object entry names when duplicates are
 * checked, and every string when a sink asks for them), and the first
 * violation stops it. Memory is O(depth) — bounded by the depth limit —
 * and time is one pass over the bytes, so '['.repeat(100000) costs one
 * comparison at the (limit+1)-th bracket.
 *
 * Lengths of strings and entry names count Unicode characters, not bytes
 * (Kong 3.9+): a UTF-8 sequence and a \uXXXX escape are one, a surrogate pair
 * of escapes is one. The input must be UTF-8.
 *
 * Used by json-threat-protection (limits) and injection-protection (a sink
 * that gets every entry name and string value, duplicates included, in
 * document order: what JSON.parse would hide behind the last duplicate).
 */

/** A limit of -1 (unlimited) is passed as Infinity. */
export interface JsonLimits {
  readonly depth: number;
  readonly arrayElements: number;
  readonly objectEntries: number;
  readonly nameLength: number;
  readonly stringLength: number;
  /** Palisade: characters of a number literal (sign, digits, point, exponent). */
  readonly numberLength: number;
  readonly allowDuplicateNames: boolean;
}

/** No limit at all: a tokenizer that only checks the syntax. */
export const NO_JSON_LIMITS: JsonLimits = {
  depth: Infinity,
  arrayElements: Infinity,
  objectEntries: Infinity,
  nameLength: Infinity,
  stringLength: Infinity,
  numberLength: Infinity,
  allowDuplicateNames: true,
};

/**
 * Gets each entry name (`isName`) and each string value, escapes resolved, in
 * document order. Returning true stops the scan (a `stopped` violation).
 */
export type JsonStringSink = (value: string, isName: boolean) => boolean;

/**
 * What was wrong, at which byte. `policy` violations follow enforcement_mode
 * (Kong: error_status_code / error_message); `invalid` and `utf8` are always
 * refused with 400, as Kong does; `stopped`: the sink asked to stop.
 */
export interface JsonViolation {
  readonly kind: 'policy' | 'invalid' | 'utf8' | 'stopped';
  readonly message: string;
  readonly offset: number;
}

// Kong's messages (the log line says which limit).
const DEPTH = 'The maximum allowed nested depth is exceeded.';
const ENTRIES = 'The maximum number of entries allowed in an object is exceeded.';
const NAME = "The maximum string length allowed in an object's entry name is exceeded.";
const ELEMENTS = 'The maximum number of elements allowed in an array is exceeded.';
const STRING = 'The maximum length allowed for a string value is exceeded.';
const NUMBER = 'The maximum length allowed for a number is exceeded.';
const DUPLICATE = 'Duplicate object entry name.';
const TRAILING = 'Trailing data.';
const INVALID = 'Invalid JSON.';
const NON_UTF8 = 'Non-UTF8 input.';
const STOPPED = 'Stopped by the string sink.';

// Lexer states.
const VALUE = 0; // a value must come (top level, after ':' or after ',' in an array)
const ARRAY_FIRST = 1; // after '[': a value or ']'
const OBJECT_FIRST = 2; // after '{': a name or '}'
const NAME_NEXT = 3; // after ',' in an object: a name
const COLON = 4;
const AFTER = 5; // after a value inside a container: ',' or the closing bracket
const DONE = 6; // the top-level value is complete: only whitespace
const STRING_BODY = 7;
const ESCAPE = 8;
const UNICODE = 9;
const UTF8_TAIL = 10;
const NUMBER_BODY = 11;
const LITERAL = 12;

// Number grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
const N_MINUS = 0;
const N_ZERO = 1;
const N_INT = 2;
const N_DOT = 3;
const N_FRAC = 4;
const N_E = 5;
const N_E_SIGN = 6;
const N_EXP = 7;

const ARRAY = 0;
const OBJECT = 1;

const LITERALS = ['true', 'false', 'null'].map((s) => Buffer.from(s));

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66);
}

function hexValue(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}

export class JsonScanner {
  readonly #limits: JsonLimits;
  readonly #sink: JsonStringSink | null;
  #state = VALUE;
  /** Container kinds and their entry counts, innermost last. */
  readonly #kinds: number[] = [];
  readonly #counts: number[] = [];
  /** Names seen in each open object (only when duplicates are refused). */
  readonly #names: (Set<string> | null)[] = [];
  /** Bytes before the current chunk. */
  #base = 0;
  // String state.
  #inName = false;
  #length = 0;
  #utf8Need = 0;
  #utf8Lo = 0x80;
  #utf8Hi = 0xbf;
  #hexLeft = 0;
  #hex = 0;
  /** #length right after an escaped high surrogate was counted (-1: none): a low one right after it is the same character. */
  #highAt = -1;
  /** Raw bytes of the string being read (entry names for the duplicate check, every string for a sink). */
  #parts: Buffer[] | null = null;
  #partStart = -1;
  // Number and literal state.
  #num = N_MINUS;
  #numLength = 0;
  #literal: Buffer = LITERALS[0]!;
  #literalAt = 0;

  constructor(limits: JsonLimits, sink?: JsonStringSink) {
    this.#limits = limits;
    this.#sink = sink ?? null;
  }

  /** Feed the next chunk; the first violation, or null. Stop feeding after a violation. */
  write(chunk: Buffer): JsonViolation | null {
    const v = this.#scan(chunk);
    this.#base += chunk.length;
    return v;
  }

  /** The body ended: null when it was one complete JSON value. */
  end(): JsonViolation | null {
    const at = this.#base;
    if (this.#state === NUMBER_BODY) {
      if (!this.#numberComplete()) return violation('invalid', INVALID, at);
      this.#valueDone();
    }
    if (this.#state !== DONE) return violation('invalid', INVALID, at);
    return null;
  }

  #scan(buf: Buffer): JsonViolation | null {
    const len = buf.length;
    const lim = this.#limits;
    if (this.#partStart >= 0) this.#partStart = 0;
    for (let i = 0; i < len; i++) {
      const b = buf[i]!;
      switch (this.#state) {
        case STRING_BODY: {
          // Fast path: plain printable ASCII.
          if (b >= 0x20 && b < 0x80 && b !== 0x22 && b !== 0x5c) {
            if (++this.#length > (this.#inName ? lim.nameLength : lim.stringLength)) return this.#tooLong(i);
            continue;
          }
          if (b === 0x22) {
            if (this.#parts !== null) {
              const v = this.#stringEnd(buf, i);
              if (v !== null) return v;
            }
            if (this.#inName) this.#state = COLON;
            else this.#valueDone();
            continue;
          }
          if (b === 0x5c) {
            this.#state = ESCAPE;
            continue;
          }
          if (b < 0x20) return violation('invalid', INVALID, this.#base + i);
          // A UTF-8 lead byte (RFC 3629 table 3-7).
          if (b < 0xc2 || b > 0xf4) return violation('utf8', NON_UTF8, this.#base + i);
          this.#utf8Lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
          this.#utf8Hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
          this.#utf8Need = b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
          this.#state = UTF8_TAIL;
          if (++this.#length > (this.#inName ? lim.nameLength : lim.stringLength)) return this.#tooLong(i);
          continue;
        }
        case UTF8_TAIL:
          if (b < this.#utf8Lo || b > this.#utf8Hi) return violation('utf8', NON_UTF8, this.#base + i);
          this.#utf8Lo = 0x80;
          this.#utf8Hi = 0xbf;
          if (--this.#utf8Need === 0) this.#state = STRING_BODY;
          continue;
        case ESCAPE:
          if (b === 0x75) {
            this.#state = UNICODE;
            this.#hexLeft = 4;
            this.#hex = 0;
            continue;
          }
          // " \ / b f n r t
          if (b !== 0x22 && b !== 0x5c && b !== 0x2f && b !== 0x62 && b !== 0x66 && b !== 0x6e && b !== 0x72 && b !== 0x74) {
            return violation('invalid', INVALID, this.#base + i);
          }
          this.#state = STRING_BODY;
          if (++this.#length > (this.#inName ? lim.nameLength : lim.stringLength)) return this.#tooLong(i);
          continue;
        case UNICODE: {
          if (!isHex(b)) return violation('invalid', INVALID, this.#base + i);
          this.#hex = (this.#hex << 4) | hexValue(b);
          if (--this.#hexLeft > 0) continue;
          this.#state = STRING_BODY;
          const low = this.#hex >= 0xdc00 && this.#hex <= 0xdfff;
          // The low half of an escaped surrogate pair is the same character.
          if (low && this.#highAt === this.#length) {
            this.#highAt = -1;
            continue;
          }
          if (++this.#length > (this.#inName ? lim.nameLength : lim.stringLength)) return this.#tooLong(i);
          if (this.#hex >= 0xd800 && this.#hex <= 0xdbff) this.#highAt = this.#length;
          continue;
        }
        case NUMBER_BODY: {
          const ok = this.#numberByte(b);
          if (ok === 1) {
            if (++this.#numLength > lim.numberLength) return violation('policy', NUMBER, this.#base + i);
            continue;
          }
          if (ok === -1) return violation('invalid', INVALID, this.#base + i);
          // The number ended before this byte: judge the byte in the state after a value.
          this.#valueDone();
          i--;
          continue;
        }
        case LITERAL:
          if (b !== this.#literal[this.#literalAt]) return violation('invalid', INVALID, this.#base + i);
          if (++this.#literalAt === this.#literal.length) this.#valueDone();
          continue;
        default: {
          if (isWhitespace(b)) continue;
          const v = this.#structural(b, buf, i);
          if (v !== null) return v;
        }
      }
    }
    if (this.#partStart >= 0 && this.#parts !== null) this.#parts.push(buf.subarray(this.#partStart));
    return null;
  }

  /** A non-whitespace byte outside strings, numbers and literals. */
  #structural(b: number, buf: Buffer, i: number): JsonViolation | null {
    const at = this.#base + i;
    switch (this.#state) {
      case VALUE:
        return this.#beginValue(b, at);
      case ARRAY_FIRST:
        if (b === 0x5d) return this.#close(ARRAY, at);
        return this.#beginValue(b, at);
      case OBJECT_FIRST:
        if (b === 0x7d) return this.#close(OBJECT, at);
        return this.#beginName(b, buf, i);
      case NAME_NEXT:
        return this.#beginName(b, buf, i);
      case COLON:
        if (b !== 0x3a) return invalidAt(b, at);
        this.#state = VALUE;
        return null;
      case AFTER: {
        const kind = this.#kinds[this.#kinds.length - 1]!;
        if (b === 0x2c) {
          this.#state = kind === ARRAY ? VALUE : NAME_NEXT;
          return null;
        }
        if (b === 0x5d || b === 0x7d) return this.#close(b === 0x5d ? ARRAY : OBJECT, at);
        return invalidAt(b, at);
      }
      default:
        // DONE: something after the top-level value.
        return violation('policy', TRAILING, at);
    }
  }

  #beginValue(b: number, at: number): JsonViolation | null {
    const top = this.#kinds.length - 1;
    if (top >= 0 && this.#kinds[top] === ARRAY && ++this.#counts[top]! > this.#limits.arrayElements) {
      return violation('policy', ELEMENTS, at);
    }
    if (b === 0x7b || b === 0x5b) {
      if (this.#kinds.length + 1 > this.#limits.depth) return violation('policy', DEPTH, at);
      const object = b === 0x7b;
      this.#kinds.push(object ? OBJECT : ARRAY);
      this.#counts.push(0);
      if (!this.#limits.allowDuplicateNames) this.#names.push(object ? new Set() : null);
      this.#state = object ? OBJECT_FIRST : ARRAY_FIRST;
      return null;
    }
    if (b === 0x22) {
      this.#startString(false, at - this.#base + 1);
      return null;
    }
    if (b === 0x2d || (b >= 0x30 && b <= 0x39)) {
      this.#state = NUMBER_BODY;
      this.#num = b === 0x2d ? N_MINUS : b === 0x30 ? N_ZERO : N_INT;
      this.#numLength = 1;
      if (this.#numLength > this.#limits.numberLength) return violation('policy', NUMBER, at);
      return null;
    }
    const lit = b === 0x74 ? LITERALS[0]! : b === 0x66 ? LITERALS[1]! : b === 0x6e ? LITERALS[2]! : null;
    if (lit === null) return invalidAt(b, at);
    this.#state = LITERAL;
    this.#literal = lit;
    this.#literalAt = 1;
    return null;
  }

  #beginName(b: number, buf: Buffer, i: number): JsonViolation | null {
    const at = this.#base + i;
    if (b !== 0x22) return invalidAt(b, at);
    const top = this.#kinds.length - 1;
    if (++this.#counts[top]! > this.#limits.objectEntries) return violation('policy', ENTRIES, at);
    this.#startString(true, i + 1);
    return null;
  }

  /** `from`: index of the string's first byte in the current chunk. */
  #startString(name: boolean, from: number): void {
    this.#state = STRING_BODY;
    this.#inName = name;
    this.#length = 0;
    this.#highAt = -1;
    if (this.#sink !== null || (name && !this.#limits.allowDuplicateNames)) {
      this.#parts = [];
      this.#partStart = from;
    }
  }

  /** The closing quote of a captured string at buf[i]: a duplicate name, the sink's stop, or null. */
  #stringEnd(buf: Buffer, i: number): JsonViolation | null {
    const parts = this.#parts!;
    const last = buf.subarray(this.#partStart, i);
    this.#parts = null;
    this.#partStart = -1;
    const raw = (parts.length === 0 ? last : Buffer.concat([...parts, last])).toString('utf8');
    // Escapes are resolved so that "a" and "\u0061" are the same name; the bytes were validated already.
    const value = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
    if (this.#inName && !this.#limits.allowDuplicateNames) {
      const names = this.#names[this.#names.length - 1]!;
      if (names.has(value)) return violation('policy', DUPLICATE, this.#base + i);
      names.add(value);
    }
    if (this.#sink !== null && this.#sink(value, this.#inName)) return violation('stopped', STOPPED, this.#base + i);
    return null;
  }

  #close(kind: number, at: number): JsonViolation | null {
    const top = this.#kinds.length - 1;
    if (top < 0 || this.#kinds[top] !== kind) return violation('invalid', INVALID, at);
    this.#kinds.pop();
    this.#counts.pop();
    if (!this.#limits.allowDuplicateNames) this.#names.pop();
    this.#valueDone();
    return null;
  }

  #valueDone(): void {
    this.#state = this.#kinds.length === 0 ? DONE : AFTER;
  }

  #tooLong(i: number): JsonViolation {
    return violation('policy', this.#inName ? NAME : STRING, this.#base + i);
  }

  /** 1: the byte belongs to the number; 0: the number ended before it; -1: malformed. */
  #numberByte(b: number): number {
    const digit = b >= 0x30 && b <= 0x39;
    switch (this.#num) {
      case N_MINUS:
        if (!digit) return -1;
        this.#num = b === 0x30 ? N_ZERO : N_INT;
        return 1;
      case N_ZERO:
      case N_INT:
        if (digit) return this.#num === N_INT ? 1 : -1;
        return this.#afterDigits(b);
      case N_DOT:
        if (!digit) return -1;
        this.#num = N_FRAC;
        return 1;
      case N_FRAC:
        if (digit) return 1;
        if ((b | 0x20) === 0x65) {
          this.#num = N_E;
          return 1;
        }
        return 0;
      case N_E:
      case N_E_SIGN:
        if (this.#num === N_E && (b === 0x2b || b === 0x2d)) {
          this.#num = N_E_SIGN;
          return 1;
        }
        if (!digit) return -1;
        this.#num = N_EXP;
        return 1;
      default:
        return digit ? 1 : 0;
    }
  }

  #afterDigits(b: number): number {
    if (b === 0x2e) {
      this.#num = N_DOT;
      return 1;
    }
    if ((b | 0x20) === 0x65) {
      this.#num = N_E;
      return 1;
    }
    return 0;
  }

  #numberComplete(): boolean {
    const n = this.#num;
    return n === N_ZERO || n === N_INT || n === N_FRAC || n === N_EXP;
  }
}

function violation(kind: JsonViolation['kind'], message: string, offset: number): JsonViolation {
  return { kind, message, offset };
}

/** A byte that cannot start what is expected: not UTF-8 at all, or not JSON. */
function invalidAt(b: number, at: number): JsonViolation {
  return b >= 0x80 && (b < 0xc2 || b > 0xf4) ? violation('utf8', NON_UTF8, at) : violation('invalid', INVALID, at);
}
