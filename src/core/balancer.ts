/**
 * Load balancing over weighted targets: smooth weighted round-robin (nginx's),
 * least-connections, and consistent hashing on a ring; with passive health
 * (ejection after failures seen in traffic). Active probing lives in health.ts.
 */
import { createHash } from 'node:crypto';
import type { UpstreamConfig } from '../config/schema.ts';

export class Target {
  readonly host: string;
  readonly port: number;
  /** host:port, IPv6 in brackets. */
  readonly address: string;
  readonly weight: number;
  /** The pool key / origin used by the proxy. */
  readonly origin: string;
  healthy = true;
  active = 0;
  current = 0;
  /** Consecutive failure / success counters per kind (Kong's health counters). */
  tcpFailures = 0;
  timeouts = 0;
  httpFailures = 0;
  successes = 0;

  constructor(address: string, weight: number, protocol: 'http' | 'https') {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
    this.host = m?.[1] ?? address;
    this.port = m?.[2] ? Number(m[2]) : 8000;
    this.address = this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
    this.weight = weight;
    this.origin = `${protocol}://${this.address}`;
  }
}

export type HealthEvent = 'success' | 'tcp_failure' | 'timeout' | 'http_failure';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Balancer {
  readonly name: string;
  readonly targets: Target[];
  readonly config: UpstreamConfig | null;
  readonly #algorithm: UpstreamConfig['algorithm'];
  readonly #ring: Uint32Array;
  readonly #ringTargets: Target[];
  readonly #totalWeight: number;
  /** Passive-health thresholds; 0 disables a counter. */
  readonly #unhealthy: { tcp: number; timeouts: number; http: number; statuses: Set<number> };
  readonly #healthyPassive: { successes: number; statuses: Set<number> };

  constructor(name: string, targets: Target[], config: UpstreamConfig | null) {
    this.name = name;
    this.targets = targets.filter((t) => t.weight > 0);
    this.config = config;
    this.#algorithm = config?.algorithm ?? 'round-robin';
    this.#totalWeight = this.targets.reduce((s, t) => s + t.weight, 0);
    const passive = config?.healthchecks.passive;
    this.#unhealthy = {
      tcp: passive?.unhealthy.tcp_failures ?? 0,
      timeouts: passive?.unhealthy.timeouts ?? 0,
      http: passive?.unhealthy.http_failures ?? 0,
      statuses: new Set(passive?.unhealthy.http_statuses ?? []),
    };
    this.#healthyPassive = { successes: passive?.healthy.successes ?? 0, statuses: new Set(passive?.healthy.http_statuses ?? []) };
    const points: [number, Target][] = [];
    if (this.#algorithm === 'consistent-hashing' && this.#totalWeight > 0) {
      const slots = config?.slots ?? 10000;
      for (const t of this.targets) {
        const n = Math.max(1, Math.round((slots * t.weight) / this.#totalWeight));
        for (let i = 0; i < n; i++) points.push([createHash('md5').update(`${t.address}#${i}`).digest().readUInt32BE(0), t]);
      }
      points.sort((a, b) => a[0] - b[0]);
    }
    this.#ring = Uint32Array.from(points.map((p) => p[0]));
    this.#ringTargets = points.map((p) => p[1]);
  }

  /** Whether enough weight is healthy (upstream threshold, percent). */
  get available(): boolean {
    const threshold = this.config?.healthchecks.threshold ?? 0;
    let healthy = 0;
    for (const t of this.targets) if (t.healthy) healthy += t.weight;
    if (healthy === 0) return false;
    return threshold === 0 || (healthy * 100) / this.#totalWeight >= threshold;
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
    const ring = this.#ring;
    if (ring.length === 0) return null;
    const h = fnv1a(key);
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < ring.length; i++) {
      const t = this.#ringTargets[(lo + i) % ring.length]!;
      if (t.healthy && t !== exclude) return t;
    }
    return null;
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
    t.healthy = healthy;
    t.tcpFailures = t.timeouts = t.httpFailures = t.successes = 0;
  }

  /** Carry health over from the previous config version (same upstream, same target). */
  inherit(previous: Balancer): void {
    for (const t of this.targets) {
      const old = previous.targets.find((o) => o.address === t.address);
      if (old) t.healthy = old.healthy;
    }
  }
}
