/**
 * Key material and signature verification with node:crypto KeyObjects
 * prepared once (see bench-verify.ts for why: a prepared KeyObject verifies
 * RS256 several times faster than a WebCrypto round trip, and HMAC over ten
 * times faster). Every key knows the algorithms it may verify, derived from
 * its type and size, never from a token:
 *   - HmacKey: HS256/384/512 only, from a credential's `secret`;
 *   - PublicKey: RS*, PS* (RSA >= 2048 bits), ES256/384/512 (by curve), EdDSA,
 *     from a PEM or a JWK; symmetric JWKs are refused.
 * So an HMAC secret can never verify as a public key and the reverse (the
 * classic "alg confusion" attack), and `none` is not an algorithm at all.
 */
import { constants, createHash, createHmac, createPublicKey, createSecretKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { JWT_ALGORITHMS, type JwtAlgorithm } from './schema.ts';

type Hash = 'sha256' | 'sha384' | 'sha512';

const HASH: Record<JwtAlgorithm, Hash | null> = {
  HS256: 'sha256', HS384: 'sha384', HS512: 'sha512',
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512',
  PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512',
  EdDSA: null,
};

/** Raw r||s lengths of ECDSA signatures (RFC 7518 §3.4). */
const EC_SIG_LENGTH: Partial<Record<JwtAlgorithm, number>> = { ES256: 64, ES384: 96, ES512: 132 };
const EC_CURVE_ALG: Record<string, JwtAlgorithm> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const RSA_ALGS: JwtAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const MIN_RSA_BITS = 2048;

export function isHmac(alg: JwtAlgorithm): boolean {
  return alg.charCodeAt(0) === 72; // 'H'
}

const KNOWN = new Set<string>(JWT_ALGORITHMS);
export function isAlgorithm(alg: unknown): alg is JwtAlgorithm {
  return typeof alg === 'string' && KNOWN.has(alg);
}

/** An HMAC secret: verifies HS256/384/512 and nothing else. */
export class HmacKey {
  readonly #key: KeyObject;
  constructor(secret: Buffer) {
    this.#key = createSecretKey(secret);
  }
  verify(alg: JwtAlgorithm, signingInput: string, signature: Buffer): boolean {
    if (!isHmac(alg)) return false;
    const mac = createHmac(HASH[alg]!, this.#key).update(signingInput).digest();
    return mac.length === signature.length && timingSafeEqual(mac, signature);
  }
}

/** A public key with the algorithms it may verify (its type, curve and JWK `alg` decide). */
export class PublicKey {
  readonly kid: string | null;
  readonly algs: ReadonlySet<JwtAlgorithm>;
  /** kid, algorithms and a digest of the key: tells whether a refetched set changed. */
  readonly fingerprint: string;
  readonly #key: KeyObject;
  readonly #pss: { key: KeyObject; padding: number; saltLength: number };

  constructor(key: KeyObject, kid: string | null, pinned: string | null) {
    const algs = publicKeyAlgorithms(key);
    if (pinned !== null) {
      if (!algs.includes(pinned as JwtAlgorithm)) throw new Error(`its "alg" ${JSON.stringify(pinned)} does not fit a ${describeKey(key)}`);
      algs.length = 0;
      algs.push(pinned as JwtAlgorithm);
    }
    this.kid = kid;
    this.algs = new Set(algs);
    const der = key.export({ type: 'spki', format: 'der' });
    this.fingerprint = `${kid ?? ''} ${algs.join(',')} ${createHash('sha256').update(der).digest('base64')}`;
    this.#key = key;
    this.#pss = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  }

  verify(alg: JwtAlgorithm, signingInput: Buffer, signature: Buffer): boolean {
    if (!this.algs.has(alg)) return false;
    try {
      switch (alg.charCodeAt(0)) {
        case 82: // RS
          return verify(HASH[alg], signingInput, this.#key, signature);
        case 80: // PS
          return verify(HASH[alg], signingInput, this.#pss, signature);
        case 69: // ES, EdDSA
          if (alg === 'EdDSA') return verify(null, signingInput, this.#key, signature);
          // JWS carries r||s; node's own ieee-p1363 path measured ~60 µs slower than converting here (bench-verify.ts).
          return signature.length === EC_SIG_LENGTH[alg] && verify(HASH[alg], signingInput, this.#key, p1363ToDer(signature));
        default:
          return false;
      }
    } catch {
      return false;
    }
  }
}

/** Length of the DER INTEGER content for an unsigned big-endian number: leading zeros dropped, 0x00 added before a high bit. */
function intLength(b: Buffer, from: number, to: number): [start: number, length: number] {
  while (from < to - 1 && b[from] === 0) from++;
  return [from, to - from + (b[from]! & 0x80 ? 1 : 0)];
}

/** ECDSA signature r||s (IEEE P1363, as in JWS) → DER SEQUENCE { INTEGER r, INTEGER s }. */
export function p1363ToDer(sig: Buffer): Buffer {
  const n = sig.length >> 1;
  const [rs, rl] = intLength(sig, 0, n);
  const [ss, sl] = intLength(sig, n, sig.length);
  const body = 4 + rl + sl;
  const head = body < 128 ? 2 : 3;
  const out = Buffer.alloc(head + body);
  let o = 0;
  out[o++] = 0x30;
  if (head === 3) out[o++] = 0x81;
  out[o++] = body;
  out[o++] = 0x02;
  out[o++] = rl;
  o += rl - (n - rs); // a 0x00 pad byte stays 0
  o += sig.copy(out, o, rs, n);
  out[o++] = 0x02;
  out[o++] = sl;
  o += sl - (sig.length - ss);
  sig.copy(out, o, ss, sig.length);
  return out;
}

export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return `${d.modulusLength ?? '?'}-bit ${key.asymmetricKeyType.toUpperCase()} key`;
    case 'ec':
      return `EC ${d.namedCurve ?? '?'} key`;
    default:
      return `${key.asymmetricKeyType ?? key.type} key`;
  }
}

/** The JWS algorithms a public key can verify; throws when none (too small, unsupported curve or type). */
function publicKeyAlgorithms(key: KeyObject): JwtAlgorithm[] {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      if ((d.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`is a ${describeKey(key)}: RSA keys need at least ${MIN_RSA_BITS} bits`);
      return key.asymmetricKeyType === 'rsa' ? [...RSA_ALGS] : RSA_ALGS.filter((a) => a.startsWith('PS'));
    case 'ec': {
      const alg = EC_CURVE_ALG[d.namedCurve ?? ''];
      if (alg === undefined) throw new Error(`is an ${describeKey(key)}: only P-256, P-384 and P-521 are JWS curves`);
      return [alg];
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
    default:
      throw new Error(`is a ${describeKey(key)}: not a JWS signature key`);
  }
}

/** A PEM public key or certificate. Private keys are refused: they never belong in a gateway config. */
export function importPem(pem: string): PublicKey {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new Error('is a private key: configure the public key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error('invalid key');
  }
  return new PublicKey(key, null, null);
}

/** A public JWK (RSA, EC, OKP). Symmetric and private JWKs, and keys not meant for signatures, are refused. */
export function importJwk(jwk: Record<string, unknown>): PublicKey {
  if (jwk === null || typeof jwk !== 'object') throw new Error('is not a JWK object');
  if (jwk.kty === 'oct') throw new Error('is a symmetric (oct) key: HMAC secrets go in `secret`, never in a key set');
  if ('d' in jwk) throw new Error('is a private key: publish and configure public keys only');
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`has "use" ${JSON.stringify(jwk.use)}, not "sig"`);
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) throw new Error('has "key_ops" without "verify"');
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') throw new Error('has a non-string "kid"');
  if (jwk.alg !== undefined && !isAlgorithm(jwk.alg)) throw new Error(`has an unsupported "alg" ${JSON.stringify(jwk.alg)}`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new Error(`is not a valid ${String(jwk.kty)} public key (${(err as Error).message})`);
  }
  return new PublicKey(key, (jwk.kid as string | undefined) ?? null, (jwk.alg as string | undefined) ?? null);
}
