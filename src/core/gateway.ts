/**
 * One gateway process: the current RuntimeConfig (swapped atomically on
 * reload), the proxy listeners, and graceful shutdown. The admin listener and
 * the worker processes are wired by src/cli/start.ts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { CounterStore } from '../pdk/index.ts';
import { ClusterCounterStore } from '../shared-state/cluster.ts';
import { MemoryCounterStore } from '../shared-state/memory.ts';
import { loadConfigFile, ConfigInvalidError } from '../config/load.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { AccessLog } from '../telemetry/access-log.ts';
import { openAuditTrail, type AuditTrail } from '../audit/trail.ts';
import { GatewayMetrics, registerConfigMetrics } from '../telemetry/metrics.ts';
import { RequestHandler } from './handler.ts';
import { PoolRegistry } from './pools.ts';
import { RuntimeConfig } from './runtime.ts';
import { createListeners, parseListen } from './server.ts';

export interface ListenAddresses {
  listen: string;
  tlsListen: string;
}

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; error: ConfigInvalidError | Error };

export class Gateway {
  runtime: RuntimeConfig;
  readonly log: Logger;
  readonly accessLog: AccessLog;
  /** The audit trail (config `audit`; read at start): written here, or forwarded to the cluster primary by a worker. */
  readonly audit: AuditTrail | null;
  readonly configFile: string | null;
  readonly #pools = new PoolRegistry();
  readonly #handler: RequestHandler;
  #listeners: ReturnType<typeof createListeners> | null = null;
  #servers: Server[] = [];
  /** Responses in flight: counted for the drain, and told to close their connection when it starts. */
  /**
   * Requests in flight. A counter, not a Set of responses: adding and deleting
   * every response in a long-lived Set made V8 promote each request's objects
   * to the old generation (scavenges 10× longer, p99 × 5 under load).
   */
  #inflight = 0;
  #draining = false;
  /** Versions swapped out whose requests in flight are not done yet (RuntimeConfig.retire). */
  readonly #retiring = new Set<Promise<void>>();
  stats = { requests: 0, reloads: 0, reloadFailures: 0 };

  readonly counters: CounterStore;
  /** This process's metrics registry (/metrics; a cluster primary aggregates its workers'). */
  readonly metrics = new GatewayMetrics();

  constructor(config: PalisadeConfig, log: Logger, configFile: string | null = null, counters?: CounterStore) {
    // Workers of one gateway share counters through the primary; a single process keeps its own.
    this.counters = counters ?? (cluster.isWorker ? new ClusterCounterStore() : new MemoryCounterStore());
    this.log = log;
    this.configFile = configFile;
    // Workers apply what the cluster primary loaded: the primary counts reloads.
    if (!cluster.isWorker) registerConfigMetrics(this.metrics, () => ({ version: this.runtime.version, ...this.stats }));
    this.runtime = new RuntimeConfig(config, this.#pools, log, null, this.counters, this.metrics);
    this.runtime.activate(log);
    this.accessLog = new AccessLog(config.server.access_log);
    this.audit = openAuditTrail(config.audit, log, this.metrics);
    this.#handler = new RequestHandler(this);
  }

  static async fromFile(file: string, log: Logger): Promise<Gateway> {
    return new Gateway(await loadConfigFile(file), log, file);
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Shutting down: responses written from now on say Connection: close. */
  get draining(): boolean {
    return this.#draining;
  }

  handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https', port: number): void {
    this.#inflight++;
    this.stats.requests++;
    this.#handler.handle(req, res, scheme, port);
  }

  released(): void {
    this.#inflight--;
  }

  /** Start the proxy listeners; resolves with the bound addresses. */
  async listen(addrs: ListenAddresses): Promise<{ http: AddressInfo | null; https: AddressInfo | null }> {
    const http = parseListen(addrs.listen);
    const https = parseListen(addrs.tlsListen);
    this.#listeners = createListeners(this, { http: http !== null, https: https !== null });
    if (https !== null && this.#listeners.https === null) this.log.info('no certificates configured: the TLS listener is off');
    const bind = (srv: Server | null, at: { host: string; port: number } | null) =>
      srv && at
        ? new Promise<AddressInfo>((resolve, reject) => {
            srv.once('error', reject);
            srv.listen({ host: at.host, port: at.port, exclusive: false }, () => {
              srv.off('error', reject);
              this.#servers.push(srv);
              resolve(srv.address() as AddressInfo);
            });
          })
        : Promise.resolve(null);
    const [h, s] = await Promise.all([bind(this.#listeners.http, http), bind(this.#listeners.https, https)]);
    return { http: h, https: s };
  }

  /** Compile a config beside the running one, not swapped in yet (throws when it does not compile). */
  compile(config: PalisadeConfig): RuntimeConfig {
    return new RuntimeConfig(config, this.#pools, this.log, this.runtime, this.counters, this.metrics);
  }

  /** Swap in a compiled config: requests in flight finish on the old version, which is then retired. */
  swap(next: RuntimeConfig): ReloadResult & { ok: true } {
    const prev = this.runtime;
    const changed = next.version !== prev.version;
    next.activate(this.log);
    this.runtime = next;
    this.#listeners?.update(next);
    // Disposed when its requests in flight are done (their log phase writes into its plugins' queues), within shutdown_timeout.
    const retired = prev.retire(prev.settings.shutdown_timeout);
    this.#retiring.add(retired);
    void retired.finally(() => this.#retiring.delete(retired));
    this.stats.reloads++;
    return { ok: true, version: next.version, changed };
  }

  /** Compile and swap in a new config; the running one stays on any error. */
  apply(config: PalisadeConfig): ReloadResult {
    let next: RuntimeConfig;
    try {
      next = this.compile(config);
    } catch (err) {
      this.stats.reloadFailures++;
      return { ok: false, error: err as Error };
    }
    return this.swap(next);
  }

  /** Re-read the config file; an invalid file changes nothing, an unchanged one is not compiled again. */
  async reload(): Promise<ReloadResult> {
    if (this.configFile === null) return { ok: false, error: new Error('no config file') };
    let cfg: PalisadeConfig;
    try {
      cfg = await loadConfigFile(this.configFile);
    } catch (err) {
      this.stats.reloadFailures++;
      return { ok: false, error: err as Error };
    }
    // A touched file, or the watcher seeing a file `config sync` just wrote and applied.
    if (JSON.stringify(cfg) === JSON.stringify(this.runtime.config)) return { ok: true, version: this.runtime.version, changed: false };
    return this.apply(cfg);
  }

  /**
   * Stop accepting, let in-flight requests finish (up to timeoutMs), close everything.
   * Keep-alive connections are not reused meanwhile: responses not yet started say
   * `Connection: close`, and connections that fall idle are closed as the drain goes on
   * (node:http itself keeps answering keep-alive after server.close()).
   */
  async shutdown(timeoutMs = this.runtime.settings.shutdown_timeout): Promise<void> {
    this.#draining = true;
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.#servers) s.closeIdleConnections();
    const deadline = Date.now() + timeoutMs;
    while (this.#inflight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      for (const s of this.#servers) s.closeIdleConnections();
    }
    for (const s of this.#servers) s.closeAllConnections();
    await closed;
    // Log plugins deliver what they still hold (bounded: a dead collector does not hold the exit).
    await Promise.race([Promise.all([this.runtime.dispose(), ...this.#retiring]), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.#pools.closeAll();
    await this.accessLog.close();
    await this.audit?.close();
  }
}
