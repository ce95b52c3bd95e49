/**
 * Verifies audit log files (docs/audit.md): the hash chain (seq and prev of
 * every record) from its start (seq 1, prev 000…0) or from an anchor the
 * gateway log witnessed, the canonical form of every line, the Ed25519
 * signature of every checkpoint, the chain across rotated files, the tail, and
 * the gaps the gateway recorded. Stops at the first problem and says where it
 * is (file:line, seq) and what is wrong: a changed, removed, reordered or
 * inserted record, a rewritten line, a forged or changed checkpoint, a torn
 * line, a cut start or tail. Files are read in chunks, never whole.
 */
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { canonicalJson, GENESIS, sha256Hex } from './canonical.ts';

export interface VerifyOptions {
  readonly keys: readonly { publicKey: KeyObject; keyId: string }[];
  /** The last record must be the final checkpoint of a clean shutdown. */
  readonly requireFinalCheckpoint?: boolean;
  /** Accept records after the last checkpoint (a log still being written); they are reported, not signed. */
  readonly allowUnsignedTail?: boolean;
  /** Accept `gap` records (records the gateway had to drop); they are reported. */
  readonly allowGaps?: boolean;
  /**
   * Check a chain whose beginning is not given: the record `seq` has the hash
   * `hash` (an `audit checkpoint` line of the gateway log: audit_seq, audit_head).
   * Records up to it must hash to it, records after it must chain from it.
   */
  readonly from?: { seq: number; hash: string };
}

export interface Location {
  file: string;
  line: number;
  seq: number | null;
}

export interface Gap extends Location {
  /** How many records the gateway dropped, and the time of the first and the last of them. */
  records: number;
  from: string;
  to: string;
}

export interface VerifyResult {
  ok: boolean;
  files: string[];
  records: number;
  checkpoints: number;
  firstSeq: number | null;
  lastSeq: number | null;
  lastCheckpoint: (Location & { time: string; final: boolean; keyId: string }) | null;
  /** Records after the last checkpoint (accepted only with allowUnsignedTail). */
  unsignedTail: number;
  /** Records the gateway dropped (`gap` records; accepted only with allowGaps). */
  gaps: Gap[];
  /** What is worth knowing but not wrong (e.g. where an anchored check starts). */
  notes: string[];
  problem: (Location & { message: string }) | null;
}

interface Line {
  file: string;
  line: number;
  bytes: Buffer;
  /** The file's last line had no newline (a torn write, or a cut). */
  torn: boolean;
  /** The line is longer than any record: read no further. */
  tooLong: boolean;
}

interface Rec {
  seq: number;
  prev: string;
  type: string;
  [k: string]: unknown;
}

const CHUNK = 1 << 20;
/** Records are a few hundred bytes; a longer "line" is garbage (or no newline at all in a huge file). */
const MAX_LINE = 16 << 20;
const EMPTY = Buffer.alloc(0);

function parse(bytes: Buffer): Rec | null {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as Rec;
    return v !== null && typeof v === 'object' && Number.isInteger(v.seq) && typeof v.prev === 'string' && /^[0-9a-f]{64}$/.test(v.prev) && typeof v.type === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** The lines of a file, read a chunk at a time (throws when it cannot be read: a usage error for the CLI). */
function* linesOf(file: string): Generator<Line> {
  const fd = openSync(file, 'r');
  try {
    let carry = EMPTY;
    let n = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const got = readSync(fd, chunk, 0, CHUNK, null);
      if (got === 0) break;
      let start = 0;
      for (let nl = chunk.indexOf(0x0a, 0); nl >= 0 && nl < got; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        yield { file, line: ++n, bytes: carry.length > 0 ? Buffer.concat([carry, piece]) : piece, torn: false, tooLong: false };
        carry = EMPTY;
        start = nl + 1;
      }
      const rest = chunk.subarray(start, got);
      carry = carry.length > 0 ? Buffer.concat([carry, rest]) : rest;
      if (carry.length > MAX_LINE) {
        yield { file, line: ++n, bytes: carry.subarray(0, 200), torn: false, tooLong: true };
        return;
      }
    }
    if (carry.length > 0) yield { file, line: ++n, bytes: carry, torn: true, tooLong: false };
  } finally {
    closeSync(fd);
  }
}

/** The seq of a file's first record (Infinity when it has none): files are verified in chain order. */
function firstSeqOf(file: string): number {
  const it = linesOf(file);
  try {
    const first = it.next();
    return first.done ? Infinity : (parse(first.value.bytes)?.seq ?? Infinity);
  } finally {
    it.return(undefined);
  }
}

function* linesOfAll(files: readonly string[]): Generator<{ at: Line; rec: Rec | null }> {
  for (const f of files) for (const at of linesOf(f)) yield { at, rec: at.torn || at.tooLong ? null : parse(at.bytes) };
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function verifyAuditLog(files: readonly string[], opts: VerifyOptions): VerifyResult {
  // Files in chain order: by the seq of their first record (so a shell glob's order does not matter).
  const ordered = files.map((file) => ({ file, first: firstSeqOf(file) })).sort((a, b) => a.first - b.first).map((f) => f.file);
  const keys = new Map(opts.keys.map((k) => [k.keyId, k.publicKey]));
  const from = opts.from;
  const result: VerifyResult = { ok: false, files: ordered, records: 0, checkpoints: 0, firstSeq: null, lastSeq: null, lastCheckpoint: null, unsignedTail: 0, gaps: [], notes: [], problem: null };
  const fail = (at: Line, seq: number | null, message: string): VerifyResult => {
    result.problem = { file: at.file, line: at.line, seq, message };
    return result;
  };
  const where = (l: Line) => `${l.file}:${l.line}`;

  const lines = linesOfAll(ordered);
  try {
    let prev: { rec: Rec; hash: string; at: Line } | null = null;
    let sinceCheckpoint: { at: Line; seq: number } | null = null;
    let unsigned = 0;
    let next = lines.next();
    while (!next.done) {
      const { at, rec } = next.value;
      next = lines.next();
      const peek = next.done ? null : next.value.rec;
      if (at.torn) return fail(at, null, 'the last line of the file is incomplete (no newline): a write cut short, or the file was cut');
      if (at.tooLong) return fail(at, null, `not an audit record: a line longer than ${MAX_LINE} bytes`);
      if (rec === null) return fail(at, null, at.bytes.toString('utf8').trim() === '' ? 'an empty line: a record was removed or the file was edited' : 'not an audit record (invalid JSON, or seq/prev/type missing): the line was changed');
      // The hash covers the bytes as written; the gateway writes canonical JSON only, so any other spelling of a record
      // (escapes, a duplicated key, whitespace, key order) is a rewritten line even when it parses to the same values.
      if (!Buffer.from(canonicalJson(rec)).equals(at.bytes)) {
        return fail(at, rec.seq, 'the line is not in canonical form (escapes, a duplicated key, whitespace, key order or number format differ from what the gateway writes): the line was rewritten');
      }
      const hash = sha256Hex(at.bytes);

      if (prev === null) {
        result.firstSeq = rec.seq;
        if (rec.seq === 1 && rec.prev !== GENESIS) return fail(at, rec.seq, 'the first record of the chain must have prev 000…0');
        if (from === undefined) {
          if (rec.seq !== 1) {
            return fail(
              at,
              rec.seq,
              `the log does not start the chain: its first record is seq ${rec.seq}, not seq 1 — records before it were removed, or the files holding them were not given (give them, or anchor the check with --from-seq N --from-hash H, the audit_seq and audit_head of an 'audit checkpoint' line of the gateway log)`,
            );
          }
        } else if (rec.seq > from.seq + 1) {
          const missing = rec.seq - from.seq === 2 ? `seq ${from.seq + 1} is missing` : `seq ${from.seq + 1}–${rec.seq - 1} are missing`;
          return fail(at, rec.seq, `records removed: ${missing} (the anchor is seq ${from.seq}; the first record given is seq ${rec.seq})`);
        } else if (rec.seq === from.seq + 1 && rec.prev !== from.hash) {
          return fail(at, rec.seq, `record changed, or the anchor is wrong: its prev is not the hash of seq ${from.seq} given with --from-hash`);
        }
      } else {
        if (at.file !== prev.at.file && prev.rec.type !== 'checkpoint') {
          return fail(prev.at, prev.rec.seq, `${prev.at.file} does not end with the checkpoint written at rotation: records at its end were cut`);
        }
        const expected = prev.rec.seq + 1;
        if (rec.seq !== expected) {
          if (rec.seq > expected && peek?.seq === expected) return fail(at, rec.seq, `records out of order: seq ${rec.seq} comes before seq ${expected}`);
          if (rec.seq > expected) {
            const missing = rec.seq - expected === 1 ? `seq ${expected} is missing` : `seq ${expected}–${rec.seq - 1} are missing`;
            return fail(at, rec.seq, `records removed: ${missing} (the record before is ${where(prev.at)}, seq ${prev.rec.seq})`);
          }
          return fail(at, rec.seq, `seq ${rec.seq} after seq ${prev.rec.seq}: records out of order, or duplicated`);
        }
        if (rec.prev !== prev.hash) {
          // The next record still chains to this one: the record before was changed. Otherwise this one was.
          if (peek !== null && peek.prev === hash) {
            return fail(prev.at, prev.rec.seq, `record changed: its hash no longer matches the prev kept by the next record (${where(at)})`);
          }
          return fail(at, rec.seq, `record changed: its prev does not match the hash of the record before it (${where(prev.at)})`);
        }
      }
      if (from !== undefined && rec.seq === from.seq && hash !== from.hash) {
        return fail(at, rec.seq, 'record changed, or the anchor is wrong: its hash is not the one given with --from-hash');
      }

      if (rec.type === 'checkpoint') {
        const keyId = String(rec.key_id ?? '');
        const key = keys.get(keyId);
        if (key === undefined) return fail(at, rec.seq, `checkpoint signed with key ${keyId || '(none)'}, which is not one of the keys given (${[...keys.keys()].join(', ')})`);
        const { sig, ...body } = rec;
        let good = false;
        try {
          good = typeof sig === 'string' && verifySignature(null, Buffer.from(canonicalJson(body)), key, Buffer.from(sig, 'base64'));
        } catch {}
        if (!good) {
          const span = sinceCheckpoint ? ` or the records since ${where(sinceCheckpoint.at)}` : '';
          return fail(at, rec.seq, `checkpoint signature does not verify: this checkpoint${span} were changed (or the checkpoint is forged)`);
        }
        result.checkpoints++;
        result.lastCheckpoint = { file: at.file, line: at.line, seq: rec.seq, time: String(rec.time), final: rec.final === true, keyId };
        sinceCheckpoint = null;
        unsigned = 0;
      } else {
        if (rec.type === 'gap') {
          const s = (rec.subject ?? {}) as Record<string, unknown>;
          result.gaps.push({ file: at.file, line: at.line, seq: rec.seq, records: Number(s.records), from: String(s.from), to: String(s.to) });
        }
        sinceCheckpoint ??= { at, seq: rec.seq };
        unsigned++;
      }
      result.records++;
      result.lastSeq = rec.seq;
      prev = { rec, hash, at };
    }

    if (prev === null) {
      result.problem = { file: files[0] ?? '', line: 0, seq: null, message: 'no audit records (an empty file: was it emptied?)' };
      return result;
    }
    result.unsignedTail = unsigned;
    if (unsigned > 0) {
      if (!opts.allowUnsignedTail) {
        const none = result.lastCheckpoint === null ? ' (there is no checkpoint at all)' : '';
        return fail(
          sinceCheckpoint!.at,
          sinceCheckpoint!.seq,
          `${plural(unsigned, 'record is', 'records are')} not covered by a signed checkpoint${none}: the tail may have been cut, or the gateway is still running or crashed (--allow-unsigned-tail accepts them)`,
        );
      }
      result.notes.push(`${plural(unsigned, 'record', 'records')} after the last checkpoint (from ${where(sinceCheckpoint!.at)}) are not signed yet`);
    }
    if (opts.requireFinalCheckpoint && !(prev.rec.type === 'checkpoint' && prev.rec.final === true)) {
      return fail(prev.at, prev.rec.seq, 'the log does not end with the final checkpoint of a clean shutdown: records after it may have been cut');
    }
    if (from !== undefined) {
      if (prev.rec.seq < from.seq) return fail(prev.at, prev.rec.seq, `the log ends at seq ${prev.rec.seq}, before the anchor (seq ${from.seq}): records at its end were cut, or files were not given`);
      result.notes.push(`the chain is checked from seq ${result.firstSeq}, anchored at seq ${from.seq} (hash ${from.hash.slice(0, 16)}…): records before seq ${result.firstSeq} were not given`);
    }
    if (result.gaps.length > 0) {
      const lost = result.gaps.reduce((n, g) => n + g.records, 0);
      const g = result.gaps[0]!;
      const what = `${plural(lost, 'record was', 'records were')} dropped by the gateway (${plural(result.gaps.length, 'gap record', 'gap records')}; the first: ${g.records} from ${g.from} to ${g.to}), because its audit log could not be written: the chain is intact, the log is incomplete`;
      if (!opts.allowGaps) {
        result.problem = { file: g.file, line: g.line, seq: g.seq, message: `${what} (--allow-gaps accepts it)` };
        return result;
      }
      result.notes.push(what);
    }
    result.ok = true;
    return result;
  } finally {
    lines.return(undefined);
  }
}
