/**
 * The hmacauth_credentials of every consumer, compiled once per config version
 * into an index by username (= RFC 9421 keyid). Secrets live on only inside
 * the compiled KeyObjects; nothing here is ever logged.
 */
import type { CredentialEntry, PdkConsumer, PdkCredential } from '../../pdk/index.ts';
import { compileKey, type CompiledKey, type CredentialInput } from './keys.ts';
import type { HmacCredential } from './schema.ts';

export interface Entry {
  readonly consumer: PdkConsumer;
  /** What ctx.authenticate gets: X-Credential-Identifier is the username. */
  readonly ref: PdkCredential;
  readonly key: CompiledKey;
}

export function buildIndex(list: readonly CredentialEntry[]): Map<string, Entry> {
  const index = new Map<string, Entry>();
  for (const { consumer, credential } of list) {
    const c = credential as unknown as HmacCredential & { id: string };
    if (index.has(c.username)) throw new Error(`hmacauth_credentials: username '${c.username}' is used by more than one credential`);
    let key: CompiledKey;
    try {
      key = compileKey(c as CredentialInput);
    } catch (err) {
      throw new Error(`hmacauth_credentials '${c.username}': ${(err as Error).message}`);
    }
    index.set(c.username, { consumer, ref: Object.freeze({ id: c.id, identifier: c.username }), key });
  }
  return index;
}

/** Credential-level check at config load: the message names the field. */
export function validateCredential(c: HmacCredential): string | null {
  try {
    compileKey(c as CredentialInput);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
