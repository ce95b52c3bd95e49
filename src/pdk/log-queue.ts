/**
 * A bounded, batching queue for log plugins (Kong's kong.tools.queue and its
 * `queue` parameters): entries wait in memory and are handed to a sender in
 * batches; a failed batch is retried with exponential backoff until
 * max_retry_time; when the queue is full the oldest entry is dropped and
 * counted. Entries handed to the sender and not yet delivered or given up on
 * (in flight, retrying) count against max_entries and max_bytes as well (as in
 * Kong, whose queue keeps a batch until its handler is done): a dead collector
 * cannot make batches pile up in retry loops, whatever concurrency_limit says.
 * Adding never waits and never throws: the request that produced the entry is
 * long answered.
 */
import { Type } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { PdkContext, PluginHandlers, PluginServices, TallySeries } from './index.ts';
import { Enum } from './schema.ts';
import type { ByteEntry, LogArena } from './log-arena.ts';

/** Kong's `queue` record (kong/tools/queue_schema.lua): same names, defaults and ranges (times in seconds). */
export const QueueSchema = Type.Object(
  {
    max_batch_size: Type.Integer({ minimum: 1, maximum: 1000000, default: 1, description: 'Maximum number of entries sent in one batch (1: one request per entry, sent as a JSON object; more: a JSON array).' }),
    max_coalescing_delay: Type.Number({ minimum: 0, maximum: 3600, default: 1, description: 'Seconds to wait after the first queued entry for more entries to fill a batch (no effect when max_batch_size is 1).' }),
    max_entries: Type.Integer({
      minimum: 1,
      maximum: 1000000,
      default: 10000,
      description: 'Maximum number of entries held: waiting, or sent and not yet delivered (retries included). When full, the oldest waiting entry is dropped (and counted); when every held entry is in flight, the new one is.',
    }),
    max_bytes: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'Maximum bytes of serialized entries held (waiting or in flight; none by default); when exceeded, the oldest waiting entries are dropped.' })),
    max_retry_time: Type.Number({
      minimum: -1,
      maximum: 86400,
      default: 60,
      description: 'Seconds to keep retrying a failed batch before dropping it (-1: no retries). Palisade bounds it to one day (Kong sets no maximum).',
    }),
    initial_retry_delay: Type.Number({ minimum: 0.001, maximum: 1000000, default: 0.01, description: 'Seconds before the first retry of a failed batch; each further retry doubles it, up to max_retry_delay.' }),
    max_retry_delay: Type.Number({ minimum: 0.001, maximum: 1000000, default: 60, description: 'Maximum seconds between retries (caps the exponential backoff).' }),
    concurrency_limit: Enum([1, -1], { default: 1, description: 'Batches in flight at once: 1 (in order, one at a time) or -1 (no limit).' }),
  },
  { additionalProperties: false, default: {}, description: "Kong's queue parameters: batching, bounds and retries of the log entries waiting to be sent." },
);

/** Kong's queue parameters (seconds, as in Kong's schema). */
export interface QueueParameters {
  readonly max_batch_size: number;
  readonly max_coalescing_delay: number;
  readonly max_entries: number;
  readonly max_bytes?: number | null;
  readonly max_retry_time: number;
  readonly initial_retry_delay: number;
  readonly max_retry_delay: number;
  /** 1: one batch in flight at a time; -1: no limit. */
  readonly concurrency_limit: number;
}

export type BatchSender<E = string> = (batch: E[]) => Promise<void>;

/** What a queue needs to know of its entries besides strings: their size, and that they are done with. */
export interface EntryKind<E> {
  /** Bytes an entry counts for max_bytes. */
  size(entry: E): number;
  /** Entries delivered or dropped (their memory may be reused). */
  release(entries: readonly E[]): void;
}

/** Entries written into a LogArena (the exporters of busy gateways: http-log, OTLP). */
export const byteEntries = (arena: LogArena): EntryKind<ByteEntry> => ({ size: (e) => e.end - e.start, release: (batch) => arena.release(batch) });

/** Told about dropped entries (e.g. to count them in a metric). */
export type DropListener = (entries: number, reason: 'queue_full' | 'delivery_failed') => void;

/**
 * The queue of log plugins without Kong's `queue` parameters (file-log, tcp-log, syslog): up to 1000 entries
 * a batch, sent as soon as the event loop is free, 10 000 waiting at most, retried for 60 s (10 ms doubling to 5 s).
 */
export const LOG_STREAM_QUEUE: QueueParameters = { max_batch_size: 1000, max_coalescing_delay: 0, max_entries: 10000, max_retry_time: 60, initial_retry_delay: 0.01, max_retry_delay: 5, concurrency_limit: 1 };

/**
 * Counts dropped entries in a tally counter with a `reason` label (and `labels`): both reasons' series are
 * made at once (listed at 0), so a full queue, which drops an entry for each new one, counts without a lookup.
 */
export function dropCounter(counter: { series(labels: Readonly<Record<string, string>>): TallySeries }, labels: Readonly<Record<string, string>> = {}): DropListener {
  const by = { queue_full: counter.series({ ...labels, reason: 'queue_full' }), delivery_failed: counter.series({ ...labels, reason: 'delivery_failed' }) };
  return (n, reason) => void (by[reason].value += n);
}

/** Counts a log plugin's dropped entries in palisade_log_dropped_total{plugin, reason} (the gateway's /metrics). */
export function countDrops(services: PluginServices, plugin: string): DropListener {
  return dropCounter(services.metrics.tallyCounter('palisade_log_dropped_total', 'Log entries dropped by log plugins (queue full or delivery failed).', ['plugin', 'reason']), { plugin });
}

/** Where a log plugin's lines go: `send` delivers a batch, `close` releases the connection or file. */
export interface LogDelivery<E = string> {
  /** Names the destination in warnings (host:port, URL, path). */
  readonly target: string;
  readonly params: QueueParameters;
  readonly send: BatchSender<E>;
  close(): void;
}

/**
 * The handlers of a log plugin: in the log phase each request's line (null: none) joins a bounded
 * queue delivered in batches, drops counted; a retired instance delivers what waits, then closes.
 */
export function queuedLogHandlers<E = string>(
  services: PluginServices, plugin: string, delivery: LogDelivery<E>, line: (ctx: PdkContext) => E | null, kind: EntryKind<E> | null = null,
): PluginHandlers {
  const queue = new LogQueue<E>(`${plugin} ${delivery.target}`, delivery.params, delivery.send, services.logger, countDrops(services, plugin), kind);
  return {
    log(ctx: PdkContext) {
      const entry = line(ctx);
      if (entry !== null) queue.add(entry);
    },
    dispose() {
      return queue.close(5000, () => delivery.close());
    },
  };
}

/** Make V8 flatten a concatenated string (converting it to a number reads it flat; the result is unused). */
const flatten = (s: string): void => void Number(s);

/** How often a queue repeats its "dropped entries" warning at most (ms). */
const WARN_EVERY = 10_000;

export class LogQueue<E = string> {
  readonly #p: QueueParameters;
  readonly #send: BatchSender<E>;
  readonly #kind: EntryKind<E> | null;
  readonly #log: Logger;
  readonly #name: string;
  readonly #onDrop: DropListener | null;
  #entries: (E | null)[] = [];
  #head = 0;
  /** Bytes of the waiting entries (string entries: counted only when max_bytes is set). */
  #bytes = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Whether #timer is the 0 ms one (dispatch at the next turn). */
  #immediate = false;
  /** Batches handed to the sender and not settled yet, their entries and bytes. */
  #inflight = 0;
  #inflightEntries = 0;
  #inflightBytes = 0;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Entries dropped because the queue was full. */
  dropped = 0;
  /** Entries dropped because their batch could not be delivered within max_retry_time. */
  failed = 0;
  /** Entries delivered. */
  sent = 0;
  #warnedAt = 0;
  #warnedDropped = 0;

  /** `kind`: for entries that are not strings. */
  constructor(name: string, params: QueueParameters, send: BatchSender<E>, log: Logger, onDrop: DropListener | null = null, kind: EntryKind<E> | null = null) {
    this.#kind = kind;
    this.#name = name;
    this.#onDrop = onDrop;
    this.#p = params;
    this.#send = send;
    this.#log = log;
  }

  /** Entries waiting (not yet handed to the sender). */
  get pending(): number {
    return this.#entries.length - this.#head;
  }

  /** Entries held: waiting, or handed to the sender and not settled (what max_entries bounds). */
  get held(): number {
    return this.pending + this.#inflightEntries;
  }

  /**
   * Queue an entry; false when the queue is closed or the entry was dropped.
   * A full queue drops its oldest waiting entry to make room; when every
   * held entry is in flight, the new entry is dropped.
   */
  add(entry: E): boolean {
    if (this.#closed) {
      // Logged after its config version was disposed (a request that outlived the retirement grace): not delivered.
      this.#kind?.release([entry]);
      this.#onDrop?.(1, 'delivery_failed');
      return false;
    }
    const max = this.#p.max_bytes ?? Infinity;
    const size = this.#size(entry);
    if (size > max) {
      this.#reject(entry);
      return false;
    }
    while (this.pending > 0 && this.#full(size, max)) {
      const oldest = this.#entries[this.#head]!;
      this.#bytes -= this.#size(oldest);
      this.#entries[this.#head++] = null;
      this.#kind?.release([oldest]);
      this.#drop(1);
    }
    this.#compact();
    if (this.#full(size, max)) {
      this.#reject(entry);
      return false;
    }
    // A string built by concatenation is a tree of pieces; flat, it is one object when it outlives the young generation.
    if (typeof entry === 'string') flatten(entry);
    this.#entries.push(entry);
    this.#bytes += size;
    this.#schedule();
    return true;
  }

  /** Whether an entry of `size` bytes does not fit (max_entries, max_bytes). */
  #full(size: number, max: number): boolean {
    return this.held >= this.#p.max_entries || this.#bytes + this.#inflightBytes + size > max;
  }

  /** Drop the consumed head of the array once it is most of it (taken or dropped entries). */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Bytes an entry counts for max_bytes (strings: only counted when max_bytes is set). */
  #size(entry: E): number {
    if (this.#kind !== null) return this.#kind.size(entry);
    return this.#p.max_bytes == null ? 0 : Buffer.byteLength(entry as string);
  }

  /** A new entry that does not fit. */
  #reject(entry: E): void {
    this.#kind?.release([entry]);
    this.#drop(1);
  }

  #drop(n: number): void {
    this.dropped += n;
    this.#onDrop?.(n, 'queue_full');
    const now = Date.now();
    if (now - this.#warnedAt >= WARN_EVERY) {
      this.#log.warn({ queue: this.#name, dropped: this.dropped, dropped_since_last_warning: this.dropped - this.#warnedDropped, max_entries: this.#p.max_entries }, 'log queue full: dropping the oldest entries');
      this.#warnedAt = now;
      this.#warnedDropped = this.dropped;
    }
  }

  #schedule(): void {
    if (!this.#canSend()) return;
    if (this.pending >= this.#p.max_batch_size || this.#p.max_coalescing_delay === 0 || this.#closed) {
      if (this.#timer !== null) {
        if (this.#immediate) return; // already due at the next turn
        clearTimeout(this.#timer);
        this.#timer = null;
      }
      // Let the entries of this event-loop turn join the batch.
      this.#timer = setTimeout(() => this.#dispatch(), 0);
      this.#timer.unref();
      this.#immediate = true;
      return;
    }
    if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#dispatch(), this.#p.max_coalescing_delay * 1000);
      this.#timer.unref();
      this.#immediate = false;
    }
  }

  #canSend(): boolean {
    return this.#p.concurrency_limit < 0 || this.#inflight < this.#p.concurrency_limit;
  }

  #take(): E[] {
    const n = Math.min(this.pending, this.#p.max_batch_size);
    const batch = this.#entries.slice(this.#head, this.#head + n) as E[];
    this.#head += n;
    this.#compact();
    return batch;
  }

  #dispatch(): void {
    this.#timer = null;
    while (this.pending > 0 && this.#canSend()) {
      const batch = this.#take();
      let bytes = 0;
      for (const e of batch) bytes += this.#size(e);
      this.#bytes -= bytes;
      this.#inflight++;
      this.#inflightEntries += batch.length;
      this.#inflightBytes += bytes;
      void this.#deliver(batch).finally(() => {
        this.#inflight--;
        this.#inflightEntries -= batch.length;
        this.#inflightBytes -= bytes;
        this.#kind?.release(batch);
        if (this.pending > 0) this.#schedule();
        else if (this.#inflight === 0) for (const done of this.#idle.splice(0)) done();
      });
      if (this.pending < this.#p.max_batch_size && !this.#closed) break;
    }
    if (this.pending > 0) this.#schedule();
  }

  async #deliver(batch: E[]): Promise<void> {
    const started = Date.now();
    let delay = this.#p.initial_retry_delay * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#send(batch);
        this.sent += batch.length;
        return;
      } catch (err) {
        const elapsed = Date.now() - started;
        if (this.#p.max_retry_time < 0 || elapsed + delay > this.#p.max_retry_time * 1000) {
          this.failed += batch.length;
          this.#onDrop?.(batch.length, 'delivery_failed');
          this.#log.error({ queue: this.#name, entries: batch.length, attempts: attempt, failed: this.failed, err: (err as Error).message }, 'log batch could not be delivered: dropped');
          return;
        }
        this.#log.debug({ queue: this.#name, attempt, retry_in_ms: delay, err: (err as Error).message }, 'log batch failed: retrying');
        await new Promise<void>((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, this.#p.max_retry_delay * 1000);
      }
    }
  }

  /** Resolves once nothing waits or is in flight (delivered, or given up on after max_retry_time). */
  #whenIdle(): Promise<void> {
    return this.pending === 0 && this.#inflight === 0 ? Promise.resolve() : new Promise<void>((r) => this.#idle.push(r));
  }

  /**
   * Stop accepting entries and hand what waits to the sender at once; resolves
   * when everything was delivered or given up on, or after `timeoutMs` (what a
   * shutdown waits for). `release` (the transport's close) runs once the queue
   * is idle, however long that takes: batches still being retried keep their
   * max_retry_time after a reload (Kong's queues outlive a reload).
   */
  async close(timeoutMs = 5000, release?: () => unknown): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const idle = this.#whenIdle();
    if (release !== undefined) void idle.then(release).catch(() => {});
    if (this.pending === 0 && this.#inflight === 0) return;
    this.#dispatch();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([idle, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs).unref()))]);
    clearTimeout(timer);
  }
}
