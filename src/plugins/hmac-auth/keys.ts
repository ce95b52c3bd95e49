/**
 * Key material of hmacauth_credentials, compiled once per config version:
 * HMAC secrets become secret KeyObjects (HMAC needs the secret itself, so it
 * cannot be stored hashed), public keys (PEM or JWK) become public KeyObjects.
 * The algorithm of an RFC 9421 key is fixed here, from the key's type (and
 * the credential's `algorithm`), never from the request.
 */
import { constants, createHash, createHmac, createPublicKey, createSecretKey, randomBytes, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

export const RFC9421_ALGORITHMS = ['hmac-sha256', 'ed25519', 'ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'rsa-pss-sha512', 'rsa-v1_5-sha256'] as const;
export type Rfc9421Alg = (typeof RFC9421_ALGORITHMS)[number];

/** Kong's draft-cavage algorithms and their hashes. */
export const CAVAGE_HASHES: Record<string, string> = {
  'hmac-sha1': 'sha1',
  'hmac-sha224': 'sha224',
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
};

export interface CredentialInput {
  username: string;
  secret?: string;
  secret_encoding?: 'text' | 'base64';
  public_key?: string | Record<string, unknown>;
  algorithm?: Rfc9421Alg;
}

export interface CompiledKey {
  /** HMAC key for the draft-cavage scheme (and RFC 9421 hmac-sha256 when there is no public key). */
  readonly secret: KeyObject | null;
  /** What RFC 9421 verifies with, and its one algorithm. */
  readonly rfcKey: KeyObject | null;
  readonly rfcAlg: Rfc9421Alg | null;
}

/** Used when the presented username or keyid is unknown, so that the work done looks the same. */
export const DUMMY_SECRET: KeyObject = createSecretKey(randomBytes(32));

const JWK_ALGS: Record<string, Rfc9421Alg> = { PS512: 'rsa-pss-sha512', RS256: 'rsa-v1_5-sha256', ES256: 'ecdsa-p256-sha256', ES384: 'ecdsa-p384-sha384', EdDSA: 'ed25519', Ed25519: 'ed25519' };

function decodeSecret(c: CredentialInput): Buffer {
  const s = c.secret!;
  if (c.secret_encoding === 'base64') {
    const compact = s.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new Error('secret: not valid base64 (secret_encoding is base64)');
    return Buffer.from(compact, 'base64');
  }
  return Buffer.from(s, 'utf8');
}

function publicKeyOf(input: string | Record<string, unknown>): { key: KeyObject; jwkAlg: string | undefined } {
  let jwk: Record<string, unknown> | null = null;
  if (typeof input === 'object') jwk = input;
  else if (input.trim().startsWith('{')) {
    try {
      jwk = JSON.parse(input) as Record<string, unknown>;
    } catch {
      throw new Error('public_key: not valid JSON (JWK)');
    }
  }
  if (jwk !== null) {
    if ('d' in jwk || 'p' in jwk) throw new Error('public_key: a private JWK was given; configure the public key only');
    try {
      return { key: createPublicKey({ key: jwk as never, format: 'jwk' }), jwkAlg: typeof jwk.alg === 'string' ? jwk.alg : undefined };
    } catch {
      throw new Error('public_key: not a usable public JWK');
    }
  }
  const pem = input as string;
  if (/PRIVATE KEY/.test(pem)) throw new Error('public_key: a private key was given; configure the public key only');
  try {
    return { key: createPublicKey(pem), jwkAlg: undefined };
  } catch {
    throw new Error('public_key: not a PEM public key or JWK');
  }
}

/** The RFC 9421 algorithms a public key can be used with, first = default. */
function algorithmsFor(key: KeyObject): Rfc9421Alg[] {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return ['ed25519'];
    case 'ec':
      if (d.namedCurve === 'prime256v1') return ['ecdsa-p256-sha256'];
      if (d.namedCurve === 'secp384r1') return ['ecdsa-p384-sha384'];
      throw new Error(`public_key: EC curve ${d.namedCurve} is not supported (P-256 or P-384)`);
    case 'rsa':
    case 'rsa-pss':
      if ((d.modulusLength ?? 0) < 2048) throw new Error('public_key: RSA keys must have at least 2048 bits');
      return key.asymmetricKeyType === 'rsa-pss' ? ['rsa-pss-sha512'] : ['rsa-pss-sha512', 'rsa-v1_5-sha256'];
    default:
      throw new Error(`public_key: key type ${key.asymmetricKeyType} is not supported`);
  }
}

/** Compile one credential; throws an Error whose message names the field. */
export function compileKey(c: CredentialInput): CompiledKey {
  const hasSecret = c.secret !== undefined;
  if (!hasSecret && c.public_key === undefined) throw new Error('secret or public_key is required');
  let secret: KeyObject | null = null;
  if (hasSecret) {
    const bytes = decodeSecret(c);
    if (bytes.length === 0) throw new Error('secret: must not be empty');
    secret = createSecretKey(bytes);
  }
  if (c.public_key === undefined) {
    if (c.algorithm !== undefined && c.algorithm !== 'hmac-sha256') throw new Error(`algorithm: ${c.algorithm} needs a public_key`);
    return { secret, rfcKey: secret, rfcAlg: 'hmac-sha256' };
  }
  const { key, jwkAlg } = publicKeyOf(c.public_key);
  const allowed = algorithmsFor(key);
  let alg: Rfc9421Alg = allowed[0]!;
  const hinted = jwkAlg !== undefined ? JWK_ALGS[jwkAlg] : undefined;
  if (jwkAlg !== undefined && hinted === undefined) throw new Error(`public_key: JWK alg ${jwkAlg} is not supported`);
  if (hinted !== undefined) {
    if (!allowed.includes(hinted)) throw new Error(`public_key: JWK alg ${jwkAlg} does not fit the key type`);
    alg = hinted;
  }
  if (c.algorithm !== undefined) {
    if (!allowed.includes(c.algorithm)) throw new Error(`algorithm: ${c.algorithm} does not fit the public_key (${allowed.join(' or ')})`);
    if (hinted !== undefined && hinted !== c.algorithm) throw new Error(`algorithm: ${c.algorithm} contradicts the JWK alg ${jwkAlg}`);
    alg = c.algorithm;
  }
  return { secret, rfcKey: key, rfcAlg: alg };
}

/** Constant-time equality of two byte strings (the lengths are not secret: they follow from the algorithm). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

export function hmac(hash: string, key: KeyObject, data: string | Buffer): Buffer {
  return createHmac(hash, key).update(data).digest();
}

export function sha(hash: 'sha256' | 'sha512', data: Buffer): Buffer {
  return createHash(hash).update(data).digest();
}

/** RFC 9421 §3.3: verify `signature` over `base` with the credential's own algorithm. */
export function verifyRfc9421(alg: Rfc9421Alg, key: KeyObject, base: Buffer, signature: Buffer): boolean {
  try {
    switch (alg) {
      case 'hmac-sha256':
        return safeEqual(hmac('sha256', key, base), signature);
      case 'ed25519':
        return signature.length === 64 && verify(null, base, key, signature);
      case 'ecdsa-p256-sha256':
        return signature.length === 64 && verify('sha256', base, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'ecdsa-p384-sha384':
        return signature.length === 96 && verify('sha384', base, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'rsa-pss-sha512':
        return verify('sha512', base, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, signature);
      case 'rsa-v1_5-sha256':
        return verify('sha256', base, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
  } catch {
    return false;
  }
}
