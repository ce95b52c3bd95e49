/**
 * The verified-token cache: a bounded LRU approximated by two generations
 * (a "young" and an "old" Map of at most max/2 entries each). A hit in the
 * old generation is promoted to the young one; when the young one is full it
 * becomes the old one and the previous old one is dropped whole.
 *
 * Why not one Map with delete + re-insert on every hit (the textbook Map
 * LRU)? Measured in V8 (bench-verify.ts), delete + set on a Map of 10,000
 * entries costs tens of µs per call — more than verifying an RS256
 * signature — while two generations cost two lookups at most and never
 * delete. The bound is the same: at most `max` entries are held.
 */
export class TokenCache<V> {
  readonly #half: number;
  #young = new Map<string, V>();
  #old = new Map<string, V>();

  constructor(max: number) {
    this.#half = Math.max(1, Math.ceil(max / 2));
  }

  get(key: string): V | undefined {
    const v = this.#young.get(key);
    if (v !== undefined) return v;
    const o = this.#old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    if (this.#young.size >= this.#half && !this.#young.has(key)) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, value);
  }

  /** Entries held (both generations; a promoted key may be counted twice). */
  get size(): number {
    return this.#young.size + this.#old.size;
  }
}
