/**
 * Plugin chains: built once per route per config version (null phases when
 * empty), run as plain indexed loops; only handlers that return a promise are
 * awaited. Scope resolution follows Kong, most specific first:
 *   consumer+route+service > consumer+route > consumer+service > route+service
 *   > consumer > route > service > global
 * — one instance per plugin name; disabled instances fall back to the next scope.
 */
import type { HandlerResult, PdkContext, PluginDefinition, PluginHandlers } from '../pdk/index.ts';
import type { PluginConfig } from '../config/schema.ts';

export interface PluginInstance {
  readonly def: PluginDefinition;
  readonly entity: PluginConfig;
  readonly handlers: PluginHandlers;
  readonly service: string | null;
  readonly route: string | null;
  readonly consumer: string | null;
}

/** A phase: parallel arrays of handlers, their plugins' priorities and names. */
type Phase<F> = { fns: F[]; priorities: number[]; names: string[] } | null;
type StopFn = (ctx: PdkContext) => HandlerResult;
type VoidFn = (ctx: PdkContext) => void | Promise<void>;
type ResponseFn = (ctx: PdkContext) => HandlerResult;
type BodyFn = (ctx: PdkContext, body: Buffer | null) => HandlerResult;

export class Chain {
  readonly rewrite: Phase<StopFn>;
  readonly access: Phase<StopFn>;
  readonly response: Phase<ResponseFn>;
  readonly body: Phase<BodyFn>;
  readonly log: Phase<VoidFn>;
  readonly instances: readonly PluginInstance[];

  constructor(instances: PluginInstance[]) {
    const sorted = [...instances].sort((a, b) => b.def.priority - a.def.priority);
    this.instances = sorted;
    this.rewrite = phase(sorted, 'rewrite');
    this.access = phase(sorted, 'access');
    this.response = phase(sorted, 'response');
    this.body = phase(sorted, 'body');
    this.log = phase(sorted, 'log');
  }

  /** Same plugin instances in the same order? (to share chains between consumers) */
  equals(other: Chain): boolean {
    return this.instances.length === other.instances.length && this.instances.every((p, i) => p === other.instances[i]);
  }
}

function phase<K extends keyof PluginHandlers>(sorted: PluginInstance[], key: K): Phase<NonNullable<PluginHandlers[K]>> {
  const with_ = sorted.filter((p) => typeof p.handlers[key] === 'function');
  if (with_.length === 0) return null;
  return {
    fns: with_.map((p) => (p.handlers[key] as (...a: unknown[]) => unknown).bind(p.handlers) as NonNullable<PluginHandlers[K]>),
    priorities: with_.map((p) => p.def.priority),
    names: with_.map((p) => p.def.name),
  };
}

/** Rank of a scope; lower is more specific. */
function rank(p: PluginInstance): number {
  const c = p.consumer !== null, r = p.route !== null, s = p.service !== null;
  if (c && r && s) return 1;
  if (c && r) return 2;
  if (c && s) return 3;
  if (r && s) return 4;
  if (c) return 5;
  if (r) return 6;
  if (s) return 7;
  return 8;
}

export interface ScopeQuery {
  service: string;
  route: string;
  consumer: string | null;
  scheme: 'http' | 'https';
  routeExcludes: readonly string[];
  serviceExcludes: readonly string[];
}

/** The instances that apply to a request on this route (and consumer, when known). */
export function resolve(instances: readonly PluginInstance[], q: ScopeQuery): PluginInstance[] {
  const best = new Map<string, PluginInstance>();
  for (const p of instances) {
    if (!p.entity.protocols.includes(q.scheme)) continue; // disabled instances are never created
    if (p.service !== null && p.service !== q.service) continue;
    if (p.route !== null && p.route !== q.route) continue;
    if (p.consumer !== null && p.consumer !== q.consumer) continue;
    const r = rank(p);
    if (r >= 7 && q.routeExcludes.includes(p.def.name)) continue;
    if (r === 8 && q.serviceExcludes.includes(p.def.name)) continue;
    const cur = best.get(p.def.name);
    if (cur === undefined || r < rank(cur)) best.set(p.def.name, p);
  }
  return [...best.values()];
}

export function isPromise(v: unknown): v is Promise<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as Promise<unknown>).then === 'function';
}
