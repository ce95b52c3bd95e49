/**
 * A small strict parser and serializer for HTTP Structured Field Values
 * (RFC 8941): what RFC 9421 (Signature-Input, Signature, component
 * identifiers, `sf` / `key`) and RFC 9530 (Content-Digest) need. Parsing
 * follows RFC 8941 §4.2 exactly and throws SfError on any deviation;
 * serialization follows §4.1.
 */

export class SfError extends Error {}

export type BareItem =
  | { readonly t: 'int'; readonly v: number }
  | { readonly t: 'dec'; readonly v: number }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'tok'; readonly v: string }
  | { readonly t: 'bin'; readonly v: Buffer }
  | { readonly t: 'bool'; readonly v: boolean };

/** Parameters keep their order; a repeated key overwrites the earlier value in place (§4.2.3.2). */
export type Params = Map<string, BareItem>;

export interface Item {
  readonly kind: 'item';
  readonly value: BareItem;
  readonly params: Params;
}

export interface InnerList {
  readonly kind: 'inner';
  readonly items: Item[];
  readonly params: Params;
}

export type Member = Item | InnerList;
export type Dictionary = Map<string, Member>;

const TRUE: BareItem = { t: 'bool', v: true };

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isLcAlpha(c: number): boolean {
  return c >= 97 && c <= 122;
}
function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || isLcAlpha(c);
}
/** tchar (RFC 9110 §5.6.2). */
function isTchar(c: number): boolean {
  return isAlpha(c) || isDigit(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
}

class Parser {
  readonly s: string;
  i = 0;

  constructor(input: string) {
    // §4.2: the input is ASCII; leading and trailing SP are discarded.
    for (let k = 0; k < input.length; k++) {
      const c = input.charCodeAt(k);
      if (c > 0x7e || (c < 0x20 && c !== 0x09)) throw new SfError('non-ASCII or control character');
    }
    let a = 0;
    let b = input.length;
    while (a < b && input.charCodeAt(a) === 32) a++;
    while (b > a && input.charCodeAt(b - 1) === 32) b--;
    this.s = input.slice(a, b);
  }

  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): number {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }
  skipSp(): void {
    while (this.peek() === 32) this.i++;
  }
  skipOws(): void {
    for (let c = this.peek(); c === 32 || c === 9; c = this.peek()) this.i++;
  }
  end(): void {
    if (!this.done) throw new SfError(`unexpected character at ${this.i}`);
  }

  dictionary(): Dictionary {
    const out: Dictionary = new Map();
    while (!this.done) {
      const key = this.key();
      let member: Member;
      if (this.peek() === 61 /* = */) {
        this.i++;
        member = this.itemOrInnerList();
      } else {
        member = { kind: 'item', value: TRUE, params: this.params() };
      }
      out.set(key, member);
      this.skipOws();
      if (this.done) return out;
      if (this.peek() !== 44 /* , */) throw new SfError(`expected ',' at ${this.i}`);
      this.i++;
      this.skipOws();
      if (this.done) throw new SfError('trailing comma');
    }
    return out;
  }

  list(): Member[] {
    const out: Member[] = [];
    while (!this.done) {
      out.push(this.itemOrInnerList());
      this.skipOws();
      if (this.done) return out;
      if (this.peek() !== 44) throw new SfError(`expected ',' at ${this.i}`);
      this.i++;
      this.skipOws();
      if (this.done) throw new SfError('trailing comma');
    }
    return out;
  }

  itemOrInnerList(): Member {
    return this.peek() === 40 /* ( */ ? this.innerList() : this.item();
  }

  innerList(): InnerList {
    this.i++; // (
    const items: Item[] = [];
    while (!this.done) {
      this.skipSp();
      if (this.peek() === 41 /* ) */) {
        this.i++;
        return { kind: 'inner', items, params: this.params() };
      }
      items.push(this.item());
      const c = this.peek();
      if (c !== 32 && c !== 41) throw new SfError(`expected ' ' or ')' at ${this.i}`);
    }
    throw new SfError('unterminated inner list');
  }

  item(): Item {
    const value = this.bareItem();
    return { kind: 'item', value, params: this.params() };
  }

  bareItem(): BareItem {
    const c = this.peek();
    if (c === 45 /* - */ || isDigit(c)) return this.number();
    if (c === 34 /* " */) return this.string();
    if (c === 42 /* * */ || isAlpha(c)) return this.token();
    if (c === 58 /* : */) return this.bytes();
    if (c === 63 /* ? */) return this.boolean();
    throw new SfError(`unexpected item start at ${this.i}`);
  }

  params(): Params {
    const out: Params = new Map();
    while (this.peek() === 59 /* ; */) {
      this.i++;
      this.skipSp();
      const key = this.key();
      let value = TRUE;
      if (this.peek() === 61) {
        this.i++;
        value = this.bareItem();
      }
      out.set(key, value);
    }
    return out;
  }

  key(): string {
    const c = this.peek();
    if (!(isLcAlpha(c) || c === 42)) throw new SfError(`invalid key start at ${this.i}`);
    const start = this.i;
    for (let d = this.peek(); isLcAlpha(d) || isDigit(d) || d === 95 || d === 45 || d === 46 || d === 42; d = this.peek()) this.i++;
    return this.s.slice(start, this.i);
  }

  number(): BareItem {
    let sign = 1;
    if (this.peek() === 45) {
      sign = -1;
      this.i++;
    }
    if (!isDigit(this.peek())) throw new SfError('digit expected');
    const start = this.i;
    let dot = -1;
    while (!this.done) {
      const c = this.peek();
      if (isDigit(c)) this.i++;
      else if (c === 46 && dot < 0) {
        if (this.i - start > 12) throw new SfError('decimal too long');
        dot = this.i;
        this.i++;
      } else break;
      if (dot < 0 && this.i - start > 15) throw new SfError('integer too long');
      if (dot >= 0 && this.i - start > 16) throw new SfError('decimal too long');
    }
    const text = this.s.slice(start, this.i);
    if (dot < 0) return { t: 'int', v: sign * Number(text) };
    const frac = this.i - dot - 1;
    if (frac === 0 || frac > 3) throw new SfError('invalid decimal fraction');
    return { t: 'dec', v: sign * Number(text) };
  }

  string(): BareItem {
    this.i++; // "
    let out = '';
    while (!this.done) {
      const c = this.s.charCodeAt(this.i++);
      if (c === 92 /* \ */) {
        const n = this.peek();
        if (n !== 34 && n !== 92) throw new SfError('invalid escape');
        out += String.fromCharCode(n);
        this.i++;
      } else if (c === 34) {
        return { t: 'str', v: out };
      } else if (c < 0x20 || c > 0x7e) {
        throw new SfError('invalid string character');
      } else {
        out += String.fromCharCode(c);
      }
    }
    throw new SfError('unterminated string');
  }

  token(): BareItem {
    const start = this.i++;
    for (let c = this.peek(); c >= 0 && (isTchar(c) || c === 58 || c === 47); c = this.peek()) this.i++;
    return { t: 'tok', v: this.s.slice(start, this.i) };
  }

  bytes(): BareItem {
    const start = ++this.i;
    const end = this.s.indexOf(':', start);
    if (end < 0) throw new SfError('unterminated byte sequence');
    const b64 = this.s.slice(start, end);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw new SfError('invalid byte sequence');
    this.i = end + 1;
    return { t: 'bin', v: Buffer.from(b64, 'base64') };
  }

  boolean(): BareItem {
    this.i++; // ?
    const c = this.peek();
    if (c !== 48 && c !== 49) throw new SfError('invalid boolean');
    this.i++;
    return { t: 'bool', v: c === 49 };
  }
}

export function parseDictionary(input: string): Dictionary {
  const p = new Parser(input);
  const d = p.dictionary();
  p.end();
  return d;
}

export function parseList(input: string): Member[] {
  const p = new Parser(input);
  const l = p.list();
  p.end();
  return l;
}

export function parseItem(input: string): Item {
  const p = new Parser(input);
  const it = p.item();
  p.end();
  return it;
}

// ---- serialization (RFC 8941 §4.1) ----

export function serializeBareItem(b: BareItem): string {
  switch (b.t) {
    case 'int':
      if (!Number.isInteger(b.v) || Math.abs(b.v) > 999_999_999_999_999) throw new SfError('integer out of range');
      return String(b.v);
    case 'dec': {
      const r = Math.round(b.v * 1000) / 1000;
      if (Math.abs(Math.trunc(r)) > 999_999_999_999) throw new SfError('decimal out of range');
      const s = String(r);
      return s.includes('.') ? s : `${s}.0`;
    }
    case 'str':
      for (let i = 0; i < b.v.length; i++) {
        const c = b.v.charCodeAt(i);
        if (c < 0x20 || c > 0x7e) throw new SfError('invalid string character');
      }
      return `"${b.v.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
    case 'tok':
      return b.v;
    case 'bin':
      return `:${b.v.toString('base64')}:`;
    case 'bool':
      return b.v ? '?1' : '?0';
  }
}

export function serializeParams(params: Params): string {
  let out = '';
  for (const [k, v] of params) out += v.t === 'bool' && v.v ? `;${k}` : `;${k}=${serializeBareItem(v)}`;
  return out;
}

export function serializeItem(item: Item): string {
  return serializeBareItem(item.value) + serializeParams(item.params);
}

export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map(serializeItem).join(' ')})${serializeParams(list.params)}`;
}

export function serializeMember(m: Member): string {
  return m.kind === 'inner' ? serializeInnerList(m) : serializeItem(m);
}

export function serializeList(list: readonly Member[]): string {
  return list.map(serializeMember).join(', ');
}

export function serializeDictionary(dict: Dictionary): string {
  const parts: string[] = [];
  for (const [k, m] of dict) {
    parts.push(m.kind === 'item' && m.value.t === 'bool' && m.value.v ? k + serializeParams(m.params) : `${k}=${serializeMember(m)}`);
  }
  return parts.join(', ');
}
