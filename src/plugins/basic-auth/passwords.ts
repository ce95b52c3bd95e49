/**
 * Password hashes: parsing PHC strings, hashing plain passwords, verifying —
 * all with Node's asynchronous crypto (libuv thread pool), so a 50 ms hash
 * never blocks the event loop.
 *
 * Argon2id with OWASP's first recommendation (m=19 MiB, t=2, p=1) is the
 * default: on the reference machine it costs ~57 ms and 19 MiB, where scrypt
 * at OWASP's parameters (N=2^17, r=8, p=1) costs ~500 ms and 128 MiB.
 * Accepted ready hashes: `$argon2id$` / `$argon2i$` / `$argon2d$` (v=19),
 * `$scrypt$ln=…,r=…,p=…$salt$hash` (passlib's format) and, for credentials
 * exported from Kong (decK `_transform: false`), `kong-sha1:<hex>` — Kong's
 * SHA-1(password .. consumer id). bcrypt (`$2a$`, `$2b$`, `$2y$`) is not
 * supported: Node has no bcrypt and a JavaScript one would block the event loop.
 */
import { argon2, createHash, randomBytes, scrypt, timingSafeEqual, type Argon2Algorithm } from 'node:crypto';

export const ARGON2_DEFAULT = { algorithm: 'argon2id' as Argon2Algorithm, memory: 19456, passes: 2, parallelism: 1, tagLength: 32 };

export type Verifier =
  | { kind: 'argon2'; algorithm: Argon2Algorithm; memory: number; passes: number; parallelism: number; salt: Buffer; hash: Buffer }
  | { kind: 'scrypt'; N: number; r: number; p: number; salt: Buffer; hash: Buffer }
  | { kind: 'kong-sha1'; hash: Buffer };

/** PHC base64: standard alphabet without padding (passlib's '.' for '+' accepted). */
function b64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/.]+$/.test(s)) return null;
  return Buffer.from(s.replaceAll('.', '+'), 'base64');
}

function params(s: string): Map<string, number> | null {
  const out = new Map<string, number>();
  for (const kv of s.split(',')) {
    const m = /^([a-z]+)=(\d{1,10})$/.exec(kv);
    if (!m) return null;
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** A ready hash from the config → a verifier, or an error message. */
export function parsePasswordHash(text: string): Verifier | string {
  if (/^\$2[abxy]?\$/.test(text)) return 'bcrypt hashes are not supported (Node has no bcrypt); use an $argon2id$ or $scrypt$ hash, or a plain password';
  const sha1 = /^kong-sha1:([0-9a-fA-F]{40})$/.exec(text);
  if (sha1) return { kind: 'kong-sha1', hash: Buffer.from(sha1[1]!, 'hex') };
  const parts = text.split('$');
  // ['', algorithm, (v=19,) params, salt, hash]
  if (parts[0] !== '' || parts.length < 5) return 'password_hash must be a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash or $scrypt$ln=…,r=…,p=…$salt$hash) or kong-sha1:<hex>';
  const algo = parts[1]!;
  if (algo === 'argon2id' || algo === 'argon2i' || algo === 'argon2d') {
    if (parts.length !== 6 || parts[2] !== 'v=19') return `${algo}: only version 19 (v=19) hashes are supported`;
    const p = params(parts[3]!);
    const salt = b64(parts[4]!);
    const hash = b64(parts[5]!);
    const m = p?.get('m'), t = p?.get('t'), par = p?.get('p');
    if (m === undefined || t === undefined || par === undefined || salt === null || hash === null) return `${algo}: malformed PHC string`;
    if (par < 1 || par > 64 || t < 1 || t > 64 || m < 8 * par || m > 1048576) return `${algo}: parameters out of range (m ≤ 1048576 KiB, t ≤ 64, p ≤ 64)`;
    if (salt.length < 8 || hash.length < 4) return `${algo}: salt or hash too short`;
    return { kind: 'argon2', algorithm: algo, memory: m, passes: t, parallelism: par, salt, hash };
  }
  if (algo === 'scrypt') {
    if (parts.length !== 5) return 'scrypt: malformed PHC string';
    const p = params(parts[2]!);
    const salt = b64(parts[3]!);
    const hash = b64(parts[4]!);
    const ln = p?.get('ln'), r = p?.get('r'), par = p?.get('p');
    if (ln === undefined || r === undefined || par === undefined || salt === null || hash === null) return 'scrypt: malformed PHC string';
    if (ln < 1 || ln > 20 || r < 1 || r > 32 || par < 1 || par > 16) return 'scrypt: parameters out of range (ln ≤ 20, r ≤ 32, p ≤ 16)';
    if (hash.length < 4) return 'scrypt: hash too short';
    return { kind: 'scrypt', N: 2 ** ln, r, p: par, salt, hash };
  }
  return `unsupported password hash algorithm '${algo}'`;
}

/** At most this many hash computations at once: the rest of the thread pool stays free for DNS and files. */
const SLOTS = Math.max(1, (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 2);
let active = 0;
const urgent: (() => void)[] = [];
const background: (() => void)[] = [];

function release(): void {
  const next = urgent.shift() ?? background.shift();
  if (next !== undefined) next();
  else active--;
}

/** Run a hash computation in a slot; request-driven work goes before background hashing. */
function slot<T>(fn: () => Promise<T>, isUrgent: boolean): Promise<T> {
  const run = () => fn().finally(release);
  if (active < SLOTS) {
    active++;
    return run();
  }
  return new Promise<T>((resolve, reject) => (isUrgent ? urgent : background).push(() => void run().then(resolve, reject)));
}

function argon2Async(algorithm: Argon2Algorithm, message: string | Buffer, salt: Buffer, memory: number, passes: number, parallelism: number, tagLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    argon2(algorithm, { message, nonce: salt, memory, passes, parallelism, tagLength }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function scryptAsync(password: string | Buffer, salt: Buffer, len: number, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, len, { N, r, p, maxmem: 256 * N * r * p + 16 * 1048576 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function phcB64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

/** Hash a plain password from the config (argon2id, OWASP parameters) → PHC string. */
export function hashPassword(password: string, isUrgent = false): Promise<string> {
  const d = ARGON2_DEFAULT;
  const salt = randomBytes(16);
  return slot(() => argon2Async(d.algorithm, password, salt, d.memory, d.passes, d.parallelism, d.tagLength), isUrgent).then(
    (hash) => `$${d.algorithm}$v=19$m=${d.memory},t=${d.passes},p=${d.parallelism}$${phcB64(salt)}$${phcB64(hash)}`,
  );
}

const DUMMY_SALT = randomBytes(16);
const DUMMY_HASH = randomBytes(ARGON2_DEFAULT.tagLength);

/**
 * The work of a verification against a default-parameter argon2id hash, for a
 * username that does not exist (or a fast legacy hash): same cost, same
 * timing, always false.
 */
function dummy(password: Buffer): Promise<boolean> {
  const d = ARGON2_DEFAULT;
  return slot(() => argon2Async(d.algorithm, password, DUMMY_SALT, d.memory, d.passes, d.parallelism, d.tagLength), true).then(
    (out) => timingSafeEqual(out, DUMMY_HASH) && false,
  );
}

/** Verify a password (consumerId: Kong's salt for kong-sha1); null = unknown user → dummy work, false. */
export function verifyPassword(v: Verifier | null, password: Buffer, consumerId: string): Promise<boolean> {
  if (v === null) return dummy(password);
  if (v.kind === 'argon2') {
    return slot(() => argon2Async(v.algorithm, password, v.salt, v.memory, v.passes, v.parallelism, v.hash.length), true).then((out) =>
      timingSafeEqual(out, v.hash),
    );
  }
  if (v.kind === 'scrypt') {
    return slot(() => scryptAsync(password, v.salt, v.hash.length, v.N, v.r, v.p), true).then((out) => timingSafeEqual(out, v.hash));
  }
  // Kong's legacy hash is fast: pay the default cost anyway, so timing does not tell it apart from an unknown user.
  const digest = createHash('sha1').update(password).update(consumerId).digest();
  return dummy(password).then(() => timingSafeEqual(digest, v.hash));
}
