/**
 * SQL tokenizer: a line-by-line TypeScript port of libinjection's SQLi
 * tokenizer (libinjection_sqli.c, libinjection
 * 3.x as bundled with ModSecurity 3.0.9). Copyright (c) 2012-2016 Nick
 * Galbreath, BSD-3-Clause: see ./LICENSE. Differences from the C code are
 * limited to the language: strings are read as bytes (the caller passes one
 * code unit per byte) and the keyword table is a Map instead of a binary search.
 */
import { FINGERPRINTS, KEYWORDS } from './sqli-data.ts';

const TOKEN_SIZE = 32;
const MAX_TOKENS = 5;

const FLAG_QUOTE_NONE = 1;
const FLAG_QUOTE_SINGLE = 2;
const FLAG_QUOTE_DOUBLE = 4;
const FLAG_SQL_ANSI = 8;
const FLAG_SQL_MYSQL = 16;

const NUL = '\0';
const T_KEYWORD = 'k';
const T_UNION = 'U';
const T_GROUP = 'B';
const T_EXPRESSION = 'E';
const T_SQLTYPE = 't';
const T_FUNCTION = 'f';
const T_BAREWORD = 'n';
const T_NUMBER = '1';
const T_VARIABLE = 'v';
const T_STRING = 's';
const T_OPERATOR = 'o';
const T_LOGIC_OPERATOR = '&';
const T_COMMENT = 'c';
const T_COLLATE = 'A';
const T_LEFTPARENS = '(';
const T_RIGHTPARENS = ')';
const T_LEFTBRACE = '{';
const T_RIGHTBRACE = '}';
const T_DOT = '.';
const T_COMMA = ',';
const T_COLON = ':';
const T_SEMICOLON = ';';
const T_TSQL = 'T';
const T_UNKNOWN = '?';
const T_EVIL = 'X';
const T_BACKSLASH = '\\';

const WORDS = new Map<string, string>();
for (const line of KEYWORDS.split('\n')) WORDS.set(line.slice(1), line[0]!);
/** No longer word is a keyword: lookups of long words stop at their length. */
const LONGEST_WORD = Math.max(...[...WORDS.keys()].map((w) => w.length));
const FINGERPRINT_SET = new Set(FINGERPRINTS.split(' '));

class Token {
  type = NUL;
  pos = 0;
  len = 0;
  count = 0;
  strOpen = NUL;
  strClose = NUL;
  val = '';

  clear(): void {
    this.type = NUL;
    this.pos = 0;
    this.len = 0;
    this.count = 0;
    this.strOpen = NUL;
    this.strClose = NUL;
    this.val = '';
  }

  copyFrom(o: Token): void {
    this.type = o.type;
    this.pos = o.pos;
    this.len = o.len;
    this.count = o.count;
    this.strOpen = o.strOpen;
    this.strClose = o.strClose;
    this.val = o.val;
  }

  assignChar(type: string, pos: number, value: string): void {
    this.type = type;
    this.pos = pos;
    this.len = 1;
    this.val = value;
  }

  assign(type: string, pos: number, len: number, s: string, from: number): void {
    const last = len < TOKEN_SIZE ? len : TOKEN_SIZE - 1;
    this.type = type;
    this.pos = pos;
    this.len = last;
    this.val = s.substr(from, last);
  }
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** ASCII upper case (C compares bytes; a high byte never equals an ASCII letter). */
function upper(word: string): string {
  return NON_ASCII.test(word) ? word.replace(/[a-z]/g, (c) => c.toUpperCase()) : word.toUpperCase();
}

/** The keyword table lookup (C: bsearch_keyword_type): the type of an SQL word, or NUL. */
function lookupWord(word: string): string {
  if (word.length > LONGEST_WORD || NON_ASCII.test(word)) return NUL;
  return WORDS.get(word.toUpperCase()) ?? NUL;
}

/** Case-insensitive equality of an upper-case keyword and a token value (C: cstrcasecmp(...) == 0). */
function ieq(upperWord: string, val: string): boolean {
  return val.length === upperWord.length && upper(val) === upperWord;
}

function isWhite(c: number): boolean {
  // " \t\n\v\f\r\240\000"
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0;
}

/** Length of the prefix of s[from, from+len) made of the characters of `accept` (NUL always accepted, as in C). */
function spanOf(s: string, from: number, len: number, accept: string): number {
  for (let i = 0; i < len; i++) {
    const ch = s[from + i]!;
    if (ch !== NUL && !accept.includes(ch)) return i;
  }
  return len;
}

/** Length of the prefix of s[from, from+len) free of the characters of `reject` (NUL always rejects, as in C). */
function cspanOf(s: string, from: number, len: number, reject: string): number {
  for (let i = 0; i < len; i++) {
    const ch = s[from + i]!;
    if (ch === NUL || reject.includes(ch)) return i;
  }
  return len;
}

/** C memchr2: index of "c0c1" in s[from, from+len), or -1. */
function find2(s: string, from: number, len: number, pair: string): number {
  if (len < 2) return -1;
  const i = s.indexOf(pair, from);
  return i >= 0 && i + 2 <= from + len ? i : -1;
}

function findChar(s: string, from: number, end: number, ch: string): number {
  const i = s.indexOf(ch, from);
  return i >= 0 && i < end ? i : -1;
}

const WORD_DELIMS = ' []{}<>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r"\xa0';
const VAR_DELIMS = ' <>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r\'`"';

export class SqliState {
  s = '';
  slen = 0;
  flags = 0;
  pos = 0;
  readonly tokenvec: Token[] = [new Token(), new Token(), new Token(), new Token(), new Token(), new Token(), new Token(), new Token()];
  current: Token = this.tokenvec[0]!;
  fingerprint = '';
  statsCommentDdx = 0;
  statsCommentHash = 0;
  statsFolds = 0;
  statsTokens = 0;

  init(s: string, flags: number): void {
    this.s = s;
    this.slen = s.length;
    this.reset(flags);
  }

  reset(flags: number): void {
    if (flags === 0) flags = FLAG_QUOTE_NONE | FLAG_SQL_ANSI;
    this.flags = flags;
    this.pos = 0;
    for (const t of this.tokenvec) t.clear();
    this.current = this.tokenvec[0]!;
    this.fingerprint = '';
    this.statsCommentDdx = 0;
    this.statsCommentHash = 0;
    this.statsFolds = 0;
    this.statsTokens = 0;
  }
}

type Parser = (sf: SqliState) => number;

function parseWhite(sf: SqliState): number {
  return sf.pos + 1;
}

function parseOperator1(sf: SqliState): number {
  sf.current.assignChar(T_OPERATOR, sf.pos, sf.s[sf.pos]!);
  return sf.pos + 1;
}

function parseOther(sf: SqliState): number {
  sf.current.assignChar(T_UNKNOWN, sf.pos, sf.s[sf.pos]!);
  return sf.pos + 1;
}

function parseChar(sf: SqliState): number {
  const ch = sf.s[sf.pos]!;
  sf.current.assignChar(ch, sf.pos, ch);
  return sf.pos + 1;
}

function parseEolComment(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const end = findChar(s, pos, slen, '\n');
  if (end < 0) {
    sf.current.assign(T_COMMENT, pos, slen - pos, s, pos);
    return slen;
  }
  sf.current.assign(T_COMMENT, pos, end - pos, s, pos);
  return end + 1;
}

function parseHash(sf: SqliState): number {
  sf.statsCommentHash += 1;
  if (sf.flags & FLAG_SQL_MYSQL) {
    sf.statsCommentHash += 1;
    return parseEolComment(sf);
  }
  sf.current.assignChar(T_OPERATOR, sf.pos, '#');
  return sf.pos + 1;
}

function parseDash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 < slen && s[pos + 1] === '-' && isWhite(s.charCodeAt(pos + 2))) return parseEolComment(sf);
  if (pos + 2 === slen && s[pos + 1] === '-') return parseEolComment(sf);
  if (pos + 1 < slen && s[pos + 1] === '-' && sf.flags & FLAG_SQL_ANSI) {
    sf.statsCommentDdx += 1;
    return parseEolComment(sf);
  }
  sf.current.assignChar(T_OPERATOR, pos, '-');
  return pos + 1;
}

function parseSlash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const pos1 = pos + 1;
  if (pos1 === slen || s[pos1] !== '*') return parseOperator1(sf);
  let ctype = T_COMMENT;
  const end = find2(s, pos + 2, slen - (pos + 2), '*/');
  const clen = end < 0 ? slen - pos : end + 2 - pos;
  // Nested comment start inside the comment (pgsql), or a MySQL "/*!" comment: unparsable.
  if (end >= 0 && find2(s, pos + 2, end - (pos + 1), '/*') >= 0) ctype = T_EVIL;
  else if (pos + 2 < slen && s[pos + 2] === '!') ctype = T_EVIL;
  sf.current.assign(ctype, pos, clen, s, pos);
  return pos + clen;
}

function parseBackslash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 < slen && s[pos + 1] === 'N') {
    sf.current.assign(T_NUMBER, pos, 2, s, pos);
    return pos + 2;
  }
  sf.current.assignChar(T_BACKSLASH, pos, s[pos]!);
  return pos + 1;
}

function parseOperator2(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 >= slen) return parseOperator1(sf);
  if (pos + 2 < slen && s[pos] === '<' && s[pos + 1] === '=' && s[pos + 2] === '>') {
    sf.current.assign(T_OPERATOR, pos, 3, s, pos);
    return pos + 3;
  }
  const ch = lookupWord(s.substr(pos, 2));
  if (ch !== NUL) {
    sf.current.assign(ch, pos, 2, s, pos);
    return pos + 2;
  }
  if (s[pos] === ':') {
    sf.current.assign(T_COLON, pos, 1, s, pos);
    return pos + 1;
  }
  return parseOperator1(sf);
}

/** Odd number of backslashes ending at `end` (not before `start`): the quote after them is escaped. */
function isBackslashEscaped(s: string, end: number, start: number): boolean {
  let p = end;
  while (p >= start && s[p] === '\\') p--;
  return ((end - p) & 1) === 1;
}

function parseStringCore(s: string, len: number, pos: number, st: Token, delim: string, offset: number): number {
  let qpos = findChar(s, pos + offset, len, delim);
  st.strOpen = offset > 0 ? delim : NUL;
  for (;;) {
    if (qpos < 0) {
      st.assign(T_STRING, pos + offset, len - pos - offset, s, pos + offset);
      st.strClose = NUL;
      return len;
    } else if (isBackslashEscaped(s, qpos - 1, pos + offset)) {
      qpos = findChar(s, qpos + 1, len, delim);
    } else if (qpos + 1 < len && s[qpos + 1] === s[qpos]) {
      qpos = findChar(s, qpos + 2, len, delim);
    } else {
      st.assign(T_STRING, pos + offset, qpos - (pos + offset), s, pos + offset);
      st.strClose = delim;
      return qpos + 1;
    }
  }
}

function parseString(sf: SqliState): number {
  return parseStringCore(sf.s, sf.slen, sf.pos, sf.current, sf.s[sf.pos]!, 1);
}

function parseEstring(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 >= slen || s[pos + 1] !== "'") return parseWord(sf);
  return parseStringCore(s, slen, pos, sf.current, "'", 2);
}

function parseUstring(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 < slen && s[pos + 1] === '&' && s[pos + 2] === "'") {
    sf.pos += 2;
    const next = parseString(sf);
    sf.current.strOpen = 'u';
    if (sf.current.strClose === "'") sf.current.strClose = 'u';
    return next;
  }
  return parseWord(sf);
}

function parseQstringCore(sf: SqliState, offset: number): number {
  const { s, slen } = sf;
  const pos = sf.pos + offset;
  if (pos >= slen || (s[pos] !== 'q' && s[pos] !== 'Q') || pos + 2 >= slen || s[pos + 1] !== "'") return parseWord(sf);
  const code = s.charCodeAt(pos + 2);
  // C reads a signed char: bytes above 127 are negative, hence "< 33" too.
  if (code < 33 || code > 127) return parseWord(sf);
  let ch = s[pos + 2]!;
  if (ch === '(') ch = ')';
  else if (ch === '[') ch = ']';
  else if (ch === '{') ch = '}';
  else if (ch === '<') ch = '>';
  const end = find2(s, pos + 3, slen - pos - 3, ch + "'");
  if (end < 0) {
    sf.current.assign(T_STRING, pos + 3, slen - pos - 3, s, pos + 3);
    sf.current.strOpen = 'q';
    sf.current.strClose = NUL;
    return slen;
  }
  sf.current.assign(T_STRING, pos + 3, end - pos - 3, s, pos + 3);
  sf.current.strOpen = 'q';
  sf.current.strClose = 'q';
  return end + 2;
}

function parseQstring(sf: SqliState): number {
  return parseQstringCore(sf, 0);
}

function parseNqstring(sf: SqliState): number {
  if (sf.pos + 2 < sf.slen && sf.s[sf.pos + 1] === "'") return parseEstring(sf);
  return parseQstringCore(sf, 1);
}

/** b'0101' and x'CAFE' literals. */
function parseBinHexString(sf: SqliState, digits: string): number {
  const { s, slen, pos } = sf;
  if (pos + 2 >= slen || s[pos + 1] !== "'") return parseWord(sf);
  const wlen = spanOf(s, pos + 2, slen - pos - 2, digits);
  if (pos + 2 + wlen >= slen || s[pos + 2 + wlen] !== "'") return parseWord(sf);
  sf.current.assign(T_NUMBER, pos, wlen + 3, s, pos);
  return pos + 2 + wlen + 1;
}

function parseBstring(sf: SqliState): number {
  return parseBinHexString(sf, '01');
}

function parseXstring(sf: SqliState): number {
  return parseBinHexString(sf, '0123456789ABCDEFabcdef');
}

function parseBword(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const end = findChar(s, pos, slen, ']');
  if (end < 0) {
    sf.current.assign(T_BAREWORD, pos, slen - pos, s, pos);
    return slen;
  }
  sf.current.assign(T_BAREWORD, pos, end - pos + 1, s, pos);
  return end + 1;
}

function parseWord(sf: SqliState): number {
  const { s, pos } = sf;
  const wlen = cspanOf(s, pos, sf.slen - pos, WORD_DELIMS);
  const cur = sf.current;
  cur.assign(T_BAREWORD, pos, wlen, s, pos);
  // "SELECT.1" or SELECT`column`: a keyword before '.' or '`' is its own token.
  for (let i = 0; i < cur.len; ++i) {
    const delim = cur.val[i];
    if (delim === '.' || delim === '`') {
      const ch = lookupWord(cur.val.slice(0, i));
      if (ch !== NUL && ch !== T_BAREWORD) {
        cur.clear();
        cur.assign(ch, pos, i, s, pos);
        return pos + i;
      }
    }
  }
  if (wlen < TOKEN_SIZE) {
    const ch = lookupWord(cur.val.slice(0, wlen));
    cur.type = ch === NUL ? T_BAREWORD : ch;
  }
  return pos + wlen;
}

function parseTick(sf: SqliState): number {
  const next = parseStringCore(sf.s, sf.slen, sf.pos, sf.current, '`', 1);
  const ch = lookupWord(sf.current.val.slice(0, sf.current.len));
  sf.current.type = ch === T_FUNCTION ? T_FUNCTION : T_BAREWORD;
  return next;
}

function parseVar(sf: SqliState): number {
  const { s, slen } = sf;
  let pos = sf.pos + 1;
  if (pos < slen && s[pos] === '@') {
    pos += 1;
    sf.current.count = 2;
  } else {
    sf.current.count = 1;
  }
  if (pos < slen) {
    if (s[pos] === '`') {
      sf.pos = pos;
      const next = parseTick(sf);
      sf.current.type = T_VARIABLE;
      return next;
    } else if (s[pos] === "'" || s[pos] === '"') {
      sf.pos = pos;
      const next = parseString(sf);
      sf.current.type = T_VARIABLE;
      return next;
    }
  }
  const xlen = cspanOf(s, pos, slen - pos, VAR_DELIMS);
  sf.current.assign(T_VARIABLE, pos, xlen, s, pos);
  return pos + xlen;
}

const LETTERS = 'abcdefghjiklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

function parseMoney(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 === slen) {
    sf.current.assignChar(T_BAREWORD, pos, '$');
    return slen;
  }
  let xlen = spanOf(s, pos + 1, slen - pos - 1, '0123456789.,');
  if (xlen === 0) {
    if (s[pos + 1] === '$') {
      // $$ quoted string $$
      const end = find2(s, pos + 2, slen - pos - 2, '$$');
      if (end < 0) {
        sf.current.assign(T_STRING, pos + 2, slen - (pos + 2), s, pos + 2);
        sf.current.strOpen = '$';
        sf.current.strClose = NUL;
        return slen;
      }
      sf.current.assign(T_STRING, pos + 2, end - (pos + 2), s, pos + 2);
      sf.current.strOpen = '$';
      sf.current.strClose = '$';
      return end + 2;
    }
    // pgsql $tag$ quoted string $tag$
    xlen = spanOf(s, pos + 1, slen - pos - 1, LETTERS);
    if (xlen === 0 || pos + xlen + 1 === slen || s[pos + xlen + 1] !== '$') {
      sf.current.assignChar(T_BAREWORD, pos, '$');
      return pos + 1;
    }
    const tag = s.substr(pos, xlen + 2);
    const from = pos + xlen + 2;
    const end = s.indexOf(tag, from);
    if (end < 0) {
      sf.current.assign(T_STRING, from, slen - from, s, from);
      sf.current.strOpen = '$';
      sf.current.strClose = NUL;
      return slen;
    }
    sf.current.assign(T_STRING, from, end - from, s, from);
    sf.current.strOpen = '$';
    sf.current.strClose = '$';
    return end + xlen + 2;
  } else if (xlen === 1 && s[pos + 1] === '.') {
    return parseWord(sf);
  }
  sf.current.assign(T_NUMBER, pos, 1 + xlen, s, pos);
  return pos + 1 + xlen;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function parseNumber(sf: SqliState): number {
  const { s, slen } = sf;
  let pos = sf.pos;
  let haveE = false;
  let haveExp = false;
  if (s[pos] === '0' && pos + 1 < slen) {
    const x = s[pos + 1];
    const digits = x === 'X' || x === 'x' ? '0123456789ABCDEFabcdef' : x === 'B' || x === 'b' ? '01' : null;
    if (digits) {
      const xlen = spanOf(s, pos + 2, slen - pos - 2, digits);
      if (xlen === 0) {
        sf.current.assign(T_BAREWORD, pos, 2, s, pos);
        return pos + 2;
      }
      sf.current.assign(T_NUMBER, pos, 2 + xlen, s, pos);
      return pos + 2 + xlen;
    }
  }
  const start = pos;
  while (pos < slen && isDigit(s.charCodeAt(pos))) pos += 1;
  if (pos < slen && s[pos] === '.') {
    pos += 1;
    while (pos < slen && isDigit(s.charCodeAt(pos))) pos += 1;
    if (pos - start === 1) {
      sf.current.assignChar(T_DOT, start, '.');
      return pos;
    }
  }
  if (pos < slen && (s[pos] === 'E' || s[pos] === 'e')) {
    haveE = true;
    pos += 1;
    if (pos < slen && (s[pos] === '+' || s[pos] === '-')) pos += 1;
    while (pos < slen && isDigit(s.charCodeAt(pos))) {
      haveExp = true;
      pos += 1;
    }
  }
  // Oracle's float/double suffix: 1.2f, 1.2d
  if (pos < slen && (s[pos] === 'd' || s[pos] === 'D' || s[pos] === 'f' || s[pos] === 'F')) {
    if (pos + 1 === slen) pos += 1;
    else if (isWhite(s.charCodeAt(pos + 1)) || s[pos + 1] === ';') pos += 1;
    else if (s[pos + 1] === 'u' || s[pos + 1] === 'U') pos += 1;
  }
  // "1234.e", "10.10E": a word, not a number
  sf.current.assign(haveE && !haveExp ? T_BAREWORD : T_NUMBER, start, pos - start, s, start);
  return pos;
}

/** C char_parse_map: the parser for each byte. */
const CHAR_PARSERS: Parser[] = new Array<Parser>(256).fill(parseWord);
for (let c = 0; c <= 32; c++) CHAR_PARSERS[c] = parseWhite;
CHAR_PARSERS[127] = parseWhite;
CHAR_PARSERS[160] = parseWhite;
for (let c = 48; c <= 57; c++) CHAR_PARSERS[c] = parseNumber;
const SPECIAL: [string, Parser][] = [
  ['!&*:<=>|', parseOperator2],
  ['"\'', parseString],
  ['#', parseHash],
  ['$', parseMoney],
  ['%+^~', parseOperator1],
  ['(),;{}', parseChar],
  ['-', parseDash],
  ['.', parseNumber],
  ['/', parseSlash],
  ['?]', parseOther],
  ['@', parseVar],
  ['Bb', parseBstring],
  ['Ee', parseEstring],
  ['Nn', parseNqstring],
  ['Qq', parseQstring],
  ['Uu', parseUstring],
  ['Xx', parseXstring],
  ['[', parseBword],
  ['\\', parseBackslash],
  ['`', parseTick],
];
for (const [chars, fn] of SPECIAL) for (const ch of chars) CHAR_PARSERS[ch.charCodeAt(0)] = fn;

export function tokenize(sf: SqliState): boolean {
  const { s, slen } = sf;
  if (slen === 0) return false;
  const current = sf.current;
  current.clear();
  if (sf.pos === 0 && sf.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE)) {
    const delim = sf.flags & FLAG_QUOTE_SINGLE ? "'" : '"';
    sf.pos = parseStringCore(s, slen, 0, current, delim, 0);
    sf.statsTokens += 1;
    return true;
  }
  while (sf.pos < slen) {
    const ch = s.charCodeAt(sf.pos);
    sf.pos = CHAR_PARSERS[ch > 255 ? 65 : ch]!(sf);
    if (current.type !== NUL) {
      sf.statsTokens += 1;
      return true;
    }
  }
  return false;
}

export { FLAG_QUOTE_NONE, FLAG_QUOTE_SINGLE, FLAG_QUOTE_DOUBLE, FLAG_SQL_ANSI, FLAG_SQL_MYSQL, FINGERPRINT_SET, MAX_TOKENS, NUL, Token, lookupWord, ieq, upper };
export {
  T_KEYWORD, T_UNION, T_GROUP, T_EXPRESSION, T_SQLTYPE, T_FUNCTION, T_BAREWORD, T_NUMBER, T_VARIABLE, T_STRING, T_OPERATOR,
  T_LOGIC_OPERATOR, T_COMMENT, T_COLLATE, T_LEFTPARENS, T_RIGHTPARENS, T_LEFTBRACE, T_RIGHTBRACE, T_DOT, T_COMMA, T_SEMICOLON,
  T_TSQL, T_EVIL, T_BACKSLASH,
};
