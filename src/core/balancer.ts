/**
 * Load balancing over weighted targets: smooth weighted round-robin (nginx's),
 * least-connections, and consistent hashing (weighted rendezvous); with passive health
 * (ejection after failures seen in traffic). Active probing lives in health.ts.
 */
import type { UpstreamConfig } from '../config/schema.ts';

export class Target {
  readonly host: string;
  readonly port: number;
  /** host:port, IPv6 in brackets. */
  readonly address: string;
  readonly weight: number;
  healthy = true;
  active = 0;
  current = 0;
  /** Consecutive failure / success counters per kind (Kong's health counters). */
  tcpFailures = 0;
  timeouts = 0;
  httpFailures = 0;
  successes = 0;

  constructor(address: string, weight: number) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
    this.host = m?.[1] ?? address;
    this.port = m?.[2] ? Number(m[2]) : 8000;
    this.address = this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
    this.weight = weight;
  }
}

export type HealthEvent = 'success' | 'tcp_failure' | 'timeout' | 'http_failure';

/** murmur3's 32-bit finaliser: a bijection where every input bit flips half the output bits. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a, then mixed: keys that differ in one character get unrelated hashes. */
function hashKey(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix(h);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Balancer {
  readonly name: string;
  readonly targets: Target[];
  readonly config: UpstreamConfig | null;
  /** What consistent hashing hashes (null: not consistent hashing); header name lower-cased; cookie matcher compiled. */
  readonly hashOn: UpstreamConfig['hash_on'] | null;
  readonly hashHeader: string;
  readonly hashQueryArg: string;
  readonly #hashCookie: RegExp | null;
  readonly #algorithm: UpstreamConfig['algorithm'];
  /** Per-target seeds for rendezvous hashing (index = index in targets). */
  readonly #seeds: Uint32Array;
  readonly #totalWeight: number;
  readonly #threshold: number;
  /** Sum of the weights of the healthy targets, kept by setHealth() (read on every pick). */
  #healthyWeight: number;
  /** Passive-health thresholds; 0 disables a counter. */
  readonly #unhealthy: { tcp: number; timeouts: number; http: number; statuses: Set<number> };
  readonly #healthyPassive: { successes: number; statuses: Set<number> };

  constructor(name: string, targets: Target[], config: UpstreamConfig | null) {
    this.name = name;
    this.targets = targets.filter((t) => t.weight > 0);
    this.config = config;
    this.#algorithm = config?.algorithm ?? 'round-robin';
    this.hashOn = config !== null && config.algorithm === 'consistent-hashing' && config.hash_on !== 'none' ? config.hash_on : null;
    this.hashHeader = config?.hash_on_header?.toLowerCase() ?? '';
    this.hashQueryArg = config?.hash_on_query_arg ?? '';
    this.#hashCookie = config?.hash_on_cookie ? new RegExp(`(?:^|;)\\s*${escapeRegExp(config.hash_on_cookie)}=([^;]*)`) : null;
    this.#totalWeight = this.targets.reduce((s, t) => s + t.weight, 0);
    this.#healthyWeight = this.#totalWeight;
    this.#threshold = config?.healthchecks.threshold ?? 0;
    const passive = config?.healthchecks.passive;
    this.#unhealthy = {
      tcp: passive?.unhealthy.tcp_failures ?? 0,
      timeouts: passive?.unhealthy.timeouts ?? 0,
      http: passive?.unhealthy.http_failures ?? 0,
      statuses: new Set(passive?.unhealthy.http_statuses ?? []),
    };
    this.#healthyPassive = { successes: passive?.healthy.successes ?? 0, statuses: new Set(passive?.healthy.http_statuses ?? []) };
    // Consistent hashing is weighted rendezvous hashing (HRW): each key scores every target and the best
    // healthy one wins. A target's score depends only on the key and that target, so adding or removing a
    // target moves only the keys that target wins or held, and shares follow the weights exactly, with no
    // ring to size (`slots` is accepted for Kong compatibility and not needed).
    this.#seeds = Uint32Array.from(this.targets, (t) => hashKey(t.address));
  }

  /** Whether enough weight is healthy (upstream threshold, percent). */
  get available(): boolean {
    const healthy = this.#healthyWeight;
    if (healthy === 0) return false;
    return this.#threshold === 0 || (healthy * 100) / this.#totalWeight >= this.#threshold;
  }

  /** Picks a healthy target, avoiding `exclude` (already tried) when possible. */
  pick(hashKey: string | null, exclude: Target | null): Target | null {
    const ts = this.targets;
    if (ts.length === 1) return ts[0]!.healthy ? ts[0]! : null;
    if (!this.available) return null;
    if (this.#algorithm === 'consistent-hashing' && hashKey !== null) return this.#pickHash(hashKey, exclude);
    if (this.#algorithm === 'least-connections') {
      let best: Target | null = null;
      let bestScore = Infinity;
      for (const t of ts) {
        if (!t.healthy || t === exclude) continue;
        const score = (t.active + 1) / t.weight;
        if (score < bestScore) {
          bestScore = score;
          best = t;
        }
      }
      return best;
    }
    // Smooth weighted round-robin.
    let best: Target | null = null;
    let total = 0;
    for (const t of ts) {
      if (!t.healthy || t === exclude) continue;
      t.current += t.weight;
      total += t.weight;
      if (best === null || t.current > best.current) best = t;
    }
    if (best !== null) best.current -= total;
    return best;
  }

  #pickHash(key: string, exclude: Target | null): Target | null {
    const ts = this.targets;
    const k = hashKey(key);
    let best: Target | null = null;
    let bestScore = Infinity;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (!t.healthy || t === exclude) continue;
      // -ln(u) / weight with u uniform in (0, 1): the smallest wins, each target with probability weight / total.
      const score = -Math.log((mix(k ^ this.#seeds[i]!) + 0.5) / 4294967296) / t.weight;
      if (score < bestScore) {
        bestScore = score;
        best = t;
      }
    }
    return best;
  }

  /** The value of the hashed cookie in a Cookie header, or null. */
  cookieValue(cookie: string | undefined): string | null {
    if (cookie === undefined || this.#hashCookie === null) return null;
    const m = this.#hashCookie.exec(cookie);
    return m === null ? null : m[1]!;
  }

  /** Passive health: record what a proxied request saw. */
  report(t: Target, event: HealthEvent, status = 0): void {
    if (this.config === null) return;
    if (event === 'success') {
      if (this.#unhealthy.http > 0 && this.#unhealthy.statuses.has(status)) return this.#fail(t, 'http_failure');
      if (this.#healthyPassive.statuses.has(status)) {
        t.tcpFailures = t.timeouts = t.httpFailures = 0;
        if (!t.healthy && this.#healthyPassive.successes > 0 && ++t.successes >= this.#healthyPassive.successes) this.setHealth(t, true);
      }
      return;
    }
    this.#fail(t, event);
  }

  #fail(t: Target, event: HealthEvent): void {
    t.successes = 0;
    const u = this.#unhealthy;
    if (event === 'tcp_failure' && u.tcp > 0 && ++t.tcpFailures >= u.tcp) this.setHealth(t, false);
    else if (event === 'timeout' && u.timeouts > 0 && ++t.timeouts >= u.timeouts) this.setHealth(t, false);
    else if (event === 'http_failure' && u.http > 0 && ++t.httpFailures >= u.http) this.setHealth(t, false);
  }

  setHealth(t: Target, healthy: boolean): void {
    if (t.healthy !== healthy) this.#healthyWeight += healthy ? t.weight : -t.weight;
    t.healthy = healthy;
    t.tcpFailures = t.timeouts = t.httpFailures = t.successes = 0;
  }

  /** Carry health over from the previous config version (same upstream, same target). */
  inherit(previous: Balancer): void {
    for (const t of this.targets) {
      const old = previous.targets.find((o) => o.address === t.address);
      if (old) this.setHealth(t, old.healthy);
    }
  }
}
