/**
 * Takes a request apart into the values each location holds (path segments,
 * query parameters, header values, cookies, JSON keys and strings, form
 * fields), decodes each one and runs the detectors. The first finding wins;
 * it names the location and the type, never the value. A value already found
 * clean in the same location is not inspected again (a JSON array of 10,000
 * identical strings costs one inspection).
 */
import { JsonScanner, NO_JSON_LIMITS } from '../../pdk/json-tokens.ts';
import { decodedForms, urlDecode } from './decode.ts';
import { detect, type Detector } from './detectors.ts';
import { traversalInPath } from './rules/traversal.ts';

/** Values up to this length are remembered when clean, at most MEMO_SIZE of them per location. */
const MEMO_LENGTH = 256;
const MEMO_SIZE = 4096;

export interface Finding {
  readonly location: string;
  readonly type: string;
}

/** The tests a body walk (XML, multipart, text) gives its values to; each returns the finding or null. */
export interface Visitors {
  value(value: string): string | null;
  name(value: string): string | null;
  /** A file name: any ".." segment or an absolute sensitive path is traversal, then the value tests. */
  filename(value: string): string | null;
  json(utf8: Buffer): string | null;
  params(raw: string): string | null;
}

export class Inspector {
  readonly #detectors: readonly Detector[];
  readonly #traversal: string | null;
  /** The type reported for XSS in markup (xss or js), or null when XSS is not looked for. */
  readonly xssType: string | null;
  readonly #visitors: Visitors;
  readonly #skipHeaders: ReadonlySet<string>;
  /** Values (and, prefixed with NUL, names) found clean during the current location's inspection. */
  readonly #clean = new Set<string>();

  constructor(detectors: readonly Detector[], skipHeaders: readonly string[]) {
    this.#detectors = detectors;
    this.#traversal = detectors.find((d) => d.type === 'path_traversal')?.type ?? null;
    this.#skipHeaders = new Set(['cookie', ...skipHeaders.map((h) => h.toLowerCase())]);
    this.xssType = detectors.find((d) => d.type === 'xss' || d.type === 'js')?.type ?? null;
    this.#visitors = {
      value: (v) => this.#value(v),
      name: (v) => this.#value(v, true),
      filename: (v) => this.#filename(v),
      json: (utf8) => this.#json(utf8),
      params: (raw) => this.#params(raw),
    };
  }

  /** A body walk: `run` gets the tests for its values; one memo of clean values for the whole walk. */
  walk<T>(run: (visit: Visitors) => T): T {
    return this.#scope(() => run(this.#visitors));
  }

  #filename(name: string): string | null {
    if (this.#traversal !== null) {
      for (const form of decodedForms(name)) if (traversalInPath(form)) return this.#traversal;
    }
    return this.#value(name);
  }

  #value(value: string, isName = false): string | null {
    if (value === '') return null;
    const key = value.length > MEMO_LENGTH ? null : isName ? `\0${value}` : value;
    if (key !== null && this.#clean.has(key)) return null;
    const found = detect(this.#detectors, decodedForms(value), isName);
    if (found === null && key !== null && this.#clean.size < MEMO_SIZE) this.#clean.add(key);
    return found;
  }

  /** One location's inspection: the memo of clean values lasts as long as it. */
  #scope<T>(inspect: () => T): T {
    try {
      return inspect();
    } finally {
      if (this.#clean.size > 0) this.#clean.clear();
    }
  }

  /** The raw request path (the core normalises ctx.request.path; what the client sent matters here). */
  path(target: string): string | null {
    let path = target;
    if (!path.startsWith('/')) {
      const scheme = path.indexOf('://');
      if (scheme < 0) return null;
      const slash = path.indexOf('/', scheme + 3);
      path = slash < 0 ? '/' : path.slice(slash);
    }
    const q = path.search(/[?#]/);
    if (q >= 0) path = path.slice(0, q);
    if (this.#traversal !== null) {
      for (const form of decodedForms(path)) if (traversalInPath(form)) return this.#traversal;
    }
    for (const segment of path.split('/')) {
      if (segment === '') continue;
      const found = this.#value(urlDecode(segment, false));
      if (found !== null) return found;
    }
    return null;
  }

  /** Parameter names and values of a query string or a form body. */
  params(raw: string): string | null {
    return raw === '' ? null : this.#scope(() => this.#params(raw));
  }

  #params(raw: string): string | null {
    for (const pair of raw.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const name = urlDecode(eq < 0 ? pair : pair.slice(0, eq), true);
      const found = this.#value(name, true) ?? (eq < 0 ? null : this.#value(urlDecode(pair.slice(eq + 1), true)));
      if (found !== null) return found;
    }
    return null;
  }

  /** Header values as received (name, value, name, value …), Cookie and skipped headers excepted. */
  headers(raw: readonly string[]): string | null {
    return this.#scope(() => this.#headers(raw));
  }

  #headers(raw: readonly string[]): string | null {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (this.#skipHeaders.has(raw[i]!.toLowerCase())) continue;
      const found = this.#value(raw[i + 1]!);
      if (found !== null) return found;
    }
    return null;
  }

  /** Each cookie's name and value (URL-decoded once: the usual way to put text in a cookie), from every Cookie header. */
  cookies(raw: readonly string[]): string | null {
    return this.#scope(() => this.#cookies(raw));
  }

  #cookies(raw: readonly string[]): string | null {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() !== 'cookie') continue;
      for (const pair of raw[i + 1]!.split(';')) {
        const eq = pair.indexOf('=');
        const value = urlDecode((eq < 0 ? pair : pair.slice(eq + 1)).trim(), false);
        const found = this.#value(value) ?? (eq < 0 ? null : this.#value(urlDecode(pair.slice(0, eq).trim(), false), true));
        if (found !== null) return found;
      }
    }
    return null;
  }

  /**
   * A JSON document: every entry name and every string, duplicates included,
   * in one pass over its UTF-8 bytes (src/pdk/json-tokens.ts). Not JSON: the
   * text as one value.
   */
  json(utf8: Buffer): string | null {
    return this.#scope(() => this.#json(utf8));
  }

  #json(utf8: Buffer): string | null {
    const hit: { type: string | null } = { type: null };
    const scanner = new JsonScanner(NO_JSON_LIMITS, (value, isName) => (hit.type = this.#value(value, isName)) !== null);
    const v = scanner.write(utf8) ?? scanner.end();
    if (v === null || hit.type !== null) return hit.type;
    return this.#value(utf8.toString('utf8'));
  }
}
