/**
 * Credentials of the auth scenarios, made fresh for each bench run: an API
 * key and three JWTs (HS256, RS256, ES256) with their verification keys. Every
 * contender receives the same request carrying all of them (the proxies that
 * don't authenticate just forward the headers), so the rows stay comparable.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function jwt(alg: 'HS256' | 'RS256' | 'ES256', iss: string, key: Parameters<typeof sign>[2] | Buffer): string {
  const head = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64url(JSON.stringify({ iss, sub: 'bench', exp: Math.floor(Date.now() / 1000) + 3600 }));
  const input = `${head}.${body}`;
  const sig =
    alg === 'HS256'
      ? createHmac('sha256', key as Buffer).update(input).digest()
      : sign('sha256', Buffer.from(input), alg === 'ES256' ? { key: key as never, dsaEncoding: 'ieee-p1363' } : (key as never));
  return `${input}.${b64url(sig)}`;
}

export interface BenchCredentials {
  apiKey: string;
  hsSecret: string;
  rsaPublicPem: string;
  ecPublicPem: string;
  headers: Record<string, string>;
}

export function makeCredentials(): BenchCredentials {
  const apiKey = randomBytes(24).toString('base64url');
  const hsSecret = randomBytes(32).toString('hex');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    apiKey,
    hsSecret,
    rsaPublicPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ecPublicPem: ec.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    headers: {
      apikey: apiKey,
      'x-jwt-hs256': 'Bearer ' + jwt('HS256', 'bench-hs256', Buffer.from(hsSecret)),
      'x-jwt-rs256': 'Bearer ' + jwt('RS256', 'bench-rs256', rsa.privateKey),
      'x-jwt-es256': 'Bearer ' + jwt('ES256', 'bench-es256', ec.privateKey),
    },
  };
}
