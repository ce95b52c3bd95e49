/**
 * RuntimeConfig: the immutable compiled form of one config version — router,
 * per-route plugin chains, balancers and pools, TLS contexts. A reload builds a
 * new one beside the old and swaps one reference; requests in flight keep the
 * one they started with.
 */
import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ConsumerConfig, PalisadeConfig, RouteConfig, ServerConfig, ServiceConfig } from '../config/schema.ts';
import { parseServiceUrl, refName } from '../config/semantics.ts';
import { configError, pluginEntities } from '../config/load.ts';
import { allPlugins, getPlugin } from '../plugins/registry.ts';
import type { ConsumerDirectory, CounterStore, CredentialEntry, PdkConsumer, PdkEntityRef, PluginHandlers, PluginServices } from '../pdk/index.ts';
import { Balancer, Target } from './balancer.ts';
import { ActiveHealthChecker } from './health.ts';
import { Chain, resolve, type PluginInstance } from './pipeline.ts';
import type { PoolRegistry, UpstreamPool } from './pools.ts';
import { Router } from './router.ts';
import { TrustedIps } from './trusted.ts';
import { RedisHandle } from '../shared-state/redis.ts';
import { GatewayMetrics, upstreamTargetHealth } from '../telemetry/metrics.ts';

/** Stable UUID-shaped id from an entity kind and name (ids stay equal across nodes and reloads). */
function stableId(kind: string, name: string): string {
  const h = createHash('sha1').update(`palisade:${kind}:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** host[:port] for a Host header: the port left out when it is the protocol's default, IPv6 in brackets. */
function authority(host: string, port: number, defaultPort: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}

export interface ServiceRuntime {
  readonly ref: PdkEntityRef;
  readonly config: ServiceConfig;
  readonly path: string | undefined;
  /** Host header sent to each target when preserve_host is off: the upstream's host_header, else the target's own host[:port] (Kong). */
  readonly hostHeaders: ReadonlyMap<Target, string>;
  readonly retries: number;
  readonly readTimeout: number;
  readonly balancer: Balancer;
  readonly pools: Map<Target, UpstreamPool>;
}

export interface RouteRuntime {
  readonly ref: PdkEntityRef;
  readonly config: RouteConfig;
  readonly service: ServiceRuntime;
  readonly chains: { http: Chain; https: Chain };
  /** Chains for consumers that have consumer-scoped plugins (only where they differ). */
  readonly consumerChains: Map<string, { http: Chain; https: Chain }> | null;
}

export type Settings = Required<Pick<ServerConfig,
  'trusted_ips' | 'via' | 'request_id_header' | 'max_header_size' | 'headers_timeout' | 'request_timeout' | 'keepalive_timeout' |
  'keepalive_requests' | 'upstream_keepalive_pool_size' | 'upstream_keepalive_idle_timeout' | 'shutdown_timeout' | 'access_log' | 'log_level' | 'watch' |
  'response_buffer_limit'>>;

export class RuntimeConfig {
  readonly version: string;
  readonly config: PalisadeConfig;
  readonly settings: Settings;
  readonly router: Router;
  readonly routes: RouteRuntime[];
  readonly services: ServiceRuntime[];
  readonly globalChains: { http: Chain; https: Chain };
  readonly trusted: TrustedIps;
  readonly consumers: Map<string, PdkConsumer>;
  readonly balancers: Map<string, Balancer>;
  /** SNI (exact, *.suffix or prefix.*) → TLS context; `default` is the first certificate. */
  readonly tls: {
    exact: Map<string, SecureContext>;
    wildcard: [string, SecureContext][];
    default: SecureContext | null;
    /** Client-certificate policy of each context. */
    verify: Map<SecureContext, 'off' | 'optional' | 'required'>;
    /** Some certificate has client_verify: required (the listener then checks Host against SNI). */
    required: boolean;
  };
  readonly #checkers: ActiveHealthChecker[] = [];
  readonly #handlers: PluginHandlers[] = [];
  /** Query parameter names (lower-case) that plugins of this version read secrets from: redacted in the access log. */
  readonly sensitiveQuery = new Set<string>();
  /** Header names (lower-case) that plugins of this version read secrets from: redacted by the log plugins. */
  readonly sensitiveHeaders = new Set<string>();
  /** Some plugin of this version wants per-plugin phase timings on the context (tracing). */
  readonly tracePhases: boolean;
  /** The metrics view of this version's plugins (their scrape-time gauge fills end with it). */
  readonly #metrics: ReturnType<GatewayMetrics['scope']>;
  readonly #pools: PoolRegistry;
  /** Redis stores plugins of this version use (released when it is retired). */
  readonly #redis: RedisHandle[] = [];

  constructor(config: PalisadeConfig, pools: PoolRegistry, log: Logger, previous: RuntimeConfig | null, counters: CounterStore, metrics?: GatewayMetrics) {
    this.config = config;
    this.#pools = pools;
    this.version = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
    const s = config.server;
    this.settings = { ...s, request_id_header: s.request_id_header.toLowerCase() } as Settings;
    this.trusted = new TrustedIps(s.trusted_ips);

    this.consumers = new Map();
    const byRef = new Map<string, PdkConsumer>();
    const credentials = new Map<string, CredentialEntry[]>();
    for (const p of allPlugins()) if (p.credential) credentials.set(p.credential.field, []);
    for (const c of config.consumers) {
      const id = c.id ?? stableId('consumer', c.username ?? c.custom_id!);
      const groups = c.groups.map((g) => (typeof g === 'string' ? g : g.name));
      const consumer: PdkConsumer = Object.freeze({ id, username: c.username ?? null, custom_id: c.custom_id ?? null, tags: c.tags, groups });
      this.consumers.set(id, consumer);
      for (const ref of [id, c.username, c.custom_id]) if (ref !== undefined && !byRef.has(ref)) byRef.set(ref, consumer);
      for (const [field, list] of credentials) {
        for (const [i, cred] of (((c as ConsumerConfig)[field] as Record<string, unknown>[] | undefined) ?? []).entries()) {
          list.push({ consumer, credential: { ...cred, id: (cred.id as string | undefined) ?? stableId(field, `${id}#${i}`) } });
        }
      }
    }
    const consumerId = (ref: string) => byRef.get(ref)?.id ?? ref;
    const byField = { username: new Map<string, PdkConsumer>(), custom_id: new Map<string, PdkConsumer>() };
    for (const c of this.consumers.values()) {
      if (c.username !== null) byField.username.set(c.username, c);
      if (c.custom_id !== null) byField.custom_id.set(c.custom_id, c);
    }
    const directory: ConsumerDirectory = {
      find: (ref) => byRef.get(ref) ?? null,
      findBy: (field, value) => byField[field].get(value) ?? null,
      all: () => [...this.consumers.values()],
    };
    const memo = new Map<string, unknown>();

    this.balancers = new Map();
    for (const u of config.upstreams) {
      const b = new Balancer(u.name, u.targets.map((t) => new Target(t.target, t.weight)), u);
      const old = previous?.balancers.get(u.name);
      if (old) b.inherit(old);
      this.balancers.set(u.name, b);
    }

    const services = new Map<string, ServiceRuntime>();
    this.services = [];
    const serviceList: [ServiceConfig, ServiceRuntime][] = [];
    for (const [i, sc] of config.services.entries()) {
      const rt = this.#service(sc, i, s);
      serviceList.push([sc, rt]);
      this.services.push(rt);
      services.set(sc.name ?? rt.ref.id, rt);
      if (sc.id) services.set(sc.id, rt);
    }

    // Plugin instances: created once per config version.
    const routeIds = new Map<RouteConfig, string>();
    const routeByName = new Map<string, string>();
    const allRoutes: [RouteConfig, ServiceRuntime][] = [];
    for (const [sc, rt] of serviceList) for (const r of sc.routes) allRoutes.push([r, rt]);
    for (const r of config.routes) allRoutes.push([r, services.get(refName(r.service)!)!]);
    for (const [i, [r, svc]] of allRoutes.entries()) {
      const id = r.id ?? stableId('route', r.name ?? `${svc.ref.id}#${i}`);
      routeIds.set(r, id);
      routeByName.set(r.name ?? id, id);
      if (r.id) routeByName.set(r.id, id);
    }
    const instances: PluginInstance[] = [];
    this.#metrics = (metrics ?? GatewayMetrics.detached()).scope(() => upstreamTargetHealth(this.balancers));
    let tracePhases = false;
    const ownerOf = new Map<object, { service?: string; route?: string; consumer?: string }>();
    for (const [sc, rt] of serviceList) {
      for (const p of sc.plugins) ownerOf.set(p, { service: rt.ref.id });
      for (const r of sc.routes) for (const p of r.plugins) ownerOf.set(p, { route: routeIds.get(r)! });
    }
    for (const r of config.routes) for (const p of r.plugins) ownerOf.set(p, { route: routeIds.get(r)! });
    for (const c of config.consumers) for (const p of c.plugins) ownerOf.set(p, { consumer: consumerId(c.username ?? c.custom_id!) });
    for (const [entity, pointer] of pluginEntities(config)) {
      if (!entity.enabled) continue;
      const def = getPlugin(entity.name)!;
      // Where it is nested, completed by its own references (decK: a plugin nested under a route may name a consumer).
      const nested = ownerOf.get(entity);
      const owner = {
        service: nested?.service ?? (entity.service !== undefined ? services.get(refName(entity.service)!)?.ref.id : undefined),
        route: nested?.route ?? (entity.route !== undefined ? routeByName.get(refName(entity.route)!) : undefined),
        consumer: nested?.consumer ?? (entity.consumer !== undefined ? consumerId(refName(entity.consumer)!) : undefined),
      };
      const pluginServices: PluginServices = {
        logger: log.child({ plugin: def.name }),
        consumers: directory,
        credentials: def.credential ? credentials.get(def.credential.field)! : [],
        memo: <T>(key: string, build: () => T): T => {
          const k = `${def.name}:${key}`;
          if (!memo.has(k)) memo.set(k, build());
          return memo.get(k) as T;
        },
        counters,
        sensitiveQuery: this.sensitiveQuery,
        sensitiveHeaders: this.sensitiveHeaders,
        scope: { service: owner.service ?? null, route: owner.route ?? null, consumer: owner.consumer ?? null },
        metrics: this.#metrics,
        redis: (settings) => {
          const h = new RedisHandle(settings, log.child({ plugin: def.name }));
          this.#redis.push(h);
          return h;
        },
      };
      let handlers: PluginHandlers;
      try {
        handlers = def.create(entity.config as never, pluginServices);
      } catch (err) {
        // Misconfiguration found while compiling (a missing anonymous consumer, a bad key …) is a config error.
        throw configError(config, `${pointer}/config`, (err as Error).message);
      }
      this.#handlers.push(handlers);
      for (const name of handlers.sensitiveQueryParams ?? []) this.sensitiveQuery.add(name.toLowerCase());
      for (const name of handlers.sensitiveHeaders ?? []) this.sensitiveHeaders.add(name.toLowerCase());
      if (handlers.tracePhases === true) tracePhases = true;
      instances.push({ def, entity, handlers, service: owner.service ?? null, route: owner.route ?? null, consumer: owner.consumer ?? null });
    }
    this.tracePhases = tracePhases;
    const globals = instances.filter((p) => p.service === null && p.route === null && p.consumer === null);
    this.globalChains = { http: new Chain(globals.filter((p) => p.entity.protocols.includes('http'))), https: new Chain(globals.filter((p) => p.entity.protocols.includes('https'))) };
    const consumersWithPlugins = [...new Set(instances.filter((p) => p.consumer !== null).map((p) => p.consumer!))];

    this.routes = allRoutes.map(([r, svc]) => {
      const id = routeIds.get(r)!;
      const q = (scheme: 'http' | 'https', consumer: string | null) =>
        new Chain(resolve(instances, { service: svc.ref.id, route: id, consumer, scheme, routeExcludes: r.exclude_plugins, serviceExcludes: svc.config.exclude_plugins }));
      const chains = { http: q('http', null), https: q('https', null) };
      let consumerChains: Map<string, { http: Chain; https: Chain }> | null = null;
      for (const c of consumersWithPlugins) {
        const cc = { http: q('http', c), https: q('https', c) };
        if (cc.http.equals(chains.http) && cc.https.equals(chains.https)) continue;
        (consumerChains ??= new Map()).set(c, cc);
      }
      return { ref: { id, name: r.name ?? null, tags: r.tags }, config: r, service: svc, chains, consumerChains };
    });
    this.router = new Router(this.routes);
    this.tls = this.#tlsContexts();
  }

  #service(sc: ServiceConfig, index: number, s: ServerConfig): ServiceRuntime {
    const parsed = sc.url !== undefined ? parseServiceUrl(sc.url) : null;
    if (typeof parsed === 'string') throw new Error(parsed);
    const protocol = parsed?.protocol ?? sc.protocol;
    const host = parsed?.host ?? sc.host!;
    const port = parsed ? parsed.port : sc.port;
    const path = parsed ? parsed.path : sc.path;
    const id = sc.id ?? stableId('service', sc.name ?? `#${index}`);
    const upstream = this.balancers.get(host);
    const balancer = upstream ?? new Balancer(host, [new Target(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, 100)], null);
    const pools = new Map<Target, UpstreamPool>();
    const defaultPort = protocol === 'https' ? 443 : 80;
    const hostHeaders = new Map<Target, string>();
    for (const t of balancer.targets) {
      hostHeaders.set(t, upstream?.config?.host_header ?? authority(t.host, t.port, defaultPort));
      pools.set(t, this.#pools.acquire(`${protocol}://${t.address}`, {
        connectTimeout: sc.connect_timeout,
        poolSize: s.upstream_keepalive_pool_size,
        idleTimeout: s.upstream_keepalive_idle_timeout,
        tlsVerify: sc.tls_verify ?? true,
        ca: sc.ca_certificates,
        // Kong: an upstream's targets are verified by their own names unless it sets host_header.
        servername: protocol === 'https' ? (upstream?.config?.host_header ?? (upstream ? t.host : host)) : undefined,
      }));
    }
    return {
      ref: { id, name: sc.name ?? null, tags: sc.tags, host },
      config: sc,
      path,
      hostHeaders,
      retries: sc.retries,
      readTimeout: sc.read_timeout,
      balancer,
      pools,
    };
  }

  #tlsContexts() {
    const exact = new Map<string, SecureContext>();
    const wildcard: [string, SecureContext][] = [];
    const verify = new Map<SecureContext, 'off' | 'optional' | 'required'>();
    let def: SecureContext | null = null;
    for (const c of this.config.certificates) {
      const ctx = createSecureContext({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2', ...(c.client_ca ? { ca: c.client_ca } : {}) });
      def ??= ctx;
      verify.set(ctx, c.client_verify);
      for (const sni of c.snis) {
        const name = (typeof sni === 'string' ? sni : sni.name).toLowerCase();
        if (name.startsWith('*.')) wildcard.push([name.slice(1), ctx]);
        else if (name.endsWith('.*')) wildcard.push([name.slice(0, -1), ctx]);
        else exact.set(name, ctx);
      }
    }
    return { exact, wildcard, default: def, verify, required: this.config.certificates.some((c) => c.client_verify === 'required') };
  }

  /** TLS context for an SNI: exact, then wildcard, then the default certificate. */
  secureContextFor(servername: string): SecureContext | null {
    return this.namedContextFor(servername) ?? this.tls.default;
  }

  /** TLS context whose SNIs name this host (exact, then wildcard); null when only the default would serve it. */
  namedContextFor(servername: string): SecureContext | null {
    const name = servername.toLowerCase();
    const hit = this.tls.exact.get(name);
    if (hit) return hit;
    // Like Kong: a wildcard stands for exactly one label (*.example.com, example.*).
    for (const [pattern, ctx] of this.tls.wildcard) {
      if (name.length <= pattern.length) continue;
      if (pattern.charCodeAt(0) === 46 /* . */) {
        if (name.endsWith(pattern) && name.indexOf('.') === name.length - pattern.length) return ctx;
      } else if (name.startsWith(pattern) && name.lastIndexOf('.') === pattern.length - 1) return ctx;
    }
    return null;
  }

  /** Requests running on this version: entered when the handler starts one, left after its log phase. */
  #inflight = 0;
  /** Once retired: called when the last request running on this version has left. */
  #onIdle: (() => void) | null = null;

  enter(): void {
    this.#inflight++;
  }

  leave(): void {
    if (--this.#inflight === 0) this.#onIdle?.();
  }

  /**
   * No longer current: its health checks stop now; its plugins (their log
   * queues, metrics, Redis stores) and pools are disposed once the requests
   * still running on it have finished — their log phase writes into this
   * version's queues — or after `graceMs` at the latest.
   */
  retire(graceMs: number): Promise<void> {
    for (const c of this.#checkers) c.stop();
    return new Promise<void>((resolve) => {
      if (this.#inflight <= 0) return resolve();
      const timer = setTimeout(resolve, graceMs).unref();
      this.#onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    }).then(() => {
      this.#onIdle = null;
      return this.dispose();
    });
  }

  /** Start timers (active health checks); called when this version becomes current. */
  activate(log: Logger): void {
    for (const b of this.balancers.values()) {
      const checker = new ActiveHealthChecker(b, log);
      checker.start();
      this.#checkers.push(checker);
    }
  }

  /** Stop timers and release pools; in-flight requests finish on their pools. Resolves when plugins finished cleaning up. */
  dispose(): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const h of this.#redis) h.release();
    this.#metrics.release();
    for (const c of this.#checkers) c.stop();
    for (const h of this.#handlers) {
      try {
        const r = h.dispose?.();
        if (r) pending.push(r.catch(() => {}));
      } catch {
        // a plugin failing to clean up must not stop the swap
      }
    }
    for (const s of this.services) for (const p of s.pools.values()) this.#pools.release(p);
    return Promise.all(pending).then(() => {});
  }
}
