/**
 * The audit log on disk: the file being written (batches appended and made
 * durable by the fsync policy, cut back when a write or fsync fails, switched
 * at rotation), the rotated files of a log, the last record of a file (where a
 * restart continues the chain).
 */
import { closeSync, existsSync, fdatasync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, renameSync, write, close as closeFd } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { sha256Hex } from './canonical.ts';

const writeP = promisify(write);
const fdatasyncP = promisify(fdatasync);
const closeP = promisify(closeFd);

export type FsyncPolicy = 'always' | 'interval' | 'never';

/** The file being written. Told failures go to `onError` (logged and counted by the writer). */
export class LogFile {
  readonly path: string;
  readonly #fsync: FsyncPolicy;
  readonly #onError: (op: 'write' | 'fsync', err: unknown) => void;
  #fd: number;
  /** Bytes of the file that are written (and, with fsync: always, durable). */
  size: number;
  /** Written since the last fsync (fsync: interval). */
  #dirty = false;
  /** The file was created or renamed since the directory was last fsynced. */
  #dirDirty: boolean;
  #syncing: Promise<void> | null = null;
  /** fsync: always — a batch is in the file, its fsync failed and the file could not be cut back: fsync it before anything else. */
  unsynced = false;

  constructor(path: string, fsync: FsyncPolicy, onError: (op: 'write' | 'fsync', err: unknown) => void) {
    this.path = path;
    this.#fsync = fsync;
    this.#onError = onError;
    this.#fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.#fd).size;
    this.#dirDirty = fsync !== 'never' && this.size === 0;
  }

  /**
   * Append a batch and, with fsync: always, make it durable (the data and, after the file's creation or a
   * rotation, the directory). Resolves with null when done, else with the bytes to write again: after a failed
   * write or fsync the file is cut back to where the batch began (a short write left part of it; after a failed
   * fsync the kernel may have dropped those pages while a second fsync reports success), so the whole batch;
   * when the file cannot be cut back, what it has stays and only the rest is returned (perhaps nothing).
   */
  async append(data: Buffer): Promise<Buffer | null> {
    const start = this.size;
    let off = 0;
    let op: 'write' | 'fsync' = 'write';
    try {
      while (off < data.length) {
        const n = (await writeP(this.#fd, data, off, data.length - off)).bytesWritten;
        if (n === 0) throw new Error('the write wrote nothing');
        off += n;
      }
      op = 'fsync';
      if (this.#fsync === 'always') await this.#durable();
      else this.#dirty = true;
      this.size = start + data.length;
      return null;
    } catch (err) {
      this.#onError(op, err);
      if (off === 0) return data;
      try {
        ftruncateSync(this.#fd, start);
        return data;
      } catch {
        this.size = start + off;
        if (op === 'fsync') this.unsynced = true;
        return data.subarray(off);
      }
    }
  }

  /** After `unsynced`: fsync again; false when it failed again. */
  async resync(): Promise<boolean> {
    try {
      await this.#durable();
      this.unsynced = false;
      return true;
    } catch (err) {
      this.#onError('fsync', err);
      return false;
    }
  }

  async #durable(): Promise<void> {
    await fdatasyncP(this.#fd);
    if (this.#dirDirty) {
      await syncDir(dirname(this.path));
      this.#dirDirty = false;
    }
  }

  /** fsync: interval (and at shutdown): what was written since, and the directory after a creation or rotation. Failures are told; the next call tries again. */
  sync(): Promise<void> {
    return (this.#syncing ??= (async () => {
      if (!this.#dirty && !this.#dirDirty) return;
      this.#dirty = false;
      try {
        await this.#durable();
      } catch (err) {
        this.#dirty = true;
        this.#onError('fsync', err);
      }
    })().finally(() => (this.#syncing = null)));
  }

  /** Rotation: the file becomes `to` (its end on disk first), and writing goes on in a new file at `path`. Throws (to be retried) when it fails. */
  async switchTo(to: string): Promise<void> {
    if (this.#fsync !== 'never') {
      await this.#syncing;
      await fdatasyncP(this.#fd);
    }
    if (!existsSync(to)) renameSync(this.path, to); // (a retry after a failed open: renamed already)
    const fd = openSync(this.path, 'a', 0o600);
    const old = this.#fd;
    this.#fd = fd;
    this.size = 0;
    if (this.#fsync !== 'never') this.#dirDirty = true;
    await this.#syncing; // one may have started on the old descriptor
    await closeP(old).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#fsync !== 'never') await this.sync();
    await closeP(this.#fd).catch(() => {});
  }
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

/** The last record of a file: its seq and hash (of its bytes, as the verifier hashes them); a torn last line is cut off when `repair`. */
export function lastRecord(file: string, repair: boolean, log: Logger): { seq: number; hash: string } | null {
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
    const line = buf.subarray(start, end - 1);
    let rec: { seq?: unknown };
    try {
      rec = JSON.parse(line.toString('utf8'));
    } catch {
      throw new Error(`audit log ${file}: its last record is not valid JSON; check it with 'palisade audit verify' and move the file away`);
    }
    if (typeof rec.seq !== 'number') throw new Error(`audit log ${file}: its last record has no seq; is this an audit log?`);
    return { seq: rec.seq, hash: sha256Hex(line) };
  } finally {
    closeSync(fd);
  }
}

/** Make a new or renamed file in `dir` durable (throws when the fsync fails; file systems that cannot fsync a directory are skipped). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    await fh.close();
  }
}

/** Records (lines) in queued buffers. */
export function countLines(items: readonly unknown[]): number {
  let n = 0;
  for (const b of items) if (Buffer.isBuffer(b)) for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}
