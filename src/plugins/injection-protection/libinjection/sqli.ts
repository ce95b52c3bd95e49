/**
 * SQL injection detection: a line-by-line TypeScript port of libinjection's
 * token folding and fingerprint test (libinjection_sqli.c, libinjection 3.x
 * as bundled with ModSecurity 3.0.9). Copyright (c) 2012-2016 Nick Galbreath,
 * BSD-3-Clause: see ./LICENSE.
 *
 * `isSqli(bytes)` takes one code unit per byte (see toBytes in ../decode.ts).
 */
import {
  FINGERPRINT_SET, FLAG_QUOTE_DOUBLE, FLAG_QUOTE_NONE, FLAG_QUOTE_SINGLE, FLAG_SQL_ANSI, FLAG_SQL_MYSQL, MAX_TOKENS, NUL,
  SqliState, T_BACKSLASH, T_BAREWORD, T_COLLATE, T_COMMA, T_COMMENT, T_DOT, T_EVIL, T_EXPRESSION, T_FUNCTION, T_GROUP,
  T_KEYWORD, T_LEFTBRACE, T_LEFTPARENS, T_LOGIC_OPERATOR, T_NUMBER, T_OPERATOR, T_RIGHTBRACE, T_RIGHTPARENS, T_SEMICOLON,
  T_SQLTYPE, T_STRING, T_TSQL, T_UNION, T_VARIABLE, Token, ieq, lookupWord, tokenize, upper,
} from './sqli-tokenize.ts';

export { SqliState };

function isUnaryOp(t: Token): boolean {
  if (t.type !== T_OPERATOR) return false;
  const v = t.val;
  switch (t.len) {
    case 1:
      return v === '+' || v === '-' || v === '!' || v === '~';
    case 2:
      return v === '!!';
    case 3:
      return ieq('NOT', v);
    default:
      return false;
  }
}

function isArithmeticOp(t: Token): boolean {
  const v = t.val;
  return t.type === T_OPERATOR && t.len === 1 && (v === '*' || v === '/' || v === '-' || v === '+' || v === '%');
}

const MERGE_LEFT = new Set([T_KEYWORD, T_BAREWORD, T_OPERATOR, T_UNION, T_FUNCTION, T_EXPRESSION, T_TSQL, T_SQLTYPE]);
const MERGE_RIGHT = new Set([...MERGE_LEFT, T_LOGIC_OPERATOR]);

/** "UNION" + "ALL" → "UNION ALL" when the phrase is a keyword. */
function mergeWords(a: Token, b: Token): boolean {
  if (!MERGE_LEFT.has(a.type) || !MERGE_RIGHT.has(b.type)) return false;
  const sz3 = a.len + b.len + 1;
  if (sz3 >= 32) return false;
  const tmp = `${a.val} ${b.val}`;
  const ch = lookupWord(tmp);
  if (ch === NUL) return false;
  a.assign(ch, a.pos, sz3, tmp, 0);
  return true;
}

/** TSQL and MySQL functions that are common column names: a function only when followed by '('. */
const FUNCTION_LIKE = new Set([
  'USER_ID', 'USER_NAME', 'DATABASE', 'PASSWORD', 'USER', 'CURRENT_USER', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_TIMESTAMP',
  'LOCALTIME', 'LOCALTIMESTAMP',
]);

const lastComment = new Token();

/** Folds the token stream into at most 5 tokens (the fingerprint); returns their number. */
export function fold(sf: SqliState): number {
  const tv = sf.tokenvec;
  let pos = 0;
  let left = 0;
  let more = true;
  lastComment.clear();

  // Skip initial comments, left parens, SQL types and unary operators.
  sf.current = tv[0]!;
  while (more) {
    more = tokenize(sf);
    const t = sf.current.type;
    if (!(t === T_COMMENT || t === T_LEFTPARENS || t === T_SQLTYPE || isUnaryOp(sf.current))) break;
  }
  if (!more) return 0;
  pos += 1;

  for (;;) {
    if (pos >= MAX_TOKENS) {
      const [a, b, c, d, e] = [tv[0]!.type, tv[1]!.type, tv[2]!.type, tv[3]!.type, tv[4]!.type];
      if (
        (a === T_NUMBER && (b === T_OPERATOR || b === T_COMMA) && c === T_LEFTPARENS && d === T_NUMBER && e === T_RIGHTPARENS) ||
        (a === T_BAREWORD && b === T_OPERATOR && c === T_LEFTPARENS && (d === T_BAREWORD || d === T_NUMBER) && e === T_RIGHTPARENS) ||
        (a === T_NUMBER && b === T_RIGHTPARENS && c === T_COMMA && d === T_LEFTPARENS && e === T_NUMBER) ||
        (a === T_BAREWORD && b === T_RIGHTPARENS && c === T_OPERATOR && d === T_LEFTPARENS && e === T_BAREWORD)
      ) {
        if (pos > MAX_TOKENS) {
          tv[1]!.copyFrom(tv[MAX_TOKENS]!);
          pos = 2;
          left = 0;
        } else {
          pos = 1;
          left = 0;
        }
      }
    }

    if (!more || left >= MAX_TOKENS) {
      left = pos;
      break;
    }

    // Get up to two tokens.
    while (more && pos <= MAX_TOKENS && pos - left < 2) {
      sf.current = tv[pos]!;
      more = tokenize(sf);
      if (more) {
        if (sf.current.type === T_COMMENT) lastComment.copyFrom(sf.current);
        else {
          lastComment.type = NUL;
          pos += 1;
        }
      }
    }
    if (pos - left < 2) {
      left = pos;
      continue;
    }

    const l = tv[left]!;
    const r = tv[left + 1]!;
    if (l.type === T_STRING && r.type === T_STRING) {
      pos -= 1;
      sf.statsFolds += 1;
      continue;
    } else if (l.type === T_SEMICOLON && r.type === T_SEMICOLON) {
      pos -= 1;
      sf.statsFolds += 1;
      continue;
    } else if ((l.type === T_OPERATOR || l.type === T_LOGIC_OPERATOR) && (isUnaryOp(r) || r.type === T_SQLTYPE)) {
      pos -= 1;
      sf.statsFolds += 1;
      left = 0;
      continue;
    } else if (l.type === T_LEFTPARENS && isUnaryOp(r)) {
      pos -= 1;
      sf.statsFolds += 1;
      if (left > 0) left -= 1;
      continue;
    } else if (mergeWords(l, r)) {
      pos -= 1;
      sf.statsFolds += 1;
      if (left > 0) left -= 1;
      continue;
    } else if (l.type === T_SEMICOLON && r.type === T_FUNCTION && (r.val[0] === 'I' || r.val[0] === 'i') && (r.val[1] === 'F' || r.val[1] === 'f')) {
      // IF after a semicolon: Transact-SQL control flow.
      r.type = T_TSQL;
      continue;
    } else if ((l.type === T_BAREWORD || l.type === T_VARIABLE) && r.type === T_LEFTPARENS && FUNCTION_LIKE.has(upper(l.val))) {
      l.type = T_FUNCTION;
      continue;
    } else if (l.type === T_KEYWORD && (ieq('IN', l.val) || ieq('NOT IN', l.val))) {
      l.type = r.type === T_LEFTPARENS ? T_OPERATOR : T_BAREWORD;
      continue;
    } else if (l.type === T_OPERATOR && (ieq('LIKE', l.val) || ieq('NOT LIKE', l.val))) {
      if (r.type === T_LEFTPARENS) l.type = T_FUNCTION;
    } else if (
      l.type === T_SQLTYPE &&
      (r.type === T_BAREWORD || r.type === T_NUMBER || r.type === T_SQLTYPE || r.type === T_LEFTPARENS || r.type === T_FUNCTION ||
        r.type === T_VARIABLE || r.type === T_STRING)
    ) {
      l.copyFrom(r);
      pos -= 1;
      sf.statsFolds += 1;
      left = 0;
      continue;
    } else if (l.type === T_COLLATE && r.type === T_BAREWORD) {
      if (r.val.includes('_')) {
        r.type = T_SQLTYPE;
        left = 0;
      }
    } else if (l.type === T_BACKSLASH) {
      if (isArithmeticOp(r)) l.type = T_NUMBER;
      else {
        l.copyFrom(r);
        pos -= 1;
        sf.statsFolds += 1;
      }
      left = 0;
      continue;
    } else if (l.type === T_LEFTPARENS && r.type === T_LEFTPARENS) {
      pos -= 1;
      left = 0;
      sf.statsFolds += 1;
      continue;
    } else if (l.type === T_RIGHTPARENS && r.type === T_RIGHTPARENS) {
      pos -= 1;
      left = 0;
      sf.statsFolds += 1;
      continue;
    } else if (l.type === T_LEFTBRACE && r.type === T_BAREWORD) {
      // MySQL's { ``.``.id }: too rare and strange to fold, banned.
      if (r.len === 0) {
        r.type = T_EVIL;
        return left + 2;
      }
      left = 0;
      pos -= 2;
      sf.statsFolds += 2;
      continue;
    } else if (r.type === T_RIGHTBRACE) {
      pos -= 1;
      left = 0;
      sf.statsFolds += 1;
      continue;
    }

    // Nothing matched for two tokens: get a third.
    while (more && pos <= MAX_TOKENS && pos - left < 3) {
      sf.current = tv[pos]!;
      more = tokenize(sf);
      if (more) {
        if (sf.current.type === T_COMMENT) lastComment.copyFrom(sf.current);
        else {
          lastComment.type = NUL;
          pos += 1;
        }
      }
    }
    if (pos - left < 3) {
      left = pos;
      continue;
    }

    const a = tv[left]!;
    const b = tv[left + 1]!;
    const c = tv[left + 2]!;
    if (a.type === T_NUMBER && b.type === T_OPERATOR && c.type === T_NUMBER) {
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_OPERATOR && b.type !== T_LEFTPARENS && c.type === T_OPERATOR) {
      left = 0;
      pos -= 2;
      continue;
    } else if (a.type === T_LOGIC_OPERATOR && c.type === T_LOGIC_OPERATOR) {
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_VARIABLE && b.type === T_OPERATOR && (c.type === T_VARIABLE || c.type === T_NUMBER || c.type === T_BAREWORD)) {
      pos -= 2;
      left = 0;
      continue;
    } else if ((a.type === T_BAREWORD || a.type === T_NUMBER) && b.type === T_OPERATOR && (c.type === T_NUMBER || c.type === T_BAREWORD)) {
      pos -= 2;
      left = 0;
      continue;
    } else if (
      (a.type === T_BAREWORD || a.type === T_NUMBER || a.type === T_VARIABLE || a.type === T_STRING) &&
      b.type === T_OPERATOR && b.val === '::' && c.type === T_SQLTYPE
    ) {
      pos -= 2;
      left = 0;
      sf.statsFolds += 2;
      continue;
    } else if (
      (a.type === T_BAREWORD || a.type === T_NUMBER || a.type === T_STRING || a.type === T_VARIABLE) &&
      b.type === T_COMMA &&
      (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_STRING || c.type === T_VARIABLE)
    ) {
      pos -= 2;
      left = 0;
      continue;
    } else if ((a.type === T_EXPRESSION || a.type === T_GROUP || a.type === T_COMMA) && isUnaryOp(b) && c.type === T_LEFTPARENS) {
      // SELECT + (, LIMIT + ( : drop the unary operator
      b.copyFrom(c);
      pos -= 1;
      left = 0;
      continue;
    } else if (
      (a.type === T_KEYWORD || a.type === T_EXPRESSION || a.type === T_GROUP) && isUnaryOp(b) &&
      (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_VARIABLE || c.type === T_STRING || c.type === T_FUNCTION)
    ) {
      b.copyFrom(c);
      pos -= 1;
      left = 0;
      continue;
    } else if (
      a.type === T_COMMA && isUnaryOp(b) &&
      (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_VARIABLE || c.type === T_STRING)
    ) {
      // ", -1" → ",1", and back up to fold "1,-1" → "1"
      b.copyFrom(c);
      left = 0;
      pos -= 3;
      continue;
    } else if (a.type === T_COMMA && isUnaryOp(b) && c.type === T_FUNCTION) {
      b.copyFrom(c);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_BAREWORD && b.type === T_DOT && c.type === T_BAREWORD) {
      // database.table
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_EXPRESSION && b.type === T_DOT && c.type === T_BAREWORD) {
      b.copyFrom(c);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_FUNCTION && b.type === T_LEFTPARENS && c.type !== T_RIGHTPARENS) {
      // USER() takes no argument: USER(foo) is not the function.
      if (ieq('USER', a.val)) a.type = T_BAREWORD;
    }

    left += 1;
  }

  // Four or fewer tokens and a trailing comment: add it back.
  if (left < MAX_TOKENS && lastComment.type === T_COMMENT) {
    tv[left]!.copyFrom(lastComment);
    left += 1;
  }
  return left > MAX_TOKENS ? MAX_TOKENS : left;
}

/** Tokenizes and folds with these flags; returns the fingerprint ("X" when unparsable). */
export function sqliFingerprint(sf: SqliState, flags: number): string {
  sf.reset(flags);
  const tlen = fold(sf);
  const tv = sf.tokenvec;
  // PHP's magic backquote comment: an empty, unclosed backtick word at the end.
  if (tlen > 2) {
    const last = tv[tlen - 1]!;
    if (last.type === T_BAREWORD && last.strOpen === '`' && last.len === 0 && last.strClose === NUL) last.type = T_COMMENT;
  }
  let fp = '';
  for (let i = 0; i < tlen; ++i) fp += tv[i]!.type;
  if (fp.includes(T_EVIL)) {
    fp = T_EVIL;
    tv[0]!.type = T_EVIL;
    tv[0]!.val = T_EVIL;
    tv[1]!.type = NUL;
  }
  sf.fingerprint = fp;
  return fp;
}

function blacklisted(sf: SqliState): boolean {
  return sf.fingerprint.length > 0 && FINGERPRINT_SET.has(sf.fingerprint.toUpperCase());
}

/** The fingerprint matched: filters out the known false positives. True = SQLi. */
function notWhitelisted(sf: SqliState): boolean {
  const fp = sf.fingerprint;
  const tv = sf.tokenvec;
  const tlen = fp.length;
  // 'sp_password' in a trailing comment hides the query from the SQL Server audit log.
  if (tlen > 1 && fp[tlen - 1] === T_COMMENT && sf.s.includes('sp_password')) return true;
  const byteAt = (i: number) => (i < sf.slen ? sf.s[i] : NUL);
  if (tlen === 2) {
    if (fp[1] === T_UNION) return sf.statsTokens !== 2;
    if (tv[1]!.val[0] === '#') return false;
    if (tv[0]!.type === T_BAREWORD && tv[1]!.type === T_COMMENT && tv[1]!.val[0] !== '/') return false;
    if (tv[0]!.type === T_NUMBER && tv[1]!.type === T_COMMENT && tv[1]!.val[0] === '/') return true;
    if (tv[0]!.type === T_NUMBER && tv[1]!.type === T_COMMENT) {
      if (sf.statsTokens > 2) return true;
      const ch = byteAt(tv[0]!.len);
      const code = ch.charCodeAt(0);
      // C reads a signed char: high bytes are negative, so "<= 32" too.
      if (code <= 32 || code >= 128) return true;
      if (ch === '/' && byteAt(tv[0]!.len + 1) === '*') return true;
      if (ch === '-' && byteAt(tv[0]!.len + 1) === '-') return true;
      return false;
    }
    if (tv[1]!.len > 2 && tv[1]!.val[0] === '-') return false;
  } else if (tlen === 3) {
    if (fp === 'sos' || fp === 's&s') {
      // ...foo" + "bar...: no opening and no closing quote
      return tv[0]!.strOpen === NUL && tv[2]!.strClose === NUL && tv[0]!.strClose === tv[2]!.strOpen;
    } else if (fp === 's&n' || fp === 'n&1' || fp === '1&1' || fp === '1&v' || fp === '1&s') {
      if (sf.statsTokens === 3) return false;
    } else if (tv[1]!.type === T_KEYWORD) {
      // only INTO OUTFILE / INTO DUMPFILE
      if (tv[1]!.len < 5 || upper(tv[1]!.val.slice(0, 4)) !== 'INTO') return false;
    }
  }
  return true;
}

function checkFingerprint(sf: SqliState): boolean {
  return blacklisted(sf) && notWhitelisted(sf);
}

function reparseAsMysql(sf: SqliState): boolean {
  return sf.statsCommentDdx > 0 || sf.statsCommentHash > 0;
}

/** libinjection_is_sqli: the input as is, then as if inside '…' and "…". Returns the fingerprint, or null. */
export function isSqli(sf: SqliState, bytes: string): string | null {
  sf.init(bytes, 0);
  if (bytes.length === 0) return null;
  sqliFingerprint(sf, FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
  if (checkFingerprint(sf)) return sf.fingerprint;
  if (reparseAsMysql(sf)) {
    sqliFingerprint(sf, FLAG_QUOTE_NONE | FLAG_SQL_MYSQL);
    if (checkFingerprint(sf)) return sf.fingerprint;
  }
  if (bytes.includes("'")) {
    sqliFingerprint(sf, FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
    if (checkFingerprint(sf)) return sf.fingerprint;
    if (reparseAsMysql(sf)) {
      sqliFingerprint(sf, FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL);
      if (checkFingerprint(sf)) return sf.fingerprint;
    }
  }
  if (bytes.includes('"')) {
    sqliFingerprint(sf, FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL);
    if (checkFingerprint(sf)) return sf.fingerprint;
  }
  return null;
}
