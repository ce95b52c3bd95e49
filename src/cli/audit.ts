/**
 * `palisade audit verify FILE... --key PUB`: checks audit log files (hash
 * chain from its start or an anchor, canonical lines, checkpoint signatures,
 * rotation, tail, gaps). Exit 0: intact; 1: a problem,
 * printed as FILE:LINE: seq N: what is wrong; 2: usage error (a file or key
 * that cannot be read). `palisade audit keygen`: an Ed25519 key pair for
 * audit.signing_key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadPublicKey } from '../audit/keys.ts';
import { verifyAuditLog, type VerifyResult } from '../audit/verify.ts';

export interface VerifyCommandOptions {
  key: string[];
  requireFinalCheckpoint?: boolean;
  allowUnsignedTail?: boolean;
  allowGaps?: boolean;
  /** The anchor of a log whose start is not given: seq and hash of a record (an `audit checkpoint` line of the gateway log). */
  fromSeq?: string;
  fromHash?: string;
  json?: boolean;
}

/** --from-seq N --from-hash H: both or neither. */
function anchor(opts: VerifyCommandOptions): { seq: number; hash: string } | undefined {
  if (opts.fromSeq === undefined && opts.fromHash === undefined) return undefined;
  if (opts.fromSeq === undefined || opts.fromHash === undefined) usage('--from-seq and --from-hash go together (audit_seq and audit_head of an audit checkpoint line of the gateway log)');
  const seq = Number(opts.fromSeq);
  if (!/^\d+$/.test(opts.fromSeq) || !Number.isSafeInteger(seq) || seq < 1) usage(`--from-seq must be a record number ≥ 1, not ${opts.fromSeq}`);
  if (!/^[0-9a-f]{64}$/i.test(opts.fromHash)) usage('--from-hash must be a SHA-256 in hex (64 digits)');
  return { seq, hash: opts.fromHash.toLowerCase() };
}

function usage(message: string): never {
  console.error(`palisade audit: ${message}`);
  process.exit(2);
}

export function verifyCommand(files: string[], opts: VerifyCommandOptions): void {
  const keys = opts.key.map((file) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (err) {
      usage(`cannot read the key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      return loadPublicKey(pem);
    } catch (err) {
      usage(`${file} is not an Ed25519 key in PEM form (${(err as Error).message})`);
    }
  });
  for (const f of files) if (!existsSync(f)) usage(`no such file: ${f}`);
  const from = anchor(opts);
  let result: VerifyResult;
  try {
    result = verifyAuditLog(files, { keys, requireFinalCheckpoint: opts.requireFinalCheckpoint, allowUnsignedTail: opts.allowUnsignedTail, allowGaps: opts.allowGaps, from });
  } catch (err) {
    usage(`cannot read the audit log: ${(err as Error).message}`);
  }
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  else if (result.ok) {
    const c = result.lastCheckpoint;
    const last = c ? `; last checkpoint seq ${c.seq} at ${c.time}${c.final ? ' (final)' : ''}, key ${c.keyId}` : '';
    console.log(`OK: ${result.files.length} file${result.files.length === 1 ? '' : 's'}, ${result.records} records (seq ${result.firstSeq}–${result.lastSeq}), ${result.checkpoints} checkpoints${last}`);
    for (const n of result.notes) console.log(`note: ${n}`);
  } else {
    const p = result.problem!;
    console.log(`FAILED: ${p.file}:${p.line}:${p.seq === null ? '' : ` seq ${p.seq}:`} ${p.message}`);
    console.log(`(verified before it: ${result.records} records, ${result.checkpoints} checkpoints)`);
  }
  process.exit(result.ok ? 0 : 1);
}

export function keygenCommand(opts: { out: string; force?: boolean }): void {
  const keyFile = `${opts.out}.key`;
  const pubFile = `${opts.out}.pub`;
  if (!opts.force && (existsSync(keyFile) || existsSync(pubFile))) usage(`${keyFile} or ${pubFile} exists already (--force replaces them)`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  console.log(`wrote ${keyFile} (private: audit.signing_key) and ${pubFile} (public: palisade audit verify --key)`);
}
