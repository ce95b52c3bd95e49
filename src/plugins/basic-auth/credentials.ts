/**
 * The basic-auth credential index (username → credential, built once per
 * config version) and the cache of recent successful verifications.
 *
 * Plain passwords from the config are hashed (argon2id) in the background as
 * soon as the config is compiled — never on the event loop — and the index
 * then forgets them; a request that needs a credential still being hashed
 * waits for it (and moves it to the front of the queue).
 *
 * The cache remembers that (credential, password) verified, for a TTL, keyed
 * by HMAC-SHA-256 under a random per-process secret of (credential id, stored
 * hash, password): never the password itself, and a changed password (a new
 * stored hash) misses. Failures are never cached. Concurrent verifications of
 * the same (credential, password) share one computation.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { CredentialEntry, PdkConsumer, PdkCredential } from '../../pdk/index.ts';
import { hashPassword, parsePasswordHash, verifyPassword, type Verifier } from './passwords.ts';
import type { BasicAuthCredential } from './schema.ts';

export class PasswordEntry {
  readonly consumer: PdkConsumer;
  readonly credential: PdkCredential;
  /** The stored hash (PHC string or kong-sha1:…); '' while a plain password is being hashed. */
  phc = '';
  verifier: Verifier | null = null;
  #pending: Promise<void> | null = null;
  #plain: string | null;

  constructor(consumer: PdkConsumer, credential: PdkCredential, hash: string | null, plain: string | null) {
    this.consumer = consumer;
    this.credential = credential;
    this.#plain = plain;
    if (hash !== null) this.#set(hash);
  }

  #set(phc: string): void {
    const v = parsePasswordHash(phc);
    if (typeof v === 'string') throw new Error(v);
    this.phc = phc;
    this.verifier = v;
  }

  get ready(): boolean {
    return this.verifier !== null;
  }

  /** Hash the plain password (once); `urgent` when a request waits for it. */
  ensure(urgent: boolean): Promise<void> {
    if (this.verifier !== null) return Promise.resolve();
    if (this.#pending === null) {
      const plain = this.#plain!;
      this.#pending = hashPassword(plain, urgent).then((phc) => {
        this.#set(phc);
        this.#plain = null;
      });
    }
    return this.#pending;
  }
}

export class PasswordIndex {
  readonly #byUsername = new Map<string, PasswordEntry>();
  /** Credentials with a plain password, in file order (hashed in the background). */
  readonly #plain: PasswordEntry[] = [];

  constructor(entries: readonly CredentialEntry[]) {
    const plain = this.#plain;
    for (const { consumer, credential } of entries) {
      const c = credential as unknown as BasicAuthCredential & { id: string };
      const clash = this.#byUsername.get(c.username);
      if (clash !== undefined) {
        throw new Error(`basicauth_credentials: username '${c.username}' is used twice (consumers '${name(clash.consumer)}' and '${name(consumer)}'); usernames must be unique`);
      }
      const e = new PasswordEntry(consumer, Object.freeze({ id: c.id, identifier: c.username }), c.password_hash ?? null, c.password ?? null);
      this.#byUsername.set(c.username, e);
      if (!e.ready) plain.push(e);
    }
    if (plain.length > 0) hashInBackground(new WeakRef(this));
  }

  get(username: string): PasswordEntry | undefined {
    return this.#byUsername.get(username);
  }

  /** The i-th credential that came with a plain password. */
  plainAt(i: number): PasswordEntry | undefined {
    return this.#plain[i];
  }
}

function name(c: PdkConsumer): string {
  return c.username ?? c.custom_id ?? c.id;
}

/** Hash plain passwords one after another; stops when the config version is gone. */
function hashInBackground(ref: WeakRef<PasswordIndex>): void {
  let i = 0;
  setImmediate(function step() {
    const e = ref.deref()?.plainAt(i++);
    if (e === undefined) return;
    const next = () => void setImmediate(step).unref();
    e.ensure(false).then(next, next);
  }).unref();
}

/** Successful verifications, LRU-bounded. */
const CACHE_MAX = 10_000;
const verified = new Map<string, number>();
const inFlight = new Map<string, Promise<boolean>>();
const CACHE_SECRET = randomBytes(32);

export function cacheKey(entry: PasswordEntry, password: Buffer): string {
  return createHmac('sha256', CACHE_SECRET).update(`${entry.credential.id}\0${entry.phc}\0`).update(password).digest('base64');
}

/** Verified within ttlMs? (refreshes recency, not the age) */
export function cachedSuccess(key: string, ttlMs: number, now: number): boolean {
  const at = verified.get(key);
  if (at === undefined) return false;
  verified.delete(key);
  if (now - at >= ttlMs) return false;
  verified.set(key, at);
  return true;
}

function remember(key: string, now: number): void {
  verified.delete(key);
  verified.set(key, now);
  if (verified.size > CACHE_MAX) verified.delete(verified.keys().next().value!);
}

/**
 * Verify a presented password against a credential (or, for an unknown
 * username, do the same work and fail). Successes are cached when ttlMs > 0.
 */
export async function verify(entry: PasswordEntry | undefined, password: Buffer, ttlMs: number): Promise<boolean> {
  if (entry === undefined) return verifyPassword(null, password, '');
  if (!entry.ready) await entry.ensure(true);
  const key = ttlMs > 0 ? cacheKey(entry, password) : null;
  if (key !== null && cachedSuccess(key, ttlMs, Date.now())) return true;
  const shared = key !== null ? inFlight.get(key) : undefined;
  if (shared !== undefined) return shared;
  const p = verifyPassword(entry.verifier, password, entry.consumer.id);
  if (key === null) return p;
  inFlight.set(key, p);
  try {
    const ok = await p;
    if (ok) remember(key, Date.now());
    return ok;
  } finally {
    inFlight.delete(key);
  }
}
