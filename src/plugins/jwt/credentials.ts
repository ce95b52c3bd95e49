/**
 * jwt_secrets credentials: load-time validation (Kong's daos.lua checks plus
 * Palisade's key sources) and the index built once per config version: key →
 * credential with its algorithm allow-list and prepared key material.
 */
import type { Logger } from 'pino';
import type { CredentialEntry, PdkConsumer, PdkCredential } from '../../pdk/index.ts';
import { importKeySet, remoteKeySet, type RemoteKeySet, type RemoteSettings } from './jwks.ts';
import { HmacKey, importJwk, importPem, isHmac, type PublicKey } from './keys.ts';
import type { JwtAlgorithm, JwtCredential } from './schema.ts';

export interface CompiledCredential {
  readonly key: string;
  readonly consumer: PdkConsumer;
  readonly identity: PdkCredential;
  /** The only algorithms a token may use with this credential. */
  readonly algorithms: ReadonlySet<JwtAlgorithm>;
  /** HS* key; null when the secret is missing or not valid base64 ("Invalid key/secret"). */
  readonly hmac: HmacKey | null;
  /** Static public keys (PEM, JWK, inline JWKS), or null. */
  readonly keys: readonly PublicKey[] | null;
  /** Remote key set (jwks_url), or null. */
  readonly remote: RemoteKeySet | null;
  /** Key sets pick their key by the token's `kid`; a single PEM/JWK key ignores it (as Kong does). */
  readonly byKid: boolean;
}

function allowList(c: JwtCredential): JwtAlgorithm[] {
  return c.algorithms ?? [c.algorithm];
}

/** Static public keys of a credential, labelled by field for error messages. */
function staticKeys(c: JwtCredential): PublicKey[] | null {
  const label = (field: string, fn: () => PublicKey): PublicKey => {
    try {
      return fn();
    } catch (err) {
      throw new Error(`${field}: ${(err as Error).message}`);
    }
  };
  if (c.rsa_public_key !== undefined) return [label('rsa_public_key', () => importPem(c.rsa_public_key!))];
  if (c.jwk !== undefined) return [label('jwk', () => importJwk(c.jwk as Record<string, unknown>))];
  if (c.jwks !== undefined) {
    return importKeySet(c.jwks, (i, reason) => {
      throw new Error(`jwks.keys[${i}]: ${reason}`);
    });
  }
  return null;
}

/** Cross-field rules of one credential (run at load; the message names the field). */
export function validateCredential(c: JwtCredential): string | null {
  const sources = (['rsa_public_key', 'jwk', 'jwks', 'jwks_url'] as const).filter((f) => c[f] !== undefined);
  if (sources.length > 1) return `set only one of rsa_public_key, jwk, jwks, jwks_url (got ${sources.join(', ')})`;
  const algs = allowList(c);
  let keys: PublicKey[] | null;
  try {
    keys = staticKeys(c);
  } catch (err) {
    return (err as Error).message;
  }
  for (const alg of algs) {
    if (isHmac(alg)) {
      if (c.secret === undefined) return `secret: required for ${alg}`;
      continue;
    }
    if (sources.length === 0) return `rsa_public_key: required for ${alg} (or a Palisade jwk, jwks or jwks_url)`;
    if (keys !== null && !keys.some((k) => k.algs.has(alg))) {
      return `${sources[0]}: no key can verify ${alg} (${keys.length === 1 ? `the key verifies ${[...keys[0]!.algs].join(', ')}` : 'wrong key types'})`;
    }
  }
  return null;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export interface IndexOptions {
  secretIsBase64: boolean;
  remote: RemoteSettings;
  log: Logger;
}

/** key → compiled credential. Throws on a duplicate key (Kong: `key` is unique). */
export function buildIndex(entries: readonly CredentialEntry[], opts: IndexOptions): Map<string, CompiledCredential> {
  const index = new Map<string, CompiledCredential>();
  for (const { consumer, credential } of entries) {
    const c = credential as unknown as JwtCredential & { id: string };
    const key = c.key ?? c.id;
    if (index.has(key)) throw new Error(`jwt_secrets: key '${key}' is used by two credentials`);
    let hmac: HmacKey | null = null;
    if (c.secret !== undefined) {
      const bytes = !opts.secretIsBase64 ? Buffer.from(c.secret, 'utf8') : BASE64.test(c.secret) ? Buffer.from(c.secret, 'base64') : null;
      if (bytes !== null && bytes.length > 0) hmac = new HmacKey(bytes);
      else opts.log.warn({ credential: c.id }, 'jwt: secret is not base64 although secret_is_base64 is set; HS tokens of this credential are refused');
    }
    const remote = c.jwks_url !== undefined ? remoteKeySet(c.jwks_url, opts.remote, opts.log) : null;
    index.set(key, {
      key,
      consumer,
      identity: { id: c.id, identifier: key },
      algorithms: new Set(allowList(c)),
      hmac: hmac !== null && allowList(c).some(isHmac) ? hmac : null,
      keys: staticKeys(c),
      remote,
      byKid: c.jwks !== undefined || remote !== null,
    });
  }
  return index;
}
