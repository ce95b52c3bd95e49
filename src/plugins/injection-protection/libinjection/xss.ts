/**
 * XSS detection: a line-by-line TypeScript port of libinjection's
 * libinjection_xss.c (libinjection 3.x as bundled with ModSecurity 3.0.9).
 * Copyright (c) 2012-2016 Nick Galbreath, BSD-3-Clause: see ./LICENSE.
 * Works on one code unit per byte, like the C code.
 */
import {
  ATTR_NAME, ATTR_VALUE, DATA_STATE, DOCTYPE, H5State, TAG_COMMENT, TAG_NAME_OPEN, VALUE_BACK_QUOTE, VALUE_DOUBLE_QUOTE,
  VALUE_NO_QUOTE, VALUE_SINGLE_QUOTE,
} from './html5.ts';

const A_NONE = 0;
const A_BLACK = 1;
const A_URL = 2;
const A_STYLE = 3;
const A_INDIRECT = 4;

const BLACK_ATTR: [string, number][] = [
  ['ACTION', A_URL], ['ATTRIBUTENAME', A_INDIRECT], ['BY', A_URL], ['BACKGROUND', A_URL], ['DATAFORMATAS', A_BLACK],
  ['DATASRC', A_BLACK], ['DYNSRC', A_URL], ['FILTER', A_STYLE], ['FORMACTION', A_URL], ['FOLDER', A_URL], ['FROM', A_URL],
  ['HANDLER', A_URL], ['HREF', A_URL], ['LOWSRC', A_URL], ['POSTER', A_URL], ['SRC', A_URL], ['STYLE', A_STYLE], ['TO', A_URL],
  ['VALUES', A_URL], ['XLINK:HREF', A_URL],
];

const BLACK_TAG = [
  'APPLET', 'BASE', 'COMMENT', 'EMBED', 'FRAME', 'FRAMESET', 'HANDLER', 'IFRAME', 'IMPORT', 'ISINDEX', 'LINK', 'LISTENER', 'META',
  'NOSCRIPT', 'OBJECT', 'SCRIPT', 'STYLE', 'VMLFRAME', 'XML', 'XSS',
];

/** C cstrcasecmp_with_null: s[from, from+n) equals the upper-case `a`, ignoring NULs in s. 0 = equal. */
function cmpWithNull(a: string, s: string, from: number, n: number): number {
  let ai = 0;
  for (let i = 0; i < n; i++) {
    let cb = s.charCodeAt(from + i);
    if (cb === 0) continue;
    const ca = ai < a.length ? a.charCodeAt(ai) : 0;
    ai++;
    if (cb >= 97 && cb <= 122) cb -= 0x20;
    if (ca !== cb) return 1;
  }
  return ai >= a.length ? 0 : 1;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return 256;
}

let consumed = 0;

/** C html_decode_char_at: decodes one (numeric-entity) character at `i`; sets `consumed`. Reads past `len` as C does. */
function htmlDecodeCharAt(s: string, i: number, len: number): number {
  const at = (k: number) => (i + k < s.length ? s.charCodeAt(i + k) : 0);
  if (len === 0) {
    consumed = 0;
    return -1;
  }
  consumed = 1;
  if (at(0) !== 38 /* & */ || len < 2) return at(0);
  if (at(1) !== 35 /* # */) return 38;
  let val: number;
  let k: number;
  if (at(2) === 120 || at(2) === 88 /* x X */) {
    let ch = hexVal(at(3));
    if (ch === 256) return 38;
    val = ch;
    k = 4;
    while (k < len) {
      ch = at(k);
      if (ch === 59 /* ; */) {
        consumed = k + 1;
        return val;
      }
      ch = hexVal(ch);
      if (ch === 256) {
        consumed = k;
        return val;
      }
      val = val * 16 + ch;
      if (val > 0x1000ff) return 38;
      ++k;
    }
    consumed = k;
    return val;
  }
  k = 2;
  let ch = at(k);
  if (ch < 48 || ch > 57) return 38;
  val = ch - 48;
  k += 1;
  while (k < len) {
    ch = at(k);
    if (ch === 59) {
      consumed = k + 1;
      return val;
    }
    if (ch < 48 || ch > 57) {
      consumed = k;
      return val;
    }
    val = val * 10 + (ch - 48);
    if (val > 0x1000ff) return 38;
    ++k;
  }
  consumed = k;
  return val;
}

/**
 * Does the HTML-encoded s[from, from+n) start with the upper-case `a`
 * (case-insensitive, leading blanks and controls ignored)? Palisade change:
 * the C library ignores NUL and LF inside the word; browsers also remove tab
 * and CR from a URL (WHATWG URL parser), so "jav&#x09;ascript:" and
 * "ja&#13;vascript:" are javascript: URLs too.
 */
function htmlencodeStartsWith(a: string, s: string, from: number, n: number): boolean {
  let ai = 0;
  let first = true;
  let b = from;
  while (n > 0) {
    if (ai >= a.length) return true;
    let cb = htmlDecodeCharAt(s, b, n);
    b += consumed;
    n -= consumed;
    if (first && cb <= 32) continue;
    first = false;
    if (cb === 0 || cb === 9 || cb === 10 || cb === 13) continue;
    if (cb >= 97 && cb <= 122) cb -= 0x20;
    // C compares with (char) cb: only the low byte counts.
    if (a.charCodeAt(ai) !== (cb & 0xff)) return false;
    ai++;
  }
  return ai >= a.length;
}

/** Characters of s[from, from+n) other than NUL: the only length a name can equal (cmpWithNull skips NULs). */
function visibleLength(s: string, from: number, n: number): number {
  let v = n;
  for (let i = 0; i < n; i++) if (s.charCodeAt(from + i) === 0) v--;
  return v;
}

function isBlackTag(s: string, from: number, len: number): boolean {
  if (len < 3) return false;
  const visible = visibleLength(s, from, len);
  for (const tag of BLACK_TAG) if (tag.length === visible && cmpWithNull(tag, s, from, len) === 0) return true;
  const p = s.substr(from, 3).toUpperCase();
  return p === 'SVG' || p === 'XSL';
}

function isBlackAttr(s: string, from: number, len: number): number {
  if (len < 2) return A_NONE;
  if (len >= 5) {
    const c0 = s[from];
    const c1 = s[from + 1];
    if ((c0 === 'o' || c0 === 'O') && (c1 === 'n' || c1 === 'N')) return A_BLACK;
    if (cmpWithNull('XMLNS', s, from, 5) === 0 || cmpWithNull('XLINK', s, from, 5) === 0) return A_BLACK;
  }
  const visible = visibleLength(s, from, len);
  for (let i = 0; i < BLACK_ATTR.length; i++) {
    const [name, type] = BLACK_ATTR[i]!;
    if (name.length === visible && cmpWithNull(name, s, from, len) === 0) return type;
  }
  return A_NONE;
}

function isBlackUrl(s: string, from: number, len: number): boolean {
  // Skip blanks, controls and high bytes (C's signed char).
  while (len > 0) {
    const c = s.charCodeAt(from);
    if (c > 32 && c < 127) break;
    from++;
    len--;
  }
  return (
    htmlencodeStartsWith('DATA', s, from, len) ||
    htmlencodeStartsWith('VIEW-SOURCE', s, from, len) ||
    htmlencodeStartsWith('JAVA', s, from, len) ||
    htmlencodeStartsWith('VBSCRIPT', s, from, len) ||
    // Palisade: Netscape's names for JavaScript URLs.
    htmlencodeStartsWith('LIVESCRIPT', s, from, len) ||
    htmlencodeStartsWith('MOCHA:', s, from, len)
  );
}

/** CSS that runs script or hides what it says: expression(), javascript:/vbscript: URLs, behaviors, bindings, imports, escapes, entities. */
const ACTIVE_CSS = /expression\s*\(|(?:java|vb)script\s*:|behaviou?r\s*:|-moz-binding|@import|\\[0-9a-f]|&#|\/\*/i;

const h5 = new H5State();

/** libinjection_is_xss: tokenizes from one initial state and looks for dangerous tags, attributes and URLs. */
function isXssFrom(s: string, flags: number): boolean {
  let attr = A_NONE;
  h5.init(s, flags);
  while (h5.next()) {
    const type = h5.tokenType;
    const start = h5.tokenStart;
    const len = h5.tokenLen;
    if (type !== ATTR_VALUE) attr = A_NONE;
    if (type === DOCTYPE) return true;
    if (type === TAG_NAME_OPEN) {
      if (isBlackTag(s, start, len)) return true;
    } else if (type === ATTR_NAME) {
      attr = isBlackAttr(s, start, len);
    } else if (type === ATTR_VALUE) {
      if (attr === A_BLACK) return true;
      // Palisade change: libinjection flags every style attribute; only CSS that can run code counts here.
      if (attr === A_STYLE && ACTIVE_CSS.test(s.substr(start, len))) return true;
      if (attr === A_URL && isBlackUrl(s, start, len)) return true;
      if (attr === A_INDIRECT && isBlackAttr(s, start, len) !== A_NONE) return true;
      attr = A_NONE;
    } else if (type === TAG_COMMENT) {
      const text = s.substr(start, len);
      // IE treats "`" as a tag end
      if (text.includes('`')) return true;
      if (len > 3) {
        const head = text.slice(0, 3).toUpperCase();
        // IE conditional comment, XML processing instruction
        if ((text[0] === '[' && head === '[IF') || head === 'XML') return true;
      }
      if (len > 5 && (cmpWithNull('IMPORT', s, start, 6) === 0 || cmpWithNull('ENTITY', s, start, 6) === 0)) return true;
    }
  }
  return false;
}

/** libinjection_xss: the input as HTML text, then as an unquoted, '-, "- and `-quoted attribute value. */
export function isXss(bytes: string): boolean {
  return (
    isXssFrom(bytes, DATA_STATE) ||
    isXssFrom(bytes, VALUE_NO_QUOTE) ||
    isXssFrom(bytes, VALUE_SINGLE_QUOTE) ||
    isXssFrom(bytes, VALUE_DOUBLE_QUOTE) ||
    isXssFrom(bytes, VALUE_BACK_QUOTE)
  );
}
