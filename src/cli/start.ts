/**
 * `palisade start`: one process (--workers 1) or a primary with N workers
 * (node:cluster). The primary owns the admin listener, the file watcher and
 * SIGHUP; it validates the file once and hands the parsed config to every
 * worker (workers never read the file themselves: a replacement worker gets the
 * config the others run, even when the file on disk has since become invalid).
 * Each worker answers a config with the version it applied or its error; a
 * reload or sync waits for every answer (PALISADE_WORKER_APPLY_TIMEOUT ms) and
 * reports the workers that did not apply it.
 * SIGTERM/SIGINT drain in-flight requests and exit 0; repeated signals (a
 * terminal's Ctrl-C reaches the whole process group) do not cut the drain short.
 */
import cluster, { type Worker } from 'node:cluster';
import { watch } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { WorkersFailedError, type WorkerFailure } from '../admin/config-api.ts';
import { createAdminServer, type AdminBackend } from '../admin/server.ts';
import { ConfigInvalidError, formatError, loadConfigFile } from '../config/load.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { Gateway, type ReloadResult } from '../core/gateway.ts';
import { serveCounters } from '../shared-state/cluster.ts';
import { adminEntry, configChange } from '../audit/entries.ts';
import { openAuditTrail, serveAudit } from '../audit/trail.ts';
import { MemoryCounterStore } from '../shared-state/memory.ts';
import { parseListen } from '../core/server.ts';
import { createLogger } from '../telemetry/logger.ts';
import { clusterMetrics, GatewayMetrics, registerConfigMetrics, serveClusterWorker } from '../telemetry/metrics.ts';
import { dryCompile } from './validate.ts';
import { VERSION } from './version.ts';

export interface StartOptions {
  config: string;
  listen?: string;
  tlsListen?: string;
  adminListen?: string;
  workers?: number;
}

interface Resolved {
  file: string;
  listen: string;
  tlsListen: string;
  adminListen: string;
  workers: number;
  adminToken: string | undefined;
}

/** Flags win over PALISADE_* environment variables, which win over the file's server section. */
export function resolveSettings(opts: StartOptions, cfg: PalisadeConfig, env = process.env): Resolved {
  const workersEnv = env.PALISADE_WORKERS ? Number(env.PALISADE_WORKERS) : undefined;
  if (workersEnv !== undefined && (!Number.isInteger(workersEnv) || workersEnv < 1)) throw new Error('PALISADE_WORKERS must be a whole number ≥ 1');
  const r: Resolved = {
    file: resolve(opts.config),
    listen: opts.listen ?? env.PALISADE_LISTEN ?? cfg.server.listen ?? '0.0.0.0:8000',
    tlsListen: opts.tlsListen ?? env.PALISADE_TLS_LISTEN ?? cfg.server.tls_listen ?? '0.0.0.0:8443',
    adminListen: opts.adminListen ?? env.PALISADE_ADMIN_LISTEN ?? cfg.server.admin_listen ?? '127.0.0.1:8001',
    workers: opts.workers ?? workersEnv ?? cfg.server.workers ?? availableParallelism(),
    adminToken: env.PALISADE_ADMIN_TOKEN ?? cfg.admin.token,
  };
  for (const l of [r.listen, r.tlsListen, r.adminListen]) parseListen(l);
  return r;
}

/** How long a reload or sync waits for each worker to apply a config (ms): PALISADE_WORKER_APPLY_TIMEOUT, default 30 s. */
function workerApplyTimeout(env = process.env): number {
  const v = env.PALISADE_WORKER_APPLY_TIMEOUT;
  if (v === undefined || v === '') return 30_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fail('PALISADE_WORKER_APPLY_TIMEOUT must be a whole number of milliseconds ≥ 1');
  return n;
}

function printConfigErrors(err: ConfigInvalidError): void {
  const unreadable = err.errors.length === 1 && err.errors[0]!.line === 0 ? err.errors[0]! : null;
  if (unreadable) {
    console.error(`palisade: cannot read the config file ${err.file}: ${unreadable.message}; pass --config FILE or set PALISADE_CONFIG`);
    return;
  }
  for (const e of err.errors) console.error(formatError(err.file, e));
  console.error(`palisade: ${err.file} is invalid (${err.errors.length} error${err.errors.length === 1 ? '' : 's'}); fix it and start again — 'palisade config validate ${err.file}' checks it without starting`);
}

function logReloadError(log: Logger, err: Error): void {
  if (err instanceof ConfigInvalidError) log.error({ errors: err.errors.map((e) => formatError(err.file, e)) }, 'config reload rejected; the running config is unchanged');
  else log.error({ err: err.message }, 'config reload rejected; the running config is unchanged');
}

/** Calls `fn` when the file changes (debounced; survives editors that replace the file). */
function watchFile(file: string, fn: () => void): () => void {
  let timer: NodeJS.Timeout | null = null;
  const w = watch(dirname(file), (_event, name) => {
    if (name !== null && name !== basename(file)) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fn, 200);
  });
  w.on('error', () => {});
  return () => w.close();
}

/** Runs config changes (reloads, syncs) one at a time, in call order. */
function serial(): <T>(fn: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = last.then(fn, fn);
    last = run.catch(() => {});
    return run;
  };
}

async function listenAdmin(r: Resolved, backend: AdminBackend, log: Logger) {
  const at = parseListen(r.adminListen);
  if (at === null) return null;
  const srv = createAdminServer(backend, r.adminToken, VERSION);
  await new Promise<void>((ok, fail) => srv.once('error', fail).listen(at.port, at.host, () => ok()));
  if (!['127.0.0.1', '::1', 'localhost'].includes(at.host) && !r.adminToken) log.warn('admin listener is not on loopback and has no token: only /status is served');
  return srv;
}

function fail(message: string): never {
  console.error(`palisade: ${message}`);
  process.exit(1);
}

export async function startCommand(opts: StartOptions): Promise<void> {
  process.on('SIGHUP', () => {}); // a SIGHUP while starting must not kill us (its default action); the reload handler comes once we run
  if (cluster.isWorker) {
    const inbox = configsFromPrimary();
    return runWorker(opts, await inbox.first, inbox);
  }
  let cfg: PalisadeConfig;
  try {
    cfg = await loadConfigFile(opts.config);
  } catch (err) {
    if (err instanceof ConfigInvalidError) {
      printConfigErrors(err);
      process.exit(1);
    }
    throw err;
  }
  let r: Resolved;
  try {
    r = resolveSettings(opts, cfg);
  } catch (err) {
    fail((err as Error).message);
  }
  const log = createLogger(cfg.server.log_level);
  if (r.workers === 1) return runSingle(cfg, r, log);
  return runPrimary(cfg, r, log);
}

async function listenOrExit(gw: Gateway, r: Resolved) {
  try {
    return await gw.listen({ listen: r.listen, tlsListen: r.tlsListen });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE') fail(`${e.address}:${e.port} is already in use; stop what runs there or choose another address with --listen / --tls-listen`);
    if (e.code === 'EACCES') fail(`not allowed to listen on ${e.address}:${e.port}; use a port above 1024`);
    throw err;
  }
}

async function runSingle(cfg: PalisadeConfig, r: Resolved, log: Logger): Promise<void> {
  const gw = new Gateway(cfg, log, r.file);
  const bound = await listenOrExit(gw, r);
  const exclusive = serial();
  // `actor`: who asked (audit trail): the admin API, a signal, the file watcher.
  const reload = (actor = 'admin') =>
    exclusive(async () => {
      const before = gw.runtime.version;
      const res = await gw.reload();
      if (res.ok) {
        if (res.changed) log.info({ version: res.version }, 'config reloaded');
      } else logReloadError(log, res.error);
      const out = res.ok ? { ok: true as const, version: res.version } : { ok: false as const, errors: errorLines(res.error) };
      gw.audit?.record(configChange(actor, 'reload', r.file, before, out));
      return out;
    });
  const backend: AdminBackend = {
    status: () => statusOf(gw.runtime.version, gw.stats, 1),
    metrics: async () => ({ contentType: gw.metrics.contentType, text: await gw.metrics.text() }),
    config: () => gw.runtime.config,
    reload,
    configFile: r.file,
    exclusive,
    async commit(next, persist) {
      const before = gw.runtime.version;
      const rejected = (err: Error) => {
        gw.audit?.record(configChange('admin', 'sync', r.file, before, { ok: false, errors: errorLines(err) }));
        return { ok: false as const, error: err };
      };
      let compiled: ReturnType<Gateway['compile']>;
      try {
        compiled = gw.compile(next);
      } catch (err) {
        gw.stats.reloadFailures++;
        return rejected(err as Error);
      }
      try {
        await persist();
      } catch (err) {
        compiled.dispose();
        return rejected(err as Error);
      }
      const res = gw.swap(compiled);
      log.info({ version: res.version, changed: res.changed }, 'config synced');
      gw.audit?.record(configChange('admin', 'sync', r.file, before, { ok: true, version: res.version }));
      return { ok: true, version: res.version };
    },
    error: (err) => log.error({ err }, 'admin API request failed'),
    audit: (e) => gw.audit?.record(adminEntry(e)),
  };
  const admin = await listenAdmin(r, backend, log).catch((e: Error) => fail(`admin listener: ${e.message}`));
  const unwatch = cfg.server.watch ? watchFile(r.file, () => void reload('file-watch')) : () => {};
  process.on('SIGHUP', () => void reload('signal'));
  log.info({ version: VERSION, config: r.file, config_version: gw.runtime.version, http: addr(bound.http), https: addr(bound.https), admin: admin ? r.adminListen : null }, 'palisade started');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inflight: gw.inflight }, 'shutting down: draining in-flight requests');
    unwatch();
    admin?.close();
    await gw.shutdown();
    log.info('stopped');
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function errorLines(err: Error): string[] {
  return err instanceof ConfigInvalidError ? err.errors.map((e) => formatError(err.file, e)) : [err.message];
}

function addr(a: { address: string; port: number } | null): string | null {
  return a ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : null;
}

function statusOf(version: string, stats: Record<string, number>, workers: number) {
  const mem = process.memoryUsage();
  return { configuration_hash: version, workers, ...stats, memory: { rss: mem.rss, heap_used: mem.heapUsed }, server: { version: VERSION } };
}

/** A config from the primary; one with an `id` is answered with an AppliedMessage. */
interface ConfigMessage {
  type: 'config';
  config: PalisadeConfig;
  id?: number;
}
/** A worker's answer: the version it runs now, or why it kept the previous one. */
type AppliedMessage = { type: 'config-applied'; id: number } & ({ ok: true; version: string } | { ok: false; errors: string[] });

/**
 * In a worker: the primary's config messages, in order, from the start (none
 * is lost while the worker starts). The first — the answer to the request sent
 * here, or a reload sent before it — is the config the worker starts with; the
 * later ones go to the handler given to onConfig, queued until then.
 */
function configsFromPrimary(): { first: Promise<ConfigMessage>; onConfig(fn: (m: ConfigMessage) => void): void } {
  let first: ((m: ConfigMessage) => void) | null = null;
  let handler: ((m: ConfigMessage) => void) | null = null;
  const queue: ConfigMessage[] = [];
  const started = new Promise<ConfigMessage>((ok) => (first = ok));
  process.on('message', (msg: Partial<ConfigMessage>) => {
    if (msg?.type !== 'config' || !msg.config) return;
    const m = msg as ConfigMessage;
    if (first) {
      first(m);
      first = null;
    } else if (handler) handler(m);
    else queue.push(m);
  });
  process.send!({ type: 'config-request' });
  return {
    first: started,
    onConfig(fn) {
      handler = fn;
      for (const m of queue.splice(0)) fn(m);
    },
  };
}

/** Tell the primary what became of config message `id` (none: it asked for no answer). */
function answer(id: number | undefined, res: ReloadResult): void {
  if (id === undefined) return;
  const msg: AppliedMessage = res.ok ? { type: 'config-applied', id, ok: true, version: res.version } : { type: 'config-applied', id, ok: false, errors: errorLines(res.error) };
  process.send!(msg);
}

async function runWorker(opts: StartOptions, start: ConfigMessage, inbox: ReturnType<typeof configsFromPrimary>): Promise<void> {
  const cfg = start.config;
  const r = resolveSettings(opts, cfg); // same flags and environment as the primary, which checked them
  const log = createLogger(cfg.server.log_level);
  const gw = new Gateway(cfg, log, r.file);
  serveClusterWorker(gw.metrics); // the primary's /metrics sums every worker's
  answer(start.id, { ok: true, version: gw.runtime.version, changed: true });
  inbox.onConfig((msg) => {
    let res: ReloadResult;
    try {
      res = gw.apply(msg.config);
    } catch (err) {
      res = { ok: false, error: err as Error }; // swapping in failed: answered like a compile error
    }
    if (!res.ok) logReloadError(log, res.error);
    else if (res.changed) log.info({ worker: cluster.worker!.id, config_version: res.version }, 'config applied');
    answer(msg.id, res);
  }); // before listening: a reload sent while we bind is applied
  const bound = await listenOrExit(gw, r);
  // SIGHUP: the primary reloads and tells us (startCommand installed a no-op listener).
  log.info({ worker: cluster.worker!.id, config_version: gw.runtime.version, http: addr(bound.http), https: addr(bound.https) }, 'worker started');
  process.send!({ type: 'ready', version: gw.runtime.version });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gw.shutdown();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

async function runPrimary(cfg: PalisadeConfig, r: Resolved, log: Logger): Promise<void> {
  const { createHash } = await import('node:crypto');
  const hash = (c: PalisadeConfig) => createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 12);
  let current = cfg;
  let version = hash(cfg);
  const stats = { reloads: 0, reloadFailures: 0, restarts: 0 };
  const applyTimeout = workerApplyTimeout();
  let started = false;
  let stopping = false;
  const workers = new Set<Worker>();
  /** The config version each worker said it runs. */
  const applied = new Map<Worker, string>();
  let onStartupFailure: () => void = () => {};
  let unwatch = () => {};
  let admin: Awaited<ReturnType<typeof listenAdmin>> = null;
  const counters = new MemoryCounterStore();
  // /metrics: every worker's registry aggregated, then the primary's own (config reloads, worker restarts, audit drops).
  const metrics = new GatewayMetrics({ processMetrics: false });
  // One audit chain for the whole gateway: the primary writes it, workers forward their records (src/audit/trail.ts).
  let trail: ReturnType<typeof openAuditTrail> = null;
  try {
    trail = openAuditTrail(cfg.audit, log, metrics);
  } catch (err) {
    fail((err as Error).message);
  }
  registerConfigMetrics(metrics, () => ({ version, ...stats }));
  metrics.counter('palisade_worker_restarts_total', 'Workers that died and were started again.', [], (c) => {
    c.reset();
    c.inc(stats.restarts);
  });
  const gatewayMetrics = clusterMetrics(metrics);
  const fork = () => {
    const w = cluster.fork();
    const pid = w.process.pid;
    workers.add(w);
    serveCounters(counters, () => workers, w);
    if (trail) serveAudit(trail, w);
    const ready = new Promise<void>((ok) =>
      w.on('message', (msg: { type?: string; version?: string; ok?: boolean }) => {
        if (msg?.type === 'config-request') w.send({ type: 'config', config: current } satisfies ConfigMessage);
        else if (msg?.type === 'ready') {
          applied.set(w, msg.version!);
          ok();
        } else if (msg?.type === 'config-applied' && msg.ok) applied.set(w, msg.version!); // late answers too
      }),
    );
    w.on('exit', (code, signal) => {
      workers.delete(w);
      applied.delete(w);
      if (stopping) return;
      if (!started) {
        // Its reason (port in use, …) is on stderr already; starting it again would fail the same way.
        log.error({ worker_pid: pid, code, signal }, 'a worker failed to start; stopping');
        onStartupFailure();
        return;
      }
      stats.restarts++;
      log.error({ worker_pid: pid, code, signal }, 'worker died; starting a new one');
      setTimeout(() => {
        if (!stopping) fork();
      }, 500);
    });
    return ready;
  };
  const stop = async (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: reason }, 'shutting down: draining workers');
    unwatch();
    admin?.close();
    const exits = [...workers].map((w) => new Promise<void>((ok) => (w.isDead() ? ok() : w.once('exit', () => ok()))));
    for (const w of workers) w.process.kill('SIGTERM');
    const deadline = new Promise<void>((ok) => setTimeout(ok, current.server.shutdown_timeout + 2000).unref());
    await Promise.race([Promise.all(exits), deadline]);
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    await trail?.close(); // after the workers: their last records are in
    log.info('stopped');
    log.flush();
    process.exit(exitCode);
  };
  const exclusive = serial();
  let sent = 0;
  /** Send `cfg` to one worker and wait for its answer: null when it applied it, else why not. */
  const sendTo = (w: Worker, cfg: PalisadeConfig): Promise<WorkerFailure | null> =>
    new Promise((done) => {
      const id = ++sent;
      const failure = (error: string) => ({ worker: w.id, pid: w.process.pid, error });
      const finish = (f: WorkerFailure | null) => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('exit', onExit);
        done(f);
      };
      const onMessage = (m: AppliedMessage) => {
        if (m?.type === 'config-applied' && m.id === id) finish(m.ok ? null : failure(m.errors.join('; ')));
      };
      const onExit = (code: number | null, signal: string | null) => finish(failure(`it exited (${signal ?? `code ${code}`}) before answering`));
      const timer = setTimeout(() => finish(failure(`it did not answer within ${applyTimeout / 1000} s`)), applyTimeout);
      w.on('message', onMessage);
      w.on('exit', onExit);
      w.send({ type: 'config', config: cfg, id } satisfies ConfigMessage, (err) => {
        if (err) finish(failure(`the config could not be sent to it: ${err.message}`));
      });
    });
  /**
   * Make `next` the config: the primary's (a restarted worker gets it), then
   * every worker's that does not run it yet (a sync or reload of the same file
   * retries the ones that missed it). Resolves with the workers that did not apply it.
   */
  const publish = async (next: PalisadeConfig, nextVersion: string): Promise<WorkerFailure[]> => {
    if (nextVersion !== version) stats.reloads++;
    current = next;
    version = nextVersion;
    const behind = [...workers].filter((w) => w.isConnected() && applied.get(w) !== nextVersion);
    const failed = (await Promise.all(behind.map((w) => sendTo(w, next)))).filter((f): f is WorkerFailure => f !== null);
    if (failed.length > 0) log.error({ version, failed }, 'workers did not apply the config; they run the previous one');
    return failed;
  };
  const reload = (actor = 'admin') => exclusive(async () => {
    const before = version;
    let next: PalisadeConfig;
    try {
      next = await loadConfigFile(r.file);
    } catch (err) {
      stats.reloadFailures++;
      logReloadError(log, err as Error);
      const out = { ok: false as const, errors: errorLines(err as Error) };
      trail?.record(configChange(actor, 'reload', r.file, before, out));
      return out;
    }
    const nextVersion = hash(next);
    const failed = await publish(next, nextVersion);
    if (nextVersion !== before) log.info({ version, workers: workers.size }, 'config reloaded');
    trail?.record(configChange(actor, 'reload', r.file, before, { ok: true, version }));
    if (failed.length > 0) return { ok: false, version, errors: new WorkersFailedError(version, failed, workers.size).lines };
    return { ok: true, version };
  });
  const backend: AdminBackend = {
    status: () => statusOf(version, stats, workers.size),
    metrics: async () => ({ contentType: metrics.contentType, text: await gatewayMetrics() }),
    config: () => current,
    reload,
    configFile: r.file,
    exclusive,
    async commit(next, persist) {
      const before = version;
      try {
        await dryCompile(next); // the workers compile it again; a config that fails here never reaches them
        await persist();
      } catch (err) {
        trail?.record(configChange('admin', 'sync', r.file, before, { ok: false, errors: errorLines(err as Error) }));
        return { ok: false, error: err as Error };
      }
      const failed = await publish(next, hash(next));
      log.info({ version, workers: workers.size }, 'config synced');
      trail?.record(configChange('admin', 'sync', r.file, before, { ok: true, version }));
      if (failed.length > 0) return { ok: false, error: new WorkersFailedError(version, failed, workers.size) };
      return { ok: true, version };
    },
    error: (err) => log.error({ err }, 'admin API request failed'),
    audit: (e) => trail?.record(adminEntry(e)),
  };
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));
  process.on('SIGHUP', () => void reload('signal'));
  const failed = new Promise<'failed'>((ok) => (onStartupFailure = () => ok('failed')));
  const outcome = await Promise.race([Promise.all(Array.from({ length: r.workers }, fork)), failed]);
  if (outcome === 'failed') return stop('startup failure', 1);
  started = true;
  admin = await listenAdmin(r, backend, log).catch((e: Error) => fail(`admin listener: ${e.message}`));
  unwatch = cfg.server.watch ? watchFile(r.file, () => void reload('file-watch')) : () => {};
  log.info({ version: VERSION, config: r.file, config_version: version, workers: r.workers, http: r.listen, https: r.tlsListen, admin: admin ? r.adminListen : null }, 'palisade started');
}
