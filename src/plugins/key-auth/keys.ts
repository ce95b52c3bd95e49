/**
 * The key index: built once per config version, keyed by the digest of each
 * key. A request costs one SHA-256 (or HMAC-SHA-256) of the presented key and
 * one Map lookup; there is no loop over credentials and no plain key in
 * memory beyond the config itself. Looking up a digest instead of comparing
 * keys is what keeps the lookup free of key-dependent timing: what a timing
 * difference could reveal is the digest, and a digest does not lead back to a
 * key.
 */
import { createHmac, hash } from 'node:crypto';
import type { CredentialEntry, PdkConsumer, PdkCredential } from '../../pdk/index.ts';
import { HMAC_SECRET_ENV, HMAC_SECRET_MIN, type KeyAuthCredential } from './schema.ts';

export interface KeyEntry {
  readonly consumer: PdkConsumer;
  readonly credential: PdkCredential;
  /** Epoch ms after which the key is refused; 0 = never. */
  readonly expiresAt: number;
}

/**
 * When a credential with a ttl but no created_at was first loaded by this
 * process (credential id + digest → epoch ms): a reload keeps the clock running.
 */
const firstSeen = new Map<string, number>();

export class KeyIndex {
  readonly #sha = new Map<string, KeyEntry>();
  readonly #hmac = new Map<string, KeyEntry>();
  readonly #secret: string | null;

  constructor(entries: readonly CredentialEntry[], now = Date.now()) {
    const env = process.env[HMAC_SECRET_ENV];
    this.#secret = env !== undefined && env.length >= HMAC_SECRET_MIN ? env : null;
    const owners = new Map<string, string>();
    for (const { consumer, credential } of entries) {
      const c = credential as unknown as KeyAuthCredential & { id: string };
      let kind: 'sha' | 'hmac';
      let digest: string;
      if (c.key !== undefined) {
        // Plain keys take the strongest digest available; only the digest is kept.
        kind = this.#secret !== null ? 'hmac' : 'sha';
        digest = kind === 'hmac' ? this.#hmacOf(c.key) : shaOf(c.key);
      } else {
        const [algo, hex] = c.key_hash!.split(':') as [string, string];
        if (algo === 'hmac-sha256' && this.#secret === null) {
          throw new Error(`keyauth_credentials ${c.id}: key_hash hmac-sha256 needs the ${HMAC_SECRET_ENV} environment variable (at least ${HMAC_SECRET_MIN} characters)`);
        }
        kind = algo === 'hmac-sha256' ? 'hmac' : 'sha';
        digest = hex.toLowerCase();
      }
      const who = `consumer '${consumer.username ?? consumer.custom_id ?? consumer.id}'`;
      const clash = owners.get(`${kind}:${digest}`);
      if (clash !== undefined) throw new Error(`keyauth_credentials: ${clash} and ${who} carry the same key (keys must be unique)`);
      owners.set(`${kind}:${digest}`, who);
      const ttl = c.ttl ?? 0;
      let expiresAt = 0;
      if (ttl > 0) {
        let start: number;
        if (c.created_at !== undefined) start = c.created_at * 1000;
        else {
          const seenKey = `${c.id}:${digest}`;
          start = firstSeen.get(seenKey) ?? now;
          firstSeen.set(seenKey, start);
        }
        expiresAt = start + ttl * 1000;
      }
      const entry: KeyEntry = Object.freeze({ consumer, credential: Object.freeze({ id: c.id, identifier: c.id }), expiresAt });
      (kind === 'hmac' ? this.#hmac : this.#sha).set(digest, entry);
    }
  }

  #hmacOf(key: string): string {
    return createHmac('sha256', this.#secret!).update(key).digest('hex');
  }

  /** The credential of a presented key, expired or not; undefined when unknown. */
  lookup(key: string): KeyEntry | undefined {
    if (this.#sha.size > 0) {
      const e = this.#sha.get(shaOf(key));
      if (e !== undefined) return e;
    }
    return this.#hmac.size > 0 ? this.#hmac.get(this.#hmacOf(key)) : undefined;
  }
}

function shaOf(key: string): string {
  return hash('sha256', key, 'hex');
}
