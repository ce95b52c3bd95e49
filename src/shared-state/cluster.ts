/**
 * Counters shared by the workers of one gateway: the primary keeps them (a
 * MemoryCounterStore) and answers the workers over the cluster IPC channel.
 * Locks are mirrored to every worker as they are set, so checking a lock is a
 * local map lookup on the hot path; only increments take a round trip.
 */
import type { Worker } from 'node:cluster';
import type { CounterStore, RateVerdict, RateWindows } from '../pdk/index.ts';
import { LeaseBook, LeaseClient } from './leases.ts';
import { MemoryCounterStore } from './memory.ts';

type Op = 'increment' | 'get' | 'lock' | 'delete';
interface Request {
  type: 'palisade:counter';
  id: number;
  op: Op;
  key: string;
  by?: number;
  ms?: number;
}
interface Response {
  type: 'palisade:counter-result';
  id: number;
  value: number;
}
interface LockMirror {
  type: 'palisade:lock';
  key: string;
  until: number;
}

/** Worker side. */
export class ClusterCounterStore implements CounterStore {
  readonly #locks = new MemoryCounterStore();
  readonly #pending = new Map<number, (v: number) => void>();
  #next = 1;
  #leases: LeaseClient | null = null;

  constructor() {
    process.on('message', (msg: Response | LockMirror) => {
      if (msg?.type === 'palisade:counter-result') {
        const done = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        done?.(msg.value);
      } else if (msg?.type === 'palisade:lock') this.#locks.setLockUntil(msg.key, msg.until);
    });
  }

  #ask(op: Op, key: string, by?: number, ms?: number): Promise<number> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      process.send!({ type: 'palisade:counter', id, op, key, by, ms } satisfies Request);
    });
  }

  increment(key: string, by: number, windowMs: number): Promise<number> {
    return this.#ask('increment', key, by, windowMs);
  }
  get(key: string): Promise<number> {
    return this.#ask('get', key);
  }
  async lock(key: string, ttlMs: number): Promise<void> {
    this.#locks.lockSync(key, ttlMs);
    await this.#ask('lock', key, 0, ttlMs);
  }
  async lockedFor(key: string): Promise<number> {
    return this.#locks.lockedForSync(key);
  }
  lockedForSync(key: string): number {
    return this.#locks.lockedForSync(key);
  }
  /** Rate limits: spend quota leases from the primary (src/shared-state/leases.ts). */
  hit(key: string, windows: RateWindows, sliding: boolean, now: number): RateVerdict | Promise<RateVerdict> {
    return (this.#leases ??= new LeaseClient()).hit(key, windows, sliding, now);
  }
  async delete(key: string): Promise<void> {
    this.#locks.deleteSync(key);
    await this.#ask('delete', key);
  }
}

const books = new WeakMap<MemoryCounterStore, LeaseBook>();

/** Primary side: answer the workers from one store and mirror locks to all of them. */
export function serveCounters(store: MemoryCounterStore, workers: () => Iterable<Worker>, worker: Worker): void {
  let book = books.get(store);
  if (book === undefined) books.set(store, (book = new LeaseBook(store.rates)));
  worker.on('message', (msg: { type?: string }) => {
    if (typeof msg?.type === 'string' && msg.type.startsWith('palisade:rl-')) book.handle(worker, msg as never, workers);
  });
  worker.on('message', (msg: Request) => {
    if (msg?.type !== 'palisade:counter') return;
    let value = 0;
    if (msg.op === 'increment') value = store.incrementSync(msg.key, msg.by ?? 1, msg.ms ?? 1000);
    else if (msg.op === 'get') value = store.getSync(msg.key);
    else if (msg.op === 'delete') store.deleteSync(msg.key);
    else if (msg.op === 'lock') {
      store.lockSync(msg.key, msg.ms ?? 0);
      const mirror: LockMirror = { type: 'palisade:lock', key: msg.key, until: store.lockUntil(msg.key) };
      for (const w of workers()) if (w !== worker && w.isConnected()) w.send(mirror);
    }
    if (worker.isConnected()) worker.send({ type: 'palisade:counter-result', id: msg.id, value } satisfies Response);
  });
}
