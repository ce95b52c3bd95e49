/**
 * Verifies audit log files (docs/audit.md): the hash chain (seq and prev of
 * every record), the Ed25519 signature of every checkpoint, the chain across
 * rotated files, and the tail. Stops at the first problem and says where it is
 * (file:line, seq) and what is wrong: a changed, removed, reordered or
 * inserted record, a forged or changed checkpoint, a torn line, a cut tail.
 */
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalJson, GENESIS, sha256Hex } from './canonical.ts';

export interface VerifyOptions {
  readonly keys: readonly { publicKey: KeyObject; keyId: string }[];
  /** The last record must be the final checkpoint of a clean shutdown. */
  readonly requireFinalCheckpoint?: boolean;
  /** Accept records after the last checkpoint (a log still being written); they are reported, not signed. */
  readonly allowUnsignedTail?: boolean;
}

export interface Location {
  file: string;
  line: number;
  seq: number | null;
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
  /** What is worth knowing but not wrong (e.g. the first file does not start the chain). */
  notes: string[];
  problem: (Location & { message: string }) | null;
}

interface Line {
  file: string;
  line: number;
  text: string;
  /** The file's last line had no newline (a torn write, or a cut). */
  torn: boolean;
}

interface Rec {
  seq: number;
  prev: string;
  type: string;
  [k: string]: unknown;
}

function parse(text: string): Rec | null {
  try {
    const v = JSON.parse(text) as Rec;
    return v !== null && typeof v === 'object' && Number.isInteger(v.seq) && typeof v.prev === 'string' && /^[0-9a-f]{64}$/.test(v.prev) && typeof v.type === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** Lines of a file (throws when it cannot be read: a usage error for the CLI). */
function linesOf(file: string): Line[] {
  const text = readFileSync(file, 'utf8');
  const out: Line[] = [];
  let start = 0;
  let n = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    n++;
    if (nl < 0) {
      out.push({ file, line: n, text: text.slice(start), torn: true });
      break;
    }
    out.push({ file, line: n, text: text.slice(start, nl), torn: false });
    start = nl + 1;
  }
  return out;
}

export function verifyAuditLog(files: readonly string[], opts: VerifyOptions): VerifyResult {
  // Files in chain order: by the seq of their first record (so a shell glob's order does not matter).
  const perFile = files.map((f) => ({ file: f, lines: linesOf(f) }));
  const firstSeq = (l: Line[]) => (l.length > 0 ? (parse(l[0]!.text)?.seq ?? Infinity) : Infinity);
  perFile.sort((a, b) => firstSeq(a.lines) - firstSeq(b.lines));
  const all = perFile.flatMap((f) => f.lines);
  const keys = new Map(opts.keys.map((k) => [k.keyId, k.publicKey]));
  const result: VerifyResult = { ok: false, files: perFile.map((f) => f.file), records: 0, checkpoints: 0, firstSeq: null, lastSeq: null, lastCheckpoint: null, unsignedTail: 0, notes: [], problem: null };
  const fail = (at: Line, seq: number | null, message: string): VerifyResult => {
    result.problem = { file: at.file, line: at.line, seq, message };
    return result;
  };
  const where = (l: Line) => `${l.file}:${l.line}`;

  let prev: { rec: Rec; hash: string; at: Line } | null = null;
  let sinceCheckpoint: Line | null = null;
  let unsigned = 0;
  for (let i = 0; i < all.length; i++) {
    const at = all[i]!;
    if (at.torn) return fail(at, null, 'the last line of the file is incomplete (no newline): a write cut short, or the file was cut');
    const rec = parse(at.text);
    if (rec === null) return fail(at, null, at.text.trim() === '' ? 'an empty line: a record was removed or the file was edited' : 'not an audit record (invalid JSON, or seq/prev/type missing): the line was changed');
    const hash = sha256Hex(canonicalJson(rec));
    const peek = i + 1 < all.length ? parse(all[i + 1]!.text) : null;

    if (prev === null) {
      result.firstSeq = rec.seq;
      if (rec.seq === 1 && rec.prev !== GENESIS) return fail(at, rec.seq, 'the first record of the chain must have prev 000…0');
      if (rec.seq !== 1) result.notes.push(`the chain is checked from seq ${rec.seq} (${where(at)}): the files with the records before it were not given`);
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
        const span = sinceCheckpoint ? ` or the records since ${where(sinceCheckpoint)}` : '';
        return fail(at, rec.seq, `checkpoint signature does not verify: this checkpoint${span} were changed (or the checkpoint is forged)`);
      }
      result.checkpoints++;
      result.lastCheckpoint = { file: at.file, line: at.line, seq: rec.seq, time: String(rec.time), final: rec.final === true, keyId };
      sinceCheckpoint = null;
      unsigned = 0;
    } else {
      sinceCheckpoint ??= at;
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
        sinceCheckpoint!,
        parse(sinceCheckpoint!.text)!.seq,
        `${unsigned} record${unsigned === 1 ? ' is' : 's are'} not covered by a signed checkpoint${none}: the tail may have been cut, or the gateway is still running or crashed (--allow-unsigned-tail accepts them)`,
      );
    }
    result.notes.push(`${unsigned} record${unsigned === 1 ? '' : 's'} after the last checkpoint (from ${where(sinceCheckpoint!)}) are not signed yet`);
  }
  if (opts.requireFinalCheckpoint && !(prev.rec.type === 'checkpoint' && prev.rec.final === true)) {
    return fail(prev.at, prev.rec.seq, 'the log does not end with the final checkpoint of a clean shutdown: records after it may have been cut');
  }
  result.ok = true;
  return result;
}
