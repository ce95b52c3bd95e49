/**
 * Finds template expressions — {{ }}, ${ }, #{ } *{ } @{ } ~{ }, <% %>, {% %},
 * [[ ]], @( ), {php …}, {system …}, {$smarty …} — and hands each body (at
 * most 400 characters, the first closer after the opener) to a test.
 *
 * One pass over the text with indexOf for the closers, each closer's next
 * position remembered: linear in the length whatever the text holds (a
 * megabyte of "{{" or "[[" costs a few milliseconds). The regular expression
 * it replaces (lazy 400-character bodies in eight alternatives) cost 700 ms
 * on such a megabyte.
 */

const MAX_BODY = 400;

const LBRACE = 0x7b;
const DOLLAR = 0x24;
const HASH = 0x23;
const STAR = 0x2a;
const AT = 0x40;
const TILDE = 0x7e;
const LT = 0x3c;
const LBRACKET = 0x5b;
const LPAREN = 0x28;
const PERCENT = 0x25;

/** The next position of each closer at or after a position that (almost) only grows. */
class Closers {
  readonly #text: string;
  readonly #from = new Map<string, number>();
  readonly #at = new Map<string, number>();

  constructor(text: string) {
    this.#text = text;
  }

  /** Index of the first `closer` at or after `from`, or -1. */
  find(closer: string, from: number): number {
    const text = this.#text;
    const start = this.#from.get(closer);
    if (start !== undefined) {
      const at = this.#at.get(closer)!;
      if (start <= from && (at === -1 || at >= from)) return at;
      if (start > from && (at === -1 || at >= start)) {
        // A few characters before the last search: look only there.
        const near = text.slice(from, start + closer.length - 1).indexOf(closer);
        if (near >= 0) return from + near;
        return at;
      }
    }
    const at = text.indexOf(closer, from);
    this.#from.set(closer, from);
    this.#at.set(closer, at);
    return at;
  }
}

const isWord = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;

/** {php, {system, {$smarty followed by a word boundary: the body's start, or -1. */
function smartyTag(s: string, q: number): number {
  for (const word of ['php', 'system', '$smarty']) {
    if (s.startsWith(word, q + 1)) {
      const end = q + 1 + word.length;
      return end < s.length && isWord(s.charCodeAt(end)) ? -1 : end;
    }
  }
  return -1;
}

/** Does some template expression of `s` have a body for which `test` is true? */
export function someTemplateBody(s: string, test: (body: string) => boolean): boolean {
  const closers = new Closers(s);
  const n = s.length;
  // The body [start, end) of an expression that closes with `closer`, at least `min` characters long; its end or -1.
  const close = (start: number, closer: string, min: number): number => {
    const at = closers.find(closer, start + min);
    return at >= 0 && at - start <= MAX_BODY ? at : -1;
  };
  let q = 0;
  while (q < n - 1) {
    const c = s.charCodeAt(q);
    const c1 = s.charCodeAt(q + 1);
    let start = -1;
    let end = -1;
    let closer = '';
    if (c === LBRACE) {
      if (c1 === LBRACE) end = close((start = q + 2), (closer = '}}'), 1);
      if (end < 0 && c1 === PERCENT) end = close((start = q + 2), (closer = '%}'), 1);
      if (end < 0 && (start = smartyTag(s, q)) >= 0) end = close(start, (closer = '}'), 0);
    } else if (c1 === LBRACE && (c === DOLLAR || c === HASH || c === STAR || c === AT || c === TILDE)) {
      start = c === DOLLAR && s.charCodeAt(q + 2) === LBRACE ? q + 3 : q + 2;
      end = close(start, (closer = '}'), 1);
    } else if (c === LT && c1 === PERCENT) {
      const c2 = s.charCodeAt(q + 2);
      start = c2 === 0x3d || c2 === 0x2d || c2 === HASH ? q + 3 : q + 2;
      end = close(start, (closer = '%>'), 1);
    } else if (c === LBRACKET && c1 === LBRACKET) {
      end = close((start = q + 2), (closer = ']]'), 1);
    } else if (c === AT && c1 === LPAREN) {
      end = close((start = q + 2), (closer = ')'), 1);
    }
    if (end >= 0) {
      if (test(s.slice(start, end))) return true;
      q = end + closer.length;
    } else q++;
  }
  return false;
}
