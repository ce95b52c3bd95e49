/**
 * A partial HTML5 tokenizer: a line-by-line TypeScript port of libinjection's
 * libinjection_html5.c (libinjection 3.x as bundled with ModSecurity 3.0.9).
 * Copyright (c) 2012-2016 Nick Galbreath, BSD-3-Clause: see ./LICENSE.
 * Works on one code unit per byte, like the C code.
 */

export const DATA_TEXT = 0;
export const TAG_NAME_OPEN = 1;
export const TAG_NAME_CLOSE = 2;
export const TAG_NAME_SELFCLOSE = 3;
export const TAG_CLOSE = 5;
export const ATTR_NAME = 6;
export const ATTR_VALUE = 7;
export const TAG_COMMENT = 8;
export const DOCTYPE = 9;

/** Initial states (C enum html5_flags). */
export const DATA_STATE = 0;
export const VALUE_NO_QUOTE = 1;
export const VALUE_SINGLE_QUOTE = 2;
export const VALUE_DOUBLE_QUOTE = 3;
export const VALUE_BACK_QUOTE = 4;

const CHAR_EOF = -1;

type State = (hs: H5State) => boolean;

export class H5State {
  s = '';
  len = 0;
  pos = 0;
  isClose = false;
  state: State = stateEof;
  tokenStart = 0;
  tokenLen = 0;
  tokenType = DATA_TEXT;

  init(s: string, flags: number): void {
    this.s = s;
    this.len = s.length;
    this.pos = 0;
    this.isClose = false;
    this.tokenStart = 0;
    this.tokenLen = 0;
    this.tokenType = DATA_TEXT;
    this.state =
      flags === VALUE_NO_QUOTE ? stateBeforeAttributeName
      : flags === VALUE_SINGLE_QUOTE ? stateAttributeValueSingleQuote
      : flags === VALUE_DOUBLE_QUOTE ? stateAttributeValueDoubleQuote
      : flags === VALUE_BACK_QUOTE ? stateAttributeValueBackQuote
      : stateData;
  }

  next(): boolean {
    return this.state(this);
  }

  token(type: number, start: number, len: number): void {
    this.tokenType = type;
    this.tokenStart = start;
    this.tokenLen = len;
  }
}

/** " \t\n\v\f\r" and, through C's strchr, NUL. */
function isWhite(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0;
}

function isAlpha(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/** Skips white space; returns the next char as C's signed char (high bytes negative, 0xFF = EOF), or EOF. */
function skipWhite(hs: H5State): number {
  while (hs.pos < hs.len) {
    const c = hs.s.charCodeAt(hs.pos);
    if (c === 0 || c === 32 || (c >= 9 && c <= 13)) hs.pos += 1;
    else return c >= 128 ? c - 256 : c;
  }
  return CHAR_EOF;
}

function find(hs: H5State, ch: string, from: number): number {
  const i = hs.s.indexOf(ch, from);
  return i >= 0 && i < hs.len ? i : -1;
}

function stateEof(): boolean {
  return false;
}

function stateData(hs: H5State): boolean {
  const idx = find(hs, '<', hs.pos);
  if (idx < 0) {
    hs.token(DATA_TEXT, hs.pos, hs.len - hs.pos);
    hs.state = stateEof;
    if (hs.tokenLen === 0) return false;
  } else {
    hs.token(DATA_TEXT, hs.pos, idx - hs.pos);
    hs.pos = idx + 1;
    hs.state = stateTagOpen;
    if (hs.tokenLen === 0) return stateTagOpen(hs);
  }
  return true;
}

function stateTagOpen(hs: H5State): boolean {
  if (hs.pos >= hs.len) return false;
  const c = hs.s.charCodeAt(hs.pos);
  if (c === 33 /* ! */) {
    hs.pos += 1;
    return stateMarkupDeclarationOpen(hs);
  } else if (c === 47 /* / */) {
    hs.pos += 1;
    hs.isClose = true;
    return stateEndTagOpen(hs);
  } else if (c === 63 /* ? */) {
    hs.pos += 1;
    return stateBogusComment(hs);
  } else if (c === 37 /* % */) {
    // not in the spec: an alternative comment format of IE <= 9 and Safari < 4.0.3
    hs.pos += 1;
    return stateBogusComment2(hs);
  } else if (isAlpha(c) || c === 0) {
    return stateTagName(hs);
  }
  if (hs.pos === 0) return stateData(hs);
  hs.token(DATA_TEXT, hs.pos - 1, 1);
  hs.state = stateData;
  return true;
}

function stateEndTagOpen(hs: H5State): boolean {
  if (hs.pos >= hs.len) return false;
  const c = hs.s.charCodeAt(hs.pos);
  if (c === 62 /* > */) return stateData(hs);
  if (isAlpha(c)) return stateTagName(hs);
  hs.isClose = false;
  return stateBogusComment(hs);
}

function stateTagNameClose(hs: H5State): boolean {
  hs.isClose = false;
  hs.token(TAG_NAME_CLOSE, hs.pos, 1);
  hs.pos += 1;
  hs.state = hs.pos < hs.len ? stateData : stateEof;
  return true;
}

function stateTagName(hs: H5State): boolean {
  let pos = hs.pos;
  while (pos < hs.len) {
    const c = hs.s.charCodeAt(pos);
    if (c === 0) {
      // old browsers ignore NULs in tag names
      pos += 1;
    } else if (isWhite(c)) {
      hs.token(TAG_NAME_OPEN, hs.pos, pos - hs.pos);
      hs.pos = pos + 1;
      hs.state = stateBeforeAttributeName;
      return true;
    } else if (c === 47 /* / */) {
      hs.token(TAG_NAME_OPEN, hs.pos, pos - hs.pos);
      hs.pos = pos + 1;
      hs.state = stateSelfClosingStartTag;
      return true;
    } else if (c === 62 /* > */) {
      hs.tokenStart = hs.pos;
      hs.tokenLen = pos - hs.pos;
      if (hs.isClose) {
        hs.pos = pos + 1;
        hs.isClose = false;
        hs.tokenType = TAG_CLOSE;
        hs.state = stateData;
      } else {
        hs.pos = pos;
        hs.tokenType = TAG_NAME_OPEN;
        hs.state = stateTagNameClose;
      }
      return true;
    } else {
      pos += 1;
    }
  }
  hs.token(TAG_NAME_OPEN, hs.pos, hs.len - hs.pos);
  hs.state = stateEof;
  return true;
}

function stateBeforeAttributeName(hs: H5State): boolean {
  const c = skipWhite(hs);
  if (c === CHAR_EOF) return false;
  if (c === 47 /* / */) {
    hs.pos += 1;
    return stateSelfClosingStartTag(hs);
  }
  if (c === 62 /* > */) {
    hs.state = stateData;
    hs.token(TAG_NAME_CLOSE, hs.pos, 1);
    hs.pos += 1;
    return true;
  }
  return stateAttributeName(hs);
}

function stateAttributeName(hs: H5State): boolean {
  let pos = hs.pos + 1;
  while (pos < hs.len) {
    const c = hs.s.charCodeAt(pos);
    if (isWhite(c)) {
      hs.token(ATTR_NAME, hs.pos, pos - hs.pos);
      hs.state = stateAfterAttributeName;
      hs.pos = pos + 1;
      return true;
    } else if (c === 47 /* / */) {
      hs.token(ATTR_NAME, hs.pos, pos - hs.pos);
      hs.state = stateSelfClosingStartTag;
      hs.pos = pos + 1;
      return true;
    } else if (c === 61 /* = */) {
      hs.token(ATTR_NAME, hs.pos, pos - hs.pos);
      hs.state = stateBeforeAttributeValue;
      hs.pos = pos + 1;
      return true;
    } else if (c === 62 /* > */) {
      hs.token(ATTR_NAME, hs.pos, pos - hs.pos);
      hs.state = stateTagNameClose;
      hs.pos = pos;
      return true;
    }
    pos += 1;
  }
  hs.token(ATTR_NAME, hs.pos, hs.len - hs.pos);
  hs.state = stateEof;
  hs.pos = hs.len;
  return true;
}

function stateAfterAttributeName(hs: H5State): boolean {
  const c = skipWhite(hs);
  if (c === CHAR_EOF) return false;
  if (c === 47 /* / */) {
    hs.pos += 1;
    return stateSelfClosingStartTag(hs);
  }
  if (c === 61 /* = */) {
    hs.pos += 1;
    return stateBeforeAttributeValue(hs);
  }
  if (c === 62 /* > */) return stateTagNameClose(hs);
  return stateAttributeName(hs);
}

function stateBeforeAttributeValue(hs: H5State): boolean {
  const c = skipWhite(hs);
  if (c === CHAR_EOF) {
    hs.state = stateEof;
    return false;
  }
  if (c === 34 /* " */) return stateAttributeValueDoubleQuote(hs);
  if (c === 39 /* ' */) return stateAttributeValueSingleQuote(hs);
  if (c === 96 /* ` (IE) */) return stateAttributeValueBackQuote(hs);
  return stateAttributeValueNoQuote(hs);
}

function stateAttributeValueQuote(hs: H5State, q: string): boolean {
  // Skip the opening quote, unless the tokenizer started in this state.
  if (hs.pos > 0) hs.pos += 1;
  const idx = find(hs, q, hs.pos);
  if (idx < 0) {
    hs.token(ATTR_VALUE, hs.pos, hs.len - hs.pos);
    hs.state = stateEof;
  } else {
    hs.token(ATTR_VALUE, hs.pos, idx - hs.pos);
    hs.state = stateAfterAttributeValueQuoted;
    hs.pos += hs.tokenLen + 1;
  }
  return true;
}

function stateAttributeValueDoubleQuote(hs: H5State): boolean {
  return stateAttributeValueQuote(hs, '"');
}

function stateAttributeValueSingleQuote(hs: H5State): boolean {
  return stateAttributeValueQuote(hs, "'");
}

function stateAttributeValueBackQuote(hs: H5State): boolean {
  return stateAttributeValueQuote(hs, '`');
}

function stateAttributeValueNoQuote(hs: H5State): boolean {
  let pos = hs.pos;
  while (pos < hs.len) {
    const c = hs.s.charCodeAt(pos);
    if (isWhite(c)) {
      hs.token(ATTR_VALUE, hs.pos, pos - hs.pos);
      hs.pos = pos + 1;
      hs.state = stateBeforeAttributeName;
      return true;
    } else if (c === 62 /* > */) {
      hs.token(ATTR_VALUE, hs.pos, pos - hs.pos);
      hs.pos = pos;
      hs.state = stateTagNameClose;
      return true;
    }
    pos += 1;
  }
  hs.state = stateEof;
  hs.token(ATTR_VALUE, hs.pos, hs.len - hs.pos);
  return true;
}

function stateAfterAttributeValueQuoted(hs: H5State): boolean {
  if (hs.pos >= hs.len) return false;
  const c = hs.s.charCodeAt(hs.pos);
  if (isWhite(c)) {
    hs.pos += 1;
    return stateBeforeAttributeName(hs);
  } else if (c === 47 /* / */) {
    hs.pos += 1;
    return stateSelfClosingStartTag(hs);
  } else if (c === 62 /* > */) {
    hs.token(TAG_NAME_CLOSE, hs.pos, 1);
    hs.pos += 1;
    hs.state = stateData;
    return true;
  }
  return stateBeforeAttributeName(hs);
}

function stateSelfClosingStartTag(hs: H5State): boolean {
  if (hs.pos >= hs.len) return false;
  if (hs.s[hs.pos] === '>') {
    hs.token(TAG_NAME_SELFCLOSE, hs.pos - 1, 2);
    hs.state = stateData;
    hs.pos += 1;
    return true;
  }
  return stateBeforeAttributeName(hs);
}

function stateBogusComment(hs: H5State): boolean {
  const idx = find(hs, '>', hs.pos);
  if (idx < 0) {
    hs.tokenStart = hs.pos;
    hs.tokenLen = hs.len - hs.pos;
    hs.pos = hs.len;
    hs.state = stateEof;
  } else {
    hs.tokenStart = hs.pos;
    hs.tokenLen = idx - hs.pos;
    hs.pos = idx + 1;
    hs.state = stateData;
  }
  hs.tokenType = TAG_COMMENT;
  return true;
}

/** <% … %> */
function stateBogusComment2(hs: H5State): boolean {
  let pos = hs.pos;
  for (;;) {
    const idx = find(hs, '%', pos);
    if (idx < 0 || idx + 1 >= hs.len) {
      hs.token(TAG_COMMENT, hs.pos, hs.len - hs.pos);
      hs.pos = hs.len;
      hs.state = stateEof;
      return true;
    }
    if (hs.s[idx + 1] !== '>') {
      pos = idx + 1;
      continue;
    }
    hs.token(TAG_COMMENT, hs.pos, idx - hs.pos);
    hs.pos = idx + 2;
    hs.state = stateData;
    return true;
  }
}

function stateMarkupDeclarationOpen(hs: H5State): boolean {
  const remaining = hs.len - hs.pos;
  if (remaining >= 7 && /^doctype$/i.test(hs.s.substr(hs.pos, 7))) {
    return stateDoctype(hs);
  } else if (remaining >= 7 && hs.s.startsWith('[CDATA[', hs.pos)) {
    hs.pos += 7;
    return stateCdata(hs);
  } else if (remaining >= 2 && hs.s.startsWith('--', hs.pos)) {
    hs.pos += 2;
    return stateComment(hs);
  }
  return stateBogusComment(hs);
}

/** Comments end at EOF, "-->" or "-!>" (NULs after the first dash ignored). */
function stateComment(hs: H5State): boolean {
  const end = hs.len;
  let pos = hs.pos;
  const eof = () => {
    hs.state = stateEof;
    hs.token(TAG_COMMENT, hs.pos, hs.len - hs.pos);
    return true;
  };
  for (;;) {
    const idx = find(hs, '-', pos);
    if (idx < 0 || idx > hs.len - 3) return eof();
    let offset = 1;
    while (idx + offset < end && hs.s.charCodeAt(idx + offset) === 0) offset += 1;
    if (idx + offset === end) return eof();
    let ch = hs.s[idx + offset];
    if (ch !== '-' && ch !== '!') {
      pos = idx + 1;
      continue;
    }
    offset += 1;
    if (idx + offset === end) return eof();
    ch = hs.s[idx + offset];
    if (ch !== '>') {
      pos = idx + 1;
      continue;
    }
    offset += 1;
    hs.token(TAG_COMMENT, hs.pos, idx - hs.pos);
    hs.pos = idx + offset;
    hs.state = stateData;
    return true;
  }
}

function stateCdata(hs: H5State): boolean {
  let pos = hs.pos;
  for (;;) {
    const idx = find(hs, ']', pos);
    if (idx < 0 || idx > hs.len - 3) {
      hs.state = stateEof;
      hs.token(DATA_TEXT, hs.pos, hs.len - hs.pos);
      return true;
    } else if (hs.s[idx + 1] === ']' && hs.s[idx + 2] === '>') {
      hs.state = stateData;
      hs.token(DATA_TEXT, hs.pos, idx - hs.pos);
      hs.pos = idx + 3;
      return true;
    }
    pos = idx + 1;
  }
}

function stateDoctype(hs: H5State): boolean {
  hs.tokenStart = hs.pos;
  hs.tokenType = DOCTYPE;
  const idx = find(hs, '>', hs.pos);
  if (idx < 0) {
    hs.state = stateEof;
    hs.tokenLen = hs.len - hs.pos;
  } else {
    hs.state = stateData;
    hs.tokenLen = idx - hs.pos;
    hs.pos = idx + 1;
  }
  return true;
}
