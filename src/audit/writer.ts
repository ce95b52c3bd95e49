/**
 * The audit log writer: one hash chain of JSON lines. Each record gets `seq`
 * (1, 2, …, across files) and `prev` (SHA-256 of the canonical JSON of the
 * record before it); checkpoints sign the chain head with Ed25519. Records are
 * chained at once (in the order they arrive) and written in batches (group
 * commit: what arrives while a batch is written goes in the next one), then
 * fsynced by the fsync policy. Rotation ends the file with a checkpoint,
 * renames it PATH.NNNNNN and starts the new file with a `rotate` record that
 * continues the chain. On start the chain continues from the last record on
 * disk (a torn last line from a crash is cut off first). See docs/audit.md.
 */
import { randomUUID, sign } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, fsync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, write, close as closeFd } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config/schema.ts';
import type { RequestContext } from '../core/context.ts';
import { canonicalJson, GENESIS, sha256Hex } from './canonical.ts';
import { decisionEntries, type AuditEntry } from './entries.ts';
import { loadSigningKey, type SigningKey } from './keys.ts';

const writeP = promisify(write);
const fdatasyncP = promisify(fdatasync);
const closeP = promisify(closeFd);

/** Where audit records go: the writer (single process, cluster primary) or a forwarder to the primary (workers). */
export interface AuditTrail {
  /** The security decisions of a finished request. */
  request(ctx: RequestContext): void;
  /** Any other event (config change, admin API request). */
  record(entry: AuditEntry): void;
  /** Flush, write the final checkpoint, close. */
  close(): Promise<void>;
}

export const pad = (n: number) => String(n).padStart(6, '0');

/** The rotated files of `path` (PATH.NNNNNN), oldest first. */
export function rotatedFiles(path: string): { index: number; file: string }[] {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((f) => f.startsWith(`${base}.`) && /^\d{6,}$/.test(f.slice(base.length + 1)))
    .map((f) => ({ index: Number(f.slice(base.length + 1)), file: join(dir, f) }))
    .sort((a, b) => a.index - b.index);
}

const TAIL = 1 << 20;

/** The last record of a file (seq and hash); a torn last line is cut off when `repair`. */
function lastRecord(file: string, repair: boolean, log: Logger): { seq: number; hash: string } | null {
  const fd = openSync(file, repair ? 'r+' : 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return null;
    const len = Math.min(size, TAIL);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    let end = len;
    if (buf[len - 1] !== 0x0a) {
      const nl = buf.lastIndexOf(0x0a);
      if (nl < 0 && len < size) throw new Error(`audit log ${file}: its last line is longer than 1 MiB`);
      end = nl + 1;
      if (!repair) throw new Error(`audit log ${file}: its last line is incomplete`);
      ftruncateSync(fd, size - len + end);
      log.warn({ file, dropped_bytes: len - end }, 'audit log: an incomplete last line (a write cut short by a crash) was removed');
      if (end === 0) return null;
    }
    const start = buf.lastIndexOf(0x0a, end - 2) + 1;
    if (start === 0 && len < size) throw new Error(`audit log ${file}: its last line is longer than 1 MiB`);
    let rec: { seq?: unknown };
    try {
      rec = JSON.parse(buf.subarray(start, end - 1).toString('utf8'));
    } catch {
      throw new Error(`audit log ${file}: its last record is not valid JSON; check it with 'palisade audit verify' and move the file away`);
    }
    if (typeof rec.seq !== 'number') throw new Error(`audit log ${file}: its last record has no seq; is this an audit log?`);
    return { seq: rec.seq, hash: sha256Hex(canonicalJson(rec)) };
  } finally {
    closeSync(fd);
  }
}

type Item = string | { rotateTo: string };

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
  /** Bytes of the current file, including records queued for it. */
  #assigned = 0;
  #index = 0;
  #queue: Item[] = [];
  #fd: number;
  #flushing: Promise<void> | null = null;
  #dirty = false;
  #closed: Promise<void> | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  #writeErrorAt = 0;
  /** Records and checkpoints written since start (tests, status). */
  readonly stats = { records: 0, checkpoints: 0, rotations: 0 };

  private constructor(cfg: AuditConfig, log: Logger) {
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
    this.#fd = openSync(this.path, 'a', 0o600);
    this.#assigned = fstatSync(this.#fd).size;
    if (cfg.fsync !== 'never' && this.#assigned === 0) syncDir(dirname(this.path));
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
    if (cfg.fsync === 'interval') this.#timers.push(setInterval(() => void this.#sync(), cfg.fsync_interval));
    for (const t of this.#timers) t.unref();
  }

  /** Open (or continue) the audit log; throws with a clear message on a bad key or an unusable file. */
  static open(cfg: AuditConfig, log: Logger): AuditWriter {
    return new AuditWriter(cfg, log);
  }

  request(ctx: RequestContext): void {
    for (const e of decisionEntries(ctx, this.#outcomes)) this.record(e);
  }

  record(entry: AuditEntry): void {
    if (this.#closed !== null) return;
    const rotate = this.#cfg.rotate_size;
    if (rotate > 0 && this.#assigned > 0 && this.#assigned + canonicalJson(entry).length + 120 > rotate) this.#rotate();
    this.#push(this.#chain(entry));
    this.stats.records++;
    if (this.#since++ === 0) this.#sinceAt = Date.now();
    if (this.#since >= this.#cfg.checkpoint_records) this.#checkpoint('records', false);
  }

  #chain(entry: object): string {
    const line = canonicalJson({ ...entry, seq: this.#seq + 1, prev: this.#head });
    this.#seq++;
    this.#head = sha256Hex(line);
    return line;
  }

  #push(item: Item): void {
    this.#queue.push(item);
    if (typeof item === 'string') this.#assigned += Buffer.byteLength(item) + 1;
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
    const line = canonicalJson(body);
    this.#seq++;
    this.#head = sha256Hex(line);
    this.#push(line);
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
    this.#push(
      this.#chain({
        type: 'rotate',
        time: new Date().toISOString(),
        id: randomUUID(),
        actor: { system: 'palisade' },
        subject: { previous_file: basename(to) },
        decision: 'rotated',
        reason: `the previous file reached rotate_size (${this.#cfg.rotate_size} bytes)`,
      }),
    );
    this.stats.rotations++;
  }

  async #drain(): Promise<void> {
    let failed = false;
    try {
      while (this.#queue.length > 0) {
        const cut = this.#queue.findIndex((i) => typeof i !== 'string');
        const lines = (cut < 0 ? this.#queue.splice(0) : this.#queue.splice(0, cut)) as string[];
        if (lines.length > 0 && !(await this.#write(lines))) {
          failed = true;
          break;
        }
        const next = this.#queue[0];
        if (next !== undefined && typeof next !== 'string') {
          try {
            await this.#switchFile(next.rotateTo);
          } catch (err) {
            this.#log.error({ err, file: this.path, to: next.rotateTo }, 'audit log rotation failed; retrying');
            failed = true;
            break;
          }
          this.#queue.shift();
        }
      }
    } finally {
      this.#flushing = null;
      // A failed write is tried again (in order) a second later: a gap would break the chain.
      if (this.#queue.length > 0) this.#flushing = new Promise<void>((r) => (failed ? setTimeout(r, 1000).unref() : setImmediate(r))).then(() => this.#drain());
    }
  }

  /** Write a batch (and fsync it with fsync: always); false when it failed (the lines are queued again). */
  async #write(lines: string[]): Promise<boolean> {
    const data = Buffer.from(`${lines.join('\n')}\n`);
    let off = 0;
    try {
      while (off < data.length) off += (await writeP(this.#fd, data, off, data.length - off)).bytesWritten;
      this.#dirty = true;
      if (this.#cfg.fsync === 'always') await this.#sync();
      return true;
    } catch (err) {
      if (off > 0) {
        // Part of the batch is on disk: keep only what is not (whole lines cannot be told apart here, so keep the rest of the bytes).
        this.#queue.unshift(data.subarray(off).toString('utf8').replace(/\n$/, ''));
      } else this.#queue.unshift(...lines);
      if (Date.now() - this.#writeErrorAt > 10_000) this.#log.error({ err, file: this.path, pending: this.#queue.length }, 'audit log write failed; retrying');
      this.#writeErrorAt = Date.now();
      return false;
    }
  }

  async #sync(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      await fdatasyncP(this.#fd);
    } catch (err) {
      this.#dirty = true;
      this.#log.error({ err, file: this.path }, 'audit log fsync failed');
    }
  }

  async #switchFile(to: string): Promise<void> {
    if (this.#cfg.fsync !== 'never') await this.#sync();
    const old = this.#fd;
    renameSync(this.path, to);
    this.#fd = openSync(this.path, 'a', 0o600);
    await closeP(old).catch(() => {});
    if (this.#cfg.fsync !== 'never') syncDir(dirname(this.path));
  }

  close(): Promise<void> {
    return (this.#closed ??= (async () => {
      for (const t of this.#timers) clearInterval(t);
      this.#checkpoint('shutdown', true);
      const deadline = Date.now() + 5000;
      while (this.#flushing !== null && Date.now() < deadline) await this.#flushing;
      if (this.#cfg.fsync !== 'never') await this.#sync();
      await closeP(this.#fd).catch(() => {});
    })());
  }
}

/** Make a rename or a new file in `dir` durable. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsync(fd, () => closeSync(fd));
    } catch {
      closeSync(fd);
    }
  } catch {}
}
