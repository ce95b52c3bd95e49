/**
 * Takes a request apart into the values each location holds (path segments,
 * query parameters, header values, cookies, JSON keys and strings, form
 * fields), decodes each one and runs the detectors. The first finding wins;
 * it names the location and the type, never the value.
 */
import { decodedForms, urlDecode } from './decode.ts';
import { detect, type Detector } from './detectors.ts';
import { traversalInPath } from './rules/traversal.ts';

export interface Finding {
  readonly location: string;
  readonly type: string;
}

export class Inspector {
  readonly #detectors: readonly Detector[];
  readonly #traversal: string | null;
  readonly #skipHeaders: ReadonlySet<string>;

  constructor(detectors: readonly Detector[], skipHeaders: readonly string[]) {
    this.#detectors = detectors;
    this.#traversal = detectors.find((d) => d.type === 'path_traversal')?.type ?? null;
    this.#skipHeaders = new Set(['cookie', ...skipHeaders.map((h) => h.toLowerCase())]);
  }

  #value(value: string, isName = false): string | null {
    return value === '' ? null : detect(this.#detectors, decodedForms(value), isName);
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
    if (raw === '') return null;
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
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (this.#skipHeaders.has(raw[i]!.toLowerCase())) continue;
      const found = this.#value(raw[i + 1]!);
      if (found !== null) return found;
    }
    return null;
  }

  /** Each cookie's name and value (URL-decoded once: the usual way to put text in a cookie), from every Cookie header. */
  cookies(raw: readonly string[]): string | null {
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

  /** A JSON document: every key and every string, walked without recursion. Not JSON: the text as one value. */
  json(text: string): string | null {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return this.#value(text);
    }
    const stack: unknown[] = [doc];
    while (stack.length > 0) {
      const v = stack.pop();
      if (typeof v === 'string') {
        const found = this.#value(v);
        if (found !== null) return found;
      } else if (Array.isArray(v)) {
        for (const item of v) if (item !== null && typeof item !== 'number' && typeof item !== 'boolean') stack.push(item);
      } else if (v !== null && typeof v === 'object') {
        for (const [key, item] of Object.entries(v)) {
          const found = this.#value(key, true);
          if (found !== null) return found;
          if (item !== null && typeof item !== 'number' && typeof item !== 'boolean') stack.push(item);
        }
      }
    }
    return null;
  }
}
