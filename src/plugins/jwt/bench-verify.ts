/**
 * Micro-benchmark behind the jwt plugin's verification path: µs per
 * verification of one token, for HS256, RS256 and ES256,
 *   - via jose (jwtVerify: WebCrypto, async; and compactVerify, signature only),
 *   - via node:crypto with a KeyObject prepared once (signature only; ES256 with
 *     node's own dsaEncoding: 'ieee-p1363', which the plugin avoids),
 *   - via the plugin's path (strict parse + prepared KeyObject),
 *   - and a cache hit (SHA-256 of the token + LRU lookup).
 * Run: ./node_modules/.bin/node src/plugins/jwt/bench-verify.ts [iterations]
 * The numbers are in docs/plugins/jwt.md.
 */
import { createHmac, generateKeyPairSync, hash, verify, type KeyObject } from 'node:crypto';
import { compactVerify, importJWK, importSPKI, jwtVerify, SignJWT } from 'jose';
import { TokenCache } from './cache.ts';
import { HmacKey, importPem, type PublicKey } from './keys.ts';
import { parseToken } from './token.ts';

const N = Number(process.argv[2] ?? 20000);

/** Median of 3 rounds of `n` sequential calls, in µs per call. */
async function time(label: string, n: number, fn: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(2000, n); i++) await fn(); // warm-up
  const rounds: number[] = [];
  for (let round = 0; round < 3; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    rounds.push(Number(process.hrtime.bigint() - start) / 1000 / n);
  }
  const us = rounds.sort((a, b) => a - b)[1]!;
  console.log(`${label.padEnd(48)} ${us.toFixed(2).padStart(8)} µs`);
  return us;
}

function check(ok: unknown): void {
  if (ok !== true) throw new Error('verification failed');
}

const claims = { iss: 'bench-key', sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 3600 };
const secret = Buffer.from('a-32-byte-long-hmac-secret-value!');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const cases: { alg: 'HS256' | 'RS256' | 'ES256'; signKey: KeyObject | Uint8Array; verifyKey: () => Promise<CryptoKey | Uint8Array>; plugin: HmacKey | PublicKey; node: (data: Buffer, sig: Buffer) => boolean }[] = [
  {
    alg: 'HS256',
    signKey: secret,
    verifyKey: async () => secret,
    plugin: new HmacKey(secret),
    node: (() => {
      const key = new HmacKey(secret);
      return (data: Buffer, sig: Buffer) => key.verify('HS256', data.toString('latin1'), sig);
    })(),
  },
  {
    alg: 'RS256',
    signKey: rsa.privateKey,
    verifyKey: () => importSPKI(rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string, 'RS256'),
    plugin: importPem(rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string),
    node: (data, sig) => verify('sha256', data, rsa.publicKey, sig),
  },
  {
    alg: 'ES256',
    signKey: ec.privateKey,
    verifyKey: () => importJWK(ec.publicKey.export({ format: 'jwk' }), 'ES256') as Promise<CryptoKey>,
    plugin: importPem(ec.publicKey.export({ type: 'spki', format: 'pem' }) as string),
    node: (() => {
      const key = { key: ec.publicKey, dsaEncoding: 'ieee-p1363' as const };
      return (data: Buffer, sig: Buffer) => verify('sha256', data, key, sig);
    })(),
  },
];

console.log(`node ${process.version}, ${N} iterations per row (RSA 2048, EC P-256, 33-byte HMAC secret)\n`);
const rows: Record<string, Record<string, number>> = {};
for (const c of cases) {
  const token = await new SignJWT(claims).setProtectedHeader({ alg: c.alg, typ: 'JWT' }).sign(c.signKey);
  const dot = token.lastIndexOf('.');
  const data = Buffer.from(token.slice(0, dot));
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const key = await c.verifyKey();
  const r: Record<string, number> = (rows[c.alg] = {});
  const n = c.alg === 'HS256' ? N : Math.ceil(N / 4);
  r.jose_jwtVerify = await time(`${c.alg} jose jwtVerify (parse+verify+claims)`, n, async () => {
    await jwtVerify(token, key, { algorithms: [c.alg] });
  });
  r.jose_compactVerify = await time(`${c.alg} jose compactVerify`, n, async () => {
    await compactVerify(token, key, { algorithms: [c.alg] });
  });
  r.node_crypto = await time(`${c.alg} node:crypto, prepared KeyObject${c.alg === 'ES256' ? ' (p1363)' : ''}`, n, () => check(c.node(data, sig)));
  r.plugin = await time(`${c.alg} plugin path (parse + KeyObject${c.alg === 'ES256' ? ' + DER' : ''})`, n, () => {
    const t = parseToken(token);
    if (typeof t === 'string') throw new Error(t);
    const input = c.alg === 'HS256' ? t.signingInput : Buffer.from(t.signingInput, 'latin1');
    check((c.plugin as { verify(a: string, d: unknown, s: Buffer): boolean }).verify(c.alg, input, t.signature));
  });
  console.log('');
}

// A cache hit: SHA-256 of the whole token + a lookup in a full cache of 10,000 tokens.
const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
const cache = new TokenCache<object>(10000);
for (let i = 0; i < 10000; i++) cache.set(String(i), {});
cache.set(hash('sha256', token, 'base64'), { ok: true });
const hit = await time('cache hit (sha256 + TokenCache of 10,000)', N, () => {
  if (cache.get(hash('sha256', token, 'base64')) === undefined) throw new Error('miss');
});
// The textbook Map LRU (delete + set on every hit), for comparison.
const lru = new Map<string, object>();
for (let i = 0; i < 10000; i++) lru.set(String(i), {});
const k0 = hash('sha256', token, 'base64');
lru.set(k0, { ok: true });
const naive = await time('naive Map LRU hit (delete + set), 10,000', Math.ceil(N / 4), () => {
  const v = lru.get(k0)!;
  lru.delete(k0);
  lru.set(k0, v);
});
const rawHmac = await time('HMAC-SHA256, raw Buffer key (no KeyObject)', Math.ceil(N / 4), () => createHmac('sha256', secret).update(token).digest());
console.log(JSON.stringify({ node: process.version, iterations: N, rows, cache_hit: hit, naive_lru_hit: naive, hmac_raw_key: rawHmac }));
