/**
 * The audit log writer: one hash chain of JSON lines. Each record gets `seq`
 * (1, 2, …, across files) and `prev` (SHA-256 of the canonical JSON of the
 * record before it); checkpoints sign the chain head with Ed25519. Records are
 * chained at once (in the order they arrive) and written in batches (group
 * commit: what arrives while a batch is written goes in the next one), then
 * fsynced by the fsync policy. Rotation ends the file with a checkpoint,
 * renames it PATH.NNNNNN and starts the new file with a `rotate` record that
 * continues the chain. On start the chain continues from the last record on
 * disk (a torn last line from a crash is cut off first).
 *
 * A batch that cannot be written (or, with fsync: always, made durable) is
 * kept, as bytes, and written again a second later; records wait behind it up
 * to queue_max_bytes. Past that they are dropped (never chained, so the chain
 * stays whole) and counted, and once writing works again one `gap` record says
 * how many were lost and when. See docs/audit.md.
 */
import { randomUUID, sign } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config/schema.ts';
import type { RequestContext } from '../core/context.ts';
import type { GatewayMetrics } from '../telemetry/metrics.ts';
import { canonicalJson, GENESIS, sha256Hex } from './canonical.ts';
import { decisionEntries, type AuditEntry } from './entries.ts';
import { countLines, lastRecord, LogFile, pad, rotatedFiles } from './files.ts';
import { loadSigningKey, type SigningKey } from './keys.ts';


/** Where audit records go: the writer (single process, cluster primary) or a forwarder to the primary (workers). */
export interface AuditTrail {
  /** The security decisions of a finished request. */
  request(ctx: RequestContext): void;
  /** Any other event (config change, admin API request). */
  record(entry: AuditEntry): void;
  /** Flush, write the final checkpoint, close. */
  close(): Promise<void>;
}

/** Queued: the bytes of records (whole lines, or the unwritten rest of a batch), or a file switch at rotation. */
type Item = Buffer | { rotateTo: string };

/** At most this much is written (and fsynced) at once. */
const MAX_BATCH = 4 << 20;

export class AuditWriter implements AuditTrail {
  readonly path: string;
  readonly #cfg: AuditConfig;
  readonly #log: Logger;
  readonly #key: SigningKey;
  readonly #outcomes: ReadonlySet<string>;
  #seq = 0;
  #head = GENESIS;
  /** Records since the last checkpoint, and when the first of them came. */
  #since = 0;
  #sinceAt = 0;
  /** Bytes of the current file, including records queued for it (rotation). */
  #assigned = 0;
  #index = 0;
  #queue: Item[] = [];
  /** Bytes of records not yet written: what queue_max_bytes bounds. */
  #queued = 0;
  readonly #file: LogFile;
  #flushing: Promise<void> | null = null;
  /** Records dropped since writing stopped working (the next gap record). */
  #lost: { records: number; from: string; to: string } | null = null;
  #closed: Promise<void> | null = null;
  /** Closed: nothing more is written. */
  #halted = false;
  readonly #timers: NodeJS.Timeout[] = [];
  #errorLoggedAt = 0;
  /** Since start (tests, status, metrics). */
  readonly stats = { records: 0, checkpoints: 0, rotations: 0, dropped: 0, gaps: 0, writeErrors: 0, syncErrors: 0 };

  private constructor(cfg: AuditConfig, log: Logger, metrics?: GatewayMetrics) {
    this.#cfg = cfg;
    this.#log = log;
    this.path = resolve(cfg.path);
    this.#key = loadSigningKey(cfg.signing_key!);
    this.#outcomes = new Set(cfg.decisions);
    mkdirSync(dirname(this.path), { recursive: true });
    const rotated = rotatedFiles(this.path);
    this.#index = rotated.at(-1)?.index ?? 0;
    let from: string | null = null;
    let last: { seq: number; hash: string } | null = null;
    let active = false;
    try {
      active = statSync(this.path).size > 0;
    } catch {}
    if (active) last = lastRecord((from = this.path), true, log);
    if (last === null && rotated.length > 0) last = lastRecord((from = rotated.at(-1)!.file), false, log);
    if (last !== null) {
      this.#seq = last.seq;
      this.#head = last.hash;
    }
    this.#file = new LogFile(this.path, cfg.fsync, (op, err) => this.#error(op, err));
    this.#assigned = this.#file.size;
    if (metrics) this.#countIn(metrics);
    this.record({
      type: 'start',
      time: new Date().toISOString(),
      id: randomUUID(),
      actor: { system: 'palisade', pid: process.pid },
      subject: { file: basename(this.path) },
      decision: 'started',
      reason: last === null ? 'a new chain' : `the chain continues from ${basename(from!)} (seq ${last.seq})`,
      key_id: this.#key.keyId,
    });
    const tick = Math.min(1000, this.#cfg.checkpoint_interval * 1000);
    this.#timers.push(setInterval(() => this.#checkpointIfDue(), tick));
    if (cfg.fsync === 'interval') this.#timers.push(setInterval(() => void this.#file.sync(), cfg.fsync_interval));
    for (const t of this.#timers) t.unref();
  }

  /** Open (or continue) the audit log; throws with a clear message on a bad key or an unusable file. `metrics`: where to count drops and errors. */
  static open(cfg: AuditConfig, log: Logger, metrics?: GatewayMetrics): AuditWriter {
    return new AuditWriter(cfg, log, metrics);
  }

  #countIn(metrics: GatewayMetrics): void {
    const stats = this.stats;
    metrics.counter('palisade_audit_records_dropped_total', 'Audit records dropped: the audit log could not be written and queue_max_bytes was reached (each gap is also a gap record).', [], (c) => {
      c.reset();
      c.inc(stats.dropped);
    });
    metrics.counter('palisade_audit_write_errors_total', 'Failed writes (op=write) and fsyncs (op=fsync) of the audit log; each is retried.', ['op'], (c) => {
      c.reset();
      c.inc({ op: 'write' }, stats.writeErrors);
      c.inc({ op: 'fsync' }, stats.syncErrors);
    });
  }

  request(ctx: RequestContext): void {
    for (const e of decisionEntries(ctx, this.#outcomes)) this.record(e);
  }

  record(entry: AuditEntry): void {
    if (this.#closed !== null) return;
    if (this.#lost !== null) this.#resume();
    if (this.#lost !== null || this.#queued >= this.#cfg.queue_max_bytes) return this.#drop(entry);
    this.#append(entry);
  }

  #append(entry: AuditEntry): void {
    // Serialized once; again only when it crosses rotate_size (the rotation's records move the chain on).
    let line = this.#line(entry);
    const rotate = this.#cfg.rotate_size;
    if (rotate > 0 && this.#assigned > 0 && this.#assigned + Buffer.byteLength(line) + 1 > rotate) {
      this.#rotate();
      line = this.#line(entry);
    }
    this.#push(this.#commit(line));
    this.stats.records++;
    if (this.#since++ === 0) this.#sinceAt = Date.now();
    if (this.#since >= this.#cfg.checkpoint_records) this.#checkpoint('records', false);
  }

  /** The queue is full: the record is not chained (the chain stays whole), only counted for the gap record. */
  #drop(entry: AuditEntry): void {
    const time = typeof entry.time === 'string' ? entry.time : new Date().toISOString();
    if (this.#lost === null) {
      this.#lost = { records: 0, from: time, to: time };
      this.#log.error(
        { file: this.path, queued_bytes: this.#queued, queue_max_bytes: this.#cfg.queue_max_bytes, dropped_total: this.stats.dropped },
        'audit queue full: the audit log cannot be written; records are dropped and counted until it can, then a gap record says how many',
      );
    }
    this.#lost.records++;
    this.#lost.to = time;
    this.stats.dropped++;
  }

  /** Writing works again (the queue is down to half): the records lost are told by one chained gap record. */
  #resume(): void {
    if (this.#lost !== null && this.#queued <= this.#cfg.queue_max_bytes / 2) this.#gap();
  }

  #gap(): void {
    const lost = this.#lost!;
    this.#lost = null;
    this.stats.gaps++;
    this.#append({
      type: 'gap',
      time: new Date().toISOString(),
      id: randomUUID(),
      actor: { system: 'palisade' },
      subject: { records: lost.records, from: lost.from, to: lost.to },
      decision: 'dropped',
      reason: `${lost.records} record${lost.records === 1 ? ' was' : 's were'} dropped: the audit log could not be written and the queue reached queue_max_bytes (${this.#cfg.queue_max_bytes} bytes)`,
    });
    this.#log.warn({ file: this.path, audit_dropped: lost.records, from: lost.from, to: lost.to, dropped_total: this.stats.dropped }, 'audit records lost: the log is written again; a gap record says how many');
  }

  /** The entry as the next record of the chain (not committed). */
  #line(entry: object): string {
    return canonicalJson({ ...entry, seq: this.#seq + 1, prev: this.#head });
  }

  /** The line becomes the chain's head. */
  #commit(line: string): string {
    this.#seq++;
    this.#head = sha256Hex(line);
    return line;
  }

  #push(line: string): void {
    const data = Buffer.from(`${line}\n`);
    this.#queue.push(data);
    this.#queued += data.length;
    this.#assigned += data.length;
    this.#flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.#drain());
  }

  /** A signed checkpoint: the chain head (its prev) and the record count (its seq) under the key's signature. */
  #checkpoint(reason: string, final: boolean): void {
    const body: Record<string, unknown> = {
      type: 'checkpoint',
      time: new Date().toISOString(),
      id: randomUUID(),
      actor: { system: 'palisade' },
      subject: { records: this.#seq },
      decision: 'signed',
      reason,
      key_id: this.#key.keyId,
      seq: this.#seq + 1,
      prev: this.#head,
    };
    if (final) body.final = true;
    body.sig = sign(null, Buffer.from(canonicalJson(body)), this.#key.privateKey).toString('base64');
    this.#push(this.#commit(canonicalJson(body)));
    this.#since = 0;
    this.stats.checkpoints++;
    // A witness outside the file: the gateway log (shipped elsewhere) shows how far the signed chain went.
    this.#log.info({ audit_seq: this.#seq, audit_head: this.#head, key_id: this.#key.keyId, reason }, 'audit checkpoint');
  }

  #checkpointIfDue(): void {
    if (this.#closed === null && this.#since > 0 && Date.now() - this.#sinceAt >= this.#cfg.checkpoint_interval * 1000) this.#checkpoint('interval', false);
  }

  /** End this file with a checkpoint; the next record starts PATH (the current file becomes PATH.NNNNNN). */
  #rotate(): void {
    const to = `${this.path}.${pad(++this.#index)}`;
    this.#checkpoint('rotate', false);
    this.#queue.push({ rotateTo: to });
    this.#assigned = 0;
    const rotated = this.#line({
      type: 'rotate',
      time: new Date().toISOString(),
      id: randomUUID(),
      actor: { system: 'palisade' },
      subject: { previous_file: basename(to) },
      decision: 'rotated',
      reason: `the previous file reached rotate_size (${this.#cfg.rotate_size} bytes)`,
    });
    this.#push(this.#commit(rotated));
    this.stats.rotations++;
  }

  async #drain(): Promise<void> {
    let failed = false;
    try {
      while (!this.#halted) {
        if (this.#file.unsynced && !(await this.#file.resync())) {
          failed = true;
          break;
        }
        const head = this.#queue[0];
        if (head === undefined) break;
        if (!Buffer.isBuffer(head)) {
          try {
            await this.#file.switchTo(head.rotateTo);
          } catch (err) {
            this.#log.error({ err, file: this.path, to: head.rotateTo }, 'audit log rotation failed; retrying');
            failed = true;
            break;
          }
          this.#queue.shift();
          continue;
        }
        let n = 1;
        let bytes = head.length;
        while (n < this.#queue.length && Buffer.isBuffer(this.#queue[n]) && bytes < MAX_BATCH) bytes += (this.#queue[n++] as Buffer).length;
        const batch = this.#queue.splice(0, n) as Buffer[];
        if (!(await this.#write(n === 1 ? batch[0]! : Buffer.concat(batch, bytes)))) {
          failed = true;
          break;
        }
        if (this.#lost !== null) this.#resume();
      }
    } finally {
      this.#flushing = null;
      // A failed write is tried again (in order) a second later: a record skipped would break the chain.
      if ((this.#queue.length > 0 || this.#file.unsynced) && !this.#halted) {
        this.#flushing = new Promise<void>((r) => (failed ? setTimeout(r, 1000).unref() : setImmediate(r))).then(() => this.#drain());
      }
    }
  }

  /** Write a batch (made durable with fsync: always); false when it failed: what is not in the file is queued again, in front. */
  async #write(data: Buffer): Promise<boolean> {
    const rest = await this.#file.append(data);
    this.#queued -= data.length - (rest?.length ?? 0);
    if (rest === null) return true;
    if (rest.length > 0) this.#queue.unshift(rest);
    return false;
  }

  #error(op: 'write' | 'fsync', err: unknown): void {
    if (op === 'write') this.stats.writeErrors++;
    else this.stats.syncErrors++;
    if (Date.now() - this.#errorLoggedAt < 10_000) return;
    this.#errorLoggedAt = Date.now();
    this.#log.error(
      { err, file: this.path, fsync: this.#cfg.fsync, queued_bytes: this.#queued, dropped_total: this.stats.dropped, write_errors: this.stats.writeErrors, fsync_errors: this.stats.syncErrors },
      `audit log ${op} failed; retrying`,
    );
  }

  close(): Promise<void> {
    return (this.#closed ??= (async () => {
      for (const t of this.#timers) clearInterval(t);
      if (this.#lost !== null) this.#gap();
      this.#checkpoint('shutdown', true);
      const deadline = Date.now() + 5000;
      while (this.#flushing !== null && Date.now() < deadline) {
        await Promise.race([this.#flushing, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
      }
      this.#halted = true;
      if (this.#queue.length > 0 || this.#file.unsynced) {
        this.#log.error({ file: this.path, records: countLines(this.#queue), bytes: this.#queued }, 'audit log: records could not be written before shutdown and are lost');
      }
      await this.#file.close();
    })());
  }
}
