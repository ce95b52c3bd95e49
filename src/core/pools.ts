/**
 * undici keep-alive pools, one per upstream target and connection settings,
 * shared across config versions (a reload keeps warm connections) and closed
 * when no version uses them any more.
 */
import { Pool } from 'undici';

export interface PoolOptions {
  connectTimeout: number;
  poolSize: number;
  idleTimeout: number;
  tlsVerify: boolean;
  ca: string[] | undefined;
  servername: string | undefined;
}

export interface UpstreamPool {
  readonly key: string;
  readonly pool: Pool;
}

export class PoolRegistry {
  readonly #pools = new Map<string, { entry: UpstreamPool; refs: number }>();

  acquire(origin: string, o: PoolOptions): UpstreamPool {
    const key = `${origin}|${o.connectTimeout}|${o.poolSize}|${o.idleTimeout}|${o.tlsVerify}|${o.servername ?? ''}|${o.ca?.join('') ?? ''}`;
    let slot = this.#pools.get(key);
    if (!slot) {
      // undici refuses a keep-alive timeout of 0 (every dispatch would fail with 502): an idle timeout
      // of 0 means "keep no idle connection", so an idle connection closes after 1 ms.
      const keepIdle = o.idleTimeout > 0;
      const pool = new Pool(origin, {
        connections: o.poolSize,
        pipelining: 1,
        keepAliveTimeout: keepIdle ? o.idleTimeout : 1,
        keepAliveMaxTimeout: keepIdle ? Math.max(o.idleTimeout, 1000) : 1,
        connect: {
          timeout: o.connectTimeout,
          rejectUnauthorized: o.tlsVerify,
          ...(o.ca ? { ca: o.ca } : {}),
          ...(o.servername ? { servername: o.servername } : {}),
        },
      });
      slot = { entry: { key, pool }, refs: 0 };
      this.#pools.set(key, slot);
    }
    slot.refs++;
    return slot.entry;
  }

  release(p: UpstreamPool): void {
    const slot = this.#pools.get(p.key);
    if (!slot || --slot.refs > 0) return;
    this.#pools.delete(p.key);
    void slot.entry.pool.close().catch(() => {});
  }

  async closeAll(): Promise<void> {
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(all.map((s) => s.entry.pool.close().catch(() => {})));
  }
}
