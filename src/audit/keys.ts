/**
 * Ed25519 keys of the audit trail. The signing key comes from the config's
 * audit.signing_key: PEM text, {vault://env/NAME} (Kong's env vault syntax: the
 * PEM in environment variable NAME, upper-cased, '-' read as '_'), or a file
 * path. A key id (the first 16 hex digits of SHA-256 over the public key's
 * SPKI DER) names the key in every checkpoint.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { sha256Hex } from './canonical.ts';
import { readFileSync } from 'node:fs';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly keyId: string;
}

export function keyId(publicKey: KeyObject): string {
  return sha256Hex(publicKey.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

const ENV_REF = /^\{vault:\/\/env\/([A-Za-z0-9_-]+)\}$/;

/** The PEM text a signing_key setting stands for. Throws with a message naming the source. */
function resolveKeyText(spec: string, env: NodeJS.ProcessEnv): string {
  const s = spec.trim();
  if (s.startsWith('-----BEGIN')) return s;
  const ref = ENV_REF.exec(s);
  if (ref) {
    const name = ref[1]!.toUpperCase().replace(/-/g, '_');
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`audit.signing_key: environment variable ${name} is not set`);
    return v.replace(/\\n/g, '\n');
  }
  if (s.startsWith('{vault://')) throw new Error(`audit.signing_key: only {vault://env/NAME} references are supported`);
  try {
    return readFileSync(s, 'utf8');
  } catch (err) {
    throw new Error(`audit.signing_key: cannot read the key file ${s}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function loadSigningKey(spec: string, env = process.env): SigningKey {
  const text = resolveKeyText(spec, env);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch (err) {
    throw new Error(`audit.signing_key: not a private key in PEM form (${(err as Error).message})`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`audit.signing_key: an Ed25519 key is needed, this is ${privateKey.asymmetricKeyType}`);
  return { privateKey, keyId: keyId(createPublicKey(privateKey)) };
}

/** A verification key from PEM text: a public key, or a private key (its public half is used). */
export function loadPublicKey(pem: string): { publicKey: KeyObject; keyId: string } {
  const publicKey = createPublicKey(pem);
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error(`an Ed25519 key is needed, this is ${publicKey.asymmetricKeyType}`);
  return { publicKey, keyId: keyId(publicKey) };
}
