/**
 * Path templates ("/pets/{petId}", "/files/{name}.{ext}") compiled once into
 * a tree of segments. A request path is split on "/" and walked: a literal
 * segment wins over a template segment (OpenAPI: concrete paths match
 * first), a mixed segment ("{name}.json") over a whole-segment parameter,
 * with backtracking. Mixed segments use a regular expression built when the
 * template is added, never per request.
 */

interface ParamSegment<T> {
  /** Names of the parameters, in order. */
  readonly names: readonly string[];
  /** null = the whole segment is one parameter. */
  readonly regex: RegExp | null;
  readonly node: Node<T>;
}

class Node<T> {
  readonly literal = new Map<string, Node<T>>();
  readonly mixed: ParamSegment<T>[] = [];
  whole: ParamSegment<T> | null = null;
  value: T | undefined = undefined;
}

export interface PathMatch<T> {
  readonly value: T;
  /** Raw (still percent-encoded) text of each path parameter. */
  readonly params: Record<string, string>;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class PathMatcher<T> {
  readonly #root = new Node<T>();

  /** Add a template; returns false when the same template (same shape) is already there. */
  add(template: string, value: T): boolean {
    let node = this.#root;
    for (const seg of template.split('/').slice(1)) {
      if (!seg.includes('{')) {
        let next = node.literal.get(seg);
        if (!next) node.literal.set(seg, (next = new Node<T>()));
        node = next;
        continue;
      }
      const names = [...seg.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      if (names.length === 1 && seg === `{${names[0]}}`) {
        node.whole ??= { names, regex: null, node: new Node<T>() };
        node = node.whole.node;
        continue;
      }
      const parts = seg.split(/\{[^}]+\}/);
      const source = parts.map(escapeRe).join('(.+?)');
      let m = node.mixed.find((x) => x.regex!.source === `^${source}$`);
      if (!m) node.mixed.push((m = { names, regex: new RegExp(`^${source}$`), node: new Node<T>() }));
      node = m.node;
    }
    if (node.value !== undefined) return false;
    node.value = value;
    return true;
  }

  /** The template matching a path (without query string), or null. */
  match(path: string): PathMatch<T> | null {
    const segments = path.split('/');
    const params: Record<string, string> = {};
    const found = this.#walk(this.#root, segments, 1, params);
    return found === undefined ? null : { value: found, params };
  }

  #walk(node: Node<T>, segs: readonly string[], i: number, params: Record<string, string>): T | undefined {
    if (i === segs.length) return node.value;
    const seg = segs[i]!;
    const lit = node.literal.get(seg);
    if (lit) {
      const v = this.#walk(lit, segs, i + 1, params);
      if (v !== undefined) return v;
    }
    if (seg === '') return undefined;
    for (const m of node.mixed) {
      const r = m.regex!.exec(seg);
      if (!r) continue;
      const v = this.#walk(m.node, segs, i + 1, params);
      if (v !== undefined) {
        m.names.forEach((name, k) => (params[name] = r[k + 1]!));
        return v;
      }
    }
    if (node.whole) {
      const v = this.#walk(node.whole.node, segs, i + 1, params);
      if (v !== undefined) {
        params[node.whole.names[0]!] = seg;
        return v;
      }
    }
    return undefined;
  }
}
