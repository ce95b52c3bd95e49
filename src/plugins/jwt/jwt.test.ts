/**
 * jwt plugin, black-box: real gateway, real echo upstream on 127.0.0.1.
 * Tokens are signed with jose (every algorithm Kong lists) and with
 * node:crypto for hand-crafted ones (alg confusion, `none`, malformed).
 * Key sets served over HTTP (rotation, refresh limit) are in jwt-jwks.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

const ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
type Alg = (typeof ALGS)[number];

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;

/** Sign a token by hand (node:crypto), with any header: what an attacker can send. */
function craft(alg: string, key: KeyObject | Buffer | string | null, claims: object, header: object = {}): string {
  const input = `${b64url(JSON.stringify({ alg, typ: 'JWT', ...header }))}.${b64url(JSON.stringify(claims))}`;
  const data = Buffer.from(input);
  const hash = `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (key === null) sig = Buffer.alloc(0);
  else if (alg.startsWith('HS')) sig = createHmac(hash, key as Buffer | string).update(input).digest();
  else if (alg.startsWith('RS')) sig = sign(hash, data, key as KeyObject);
  else if (alg.startsWith('PS')) sig = sign(hash, data, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  else if (alg.startsWith('ES')) sig = sign(hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = sign(null, data, key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, any>;
  /** Headers the upstream saw (when the request got through). */
  seen: Record<string, string | undefined>;
}

describe('jwt', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const secret = 'alice-shared-secret-0123456789abcdef';
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec: Record<string, { publicKey: KeyObject; privateKey: KeyObject }> = {
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    ES384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    ES512: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  };
  const ed = generateKeyPairSync('ed25519');
  const ed448 = generateKeyPairSync('ed448');
  const ecOther = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  /** Private signing key and credential (public material) of the consumer for each algorithm. */
  function material(alg: Alg): { signKey: KeyObject | Uint8Array; cred: Record<string, unknown> } {
    if (alg.startsWith('HS')) return { signKey: Buffer.from(`${alg}-secret-${'x'.repeat(64)}`), cred: { secret: `${alg}-secret-${'x'.repeat(64)}` } };
    if (alg.startsWith('RS') || alg.startsWith('PS')) return { signKey: rsa.privateKey, cred: { rsa_public_key: pem(rsa.publicKey) } };
    if (alg === 'EdDSA') return { signKey: ed.privateKey, cred: { rsa_public_key: pem(ed.publicKey) } };
    return { signKey: ec[alg]!.privateKey, cred: { rsa_public_key: pem(ec[alg]!.publicKey) } };
  }

  const route = (name: string, config: object = {}, extra: object[] = []) => ({
    name,
    paths: [`/${name}`],
    plugins: [{ name: 'jwt', config: { brute_force: { enabled: false }, ...config } }, ...extra],
  });

  before(async () => {
    upstream = await startUpstream();
    const ecJwk = { ...ec.ES256!.publicKey.export({ format: 'jwk' }), kid: 'e1' };
    const rsaJwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'r1' };
    gw = await startGateway({
      consumers: [
        { username: 'alice', custom_id: 'alice-cid', jwt_secrets: [{ key: 'alice', secret }] },
        ...ALGS.map((alg) => ({ username: `user-${alg}`, jwt_secrets: [{ key: `key-${alg}`, algorithm: alg, ...material(alg).cred }] })),
        { username: 'ed448', jwt_secrets: [{ key: 'key-ed448', algorithm: 'EdDSA', rsa_public_key: pem(ed448.publicKey) }] },
        { username: 'b64', jwt_secrets: [{ key: 'b64', secret: Buffer.from('raw secret bytes \x00\x01').toString('base64') }, { key: 'b64-bad', secret: 'not base64!' }] },
        // Palisade: an allow-list with both families; each uses only its own key material.
        { username: 'mixed', jwt_secrets: [{ key: 'mixed', algorithms: ['HS256', 'RS256'], secret: 'mixed-secret', rsa_public_key: pem(rsa.publicKey) }] },
        { username: 'jwk-one', jwt_secrets: [{ key: 'jwk-one', algorithm: 'ES256', jwk: ecJwk }] },
        { username: 'jwks-inline', jwt_secrets: [{ key: 'jwks-inline', algorithms: ['RS256', 'ES256'], jwks: { keys: [rsaJwk, ecJwk] } }] },
        { username: 'anonymous-user' },
        { username: 'keyed', keyauth_credentials: [{ key: 'api-key-1' }] },
        { username: 'locked', jwt_secrets: [{ key: 'locked', secret: 'locked-secret' }] },
      ],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('jwt'),
            route('realm', { realm: 'palisade' }),
            route('exp', { claims_to_verify: ['exp', 'nbf'] }),
            route('skew', { claims_to_verify: ['exp', 'nbf'], clock_skew: 30 }),
            route('maxexp', { claims_to_verify: ['exp'], maximum_expiration: 60 }),
            route('kid-claim', { key_claim_name: 'kid' }),
            route('sources', { uri_param_names: ['jwt', 'token'], cookie_names: ['jwt_cookie'], header_names: ['authorization', 'x-token'] }),
            route('b64', { secret_is_base64: true }),
            route('anon', { anonymous: 'anonymous-user' }),
            route('preflight', { run_on_preflight: false }),
            route('claims', { claims_to_headers: { sub: 'X-User-Id', 'realm_access.roles': 'X-Roles', email: 'X-Email', name: 'X-Name' } }),
            route('policy', { allowed_issuers: ['alice'], allowed_audiences: ['api://orders'], max_token_age: 60, clock_skew: 5 }),
            route('cache', { claims_to_verify: ['exp'] }),
            route('bf', { brute_force: { max_failures_per_ip: 0, max_failures_per_identity: 3, window: 60, lockout: 2 } }),
            route('bf-ip', { brute_force: { max_failures_per_ip: 3, max_failures_per_identity: 0, window: 60, lockout: 2 } }),
            {
              name: 'any',
              paths: ['/any'],
              plugins: [
                { name: 'jwt', config: { anonymous: 'anonymous-user', brute_force: { enabled: false } } },
                { name: 'key-auth', config: { anonymous: 'anonymous-user', brute_force: { enabled: false } } },
              ],
            },
            {
              name: 'all',
              paths: ['/all'],
              plugins: [
                { name: 'jwt', config: { brute_force: { enabled: false } } },
                { name: 'key-auth', config: { brute_force: { enabled: false } } },
              ],
            },
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, opts: { token?: string; headers?: Record<string, string>; method?: string } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { method: (opts.method ?? 'GET') as 'GET', headers });
    const text = await r.body.text();
    const body = text ? JSON.parse(text) : {};
    const reached = upstream.requests.length > before;
    const seen = reached ? (upstream.requests.at(-1)!.headers as Record<string, string | undefined>) : {};
    if (r.statusCode === 200) assert.ok(reached, 'a 200 came from the upstream');
    else assert.equal(reached, false, `a ${r.statusCode} never reaches the upstream`);
    return { status: r.statusCode, headers: r.headers, body, seen };
  }

  const hs = (claims: object, header: object = {}) => craft('HS256', Buffer.from(secret), claims, header);

  /** A 401 with Kong's message and the Bearer challenge with error="invalid_token". */
  function refused(r: Res, message: string, challenge = 'Bearer error="invalid_token"') {
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal(r.body.message, message);
    assert.equal(r.headers['www-authenticate'], challenge);
    assert.equal(r.headers['content-type'], 'application/problem+json');
  }

  test('a valid token identifies the consumer: X-Consumer-* and X-Credential-Identifier = the credential key; the token still goes upstream', async () => {
    const token = hs({ iss: 'alice', sub: 'u1' });
    const r = await call('/jwt', { token });
    assert.equal(r.status, 200);
    assert.equal(r.seen['x-consumer-username'], 'alice');
    assert.equal(r.seen['x-consumer-custom-id'], 'alice-cid');
    assert.match(r.seen['x-consumer-id']!, /^[0-9a-f-]{36}$/);
    assert.equal(r.seen['x-credential-identifier'], 'alice');
    assert.equal(r.seen['x-anonymous-consumer'], undefined);
    // Kong's jwt has no hide_credentials: the token is proxied.
    assert.equal(r.seen.authorization, `Bearer ${token}`);
  });

  test('every algorithm Kong lists verifies (tokens signed by jose), and a token signed by another key of the same kind does not', async () => {
    for (const alg of ALGS) {
      const { signKey } = material(alg);
      const token = await new SignJWT({ iss: `key-${alg}`, sub: alg }).setProtectedHeader({ alg, typ: 'JWT' }).sign(signKey);
      const ok = await call('/jwt', { token });
      assert.equal(ok.status, 200, `${alg}: ${JSON.stringify(ok.body)}`);
      assert.equal(ok.seen['x-consumer-username'], `user-${alg}`);
      assert.equal(ok.seen['x-credential-identifier'], `key-${alg}`);

      const wrongKey = alg.startsWith('HS')
        ? Buffer.from('another secret')
        : alg.startsWith('RS') || alg.startsWith('PS')
          ? rsaOther.privateKey
          : alg === 'EdDSA'
            ? generateKeyPairSync('ed25519').privateKey
            : generateKeyPairSync('ec', { namedCurve: ({ ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' } as Record<string, string>)[alg]! }).privateKey;
      refused(await call('/jwt', { token: craft(alg, wrongKey, { iss: `key-${alg}` }) }), 'Invalid signature');
      // A tampered payload under the genuine signature.
      const [h, , s] = token.split('.');
      refused(await call('/jwt', { token: `${h}.${b64url(JSON.stringify({ iss: `key-${alg}`, sub: 'admin' }))}.${s}` }), 'Invalid signature');
    }
    // EdDSA with an Ed448 key, signed by node:crypto.
    assert.equal((await call('/jwt', { token: craft('EdDSA', ed448.privateKey, { iss: 'key-ed448' }) })).status, 200);
  });

  test("Kong's messages for missing and malformed tokens, with the Bearer challenge", async () => {
    const none = await call('/jwt');
    refused(none, 'Unauthorized', 'Bearer');
    refused(await call('/jwt', { token: 'not-a-jwt' }), 'Bad token; invalid JSON');
    refused(await call('/jwt', { token: 'a.b' }), 'Bad token; invalid JSON');
    refused(await call('/jwt', { token: `${b64url('{"alg":"HS256"')}.${b64url('{}')}.sig` }), 'Bad token; invalid JSON');
    refused(await call('/jwt', { token: hs({ iss: 'alice' }, { alg: 'HS512X' }) }), 'Bad token; invalid alg');
    refused(await call('/jwt', { token: hs({ iss: 'alice' }, { alg: ['HS256'] }) }), 'Bad token; invalid alg');
    refused(await call('/jwt', { token: `${b64url(JSON.stringify({ typ: 'JWT' }))}.${b64url('{"iss":"alice"}')}.` }), 'Bad token; invalid alg');
    refused(await call('/jwt', { token: `${b64url('{"alg":"HS256"}')}.${b64url('[1,2]')}.c2ln` }), 'Bad token; invalid claims');
    refused(await call('/jwt', { token: `${hs({ iss: 'alice' }).slice(0, -2)}+/` }), 'Bad token; invalid signature');
    refused(await call('/jwt', { token: `${hs({ iss: 'alice' })}.extra` }), 'Bad token; invalid signature');
    // Palisade: padded base64 is not base64url (RFC 7515).
    refused(await call('/jwt', { token: `${b64url('{"alg":"HS256"}')}==.${b64url('{}')}.c2ln` }), 'Bad token; invalid JSON');
    // Palisade: critical header extensions are not understood, so the token is refused.
    refused(await call('/jwt', { token: hs({ iss: 'alice' }, { crit: ['exp'], exp: 1 }) }), 'Bad token; unsupported crit');
    refused(await call('/jwt', { token: hs({ sub: 'no iss' }) }), "No mandatory 'iss' in claims");
    refused(await call('/jwt', { token: hs({ iss: '' }) }), "Invalid 'iss' in claims");
    refused(await call('/jwt', { token: hs({ iss: 'nobody' }) }), "No credentials found for given 'iss'");
    refused(await call('/jwt', { token: hs({ iss: 42 }) }), "No credentials found for given 'iss'");
    refused(await call('/jwt', { token: craft('HS384', Buffer.from(secret), { iss: 'alice' }) }), 'Invalid algorithm');
    refused(await call('/jwt', { token: craft('HS256', Buffer.from('wrong'), { iss: 'alice' }) }), 'Invalid signature');
    // The error body is an RFC 9457 problem document carrying Kong's message.
    assert.equal(none.body.status, 401);
    assert.equal(none.body.title, 'Unauthorized');
    assert.ok(none.body.request_id);
  });

  test('realm goes into the challenge: Bearer realm="…", then error="invalid_token" as Kong writes it', async () => {
    refused(await call('/realm'), 'Unauthorized', 'Bearer realm="palisade"');
    refused(await call('/realm', { token: 'garbage' }), 'Bad token; invalid JSON', 'Bearer realm="palisade" error="invalid_token"');
    assert.equal((await call('/realm', { token: hs({ iss: 'alice' }) })).status, 200);
  });

  test('`none` is never an algorithm, in any spelling, signed or not', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      refused(await call('/jwt', { token: craft(alg, null, { iss: 'alice' }) }), 'Bad token; invalid alg');
      refused(await call('/jwt', { token: `${craft(alg, null, { iss: 'alice' })}${b64url('x')}` }), 'Bad token; invalid alg');
    }
    // An HS256 header with an empty signature is just a bad signature.
    refused(await call('/jwt', { token: craft('HS256', null, { iss: 'alice' }) }), 'Invalid signature');
  });

  test('alg confusion: an HS256 token "signed" with the RSA public key (PEM, DER or JWK) as HMAC secret never verifies', async () => {
    const pemText = pem(rsa.publicKey);
    const secrets = [pemText, pemText.trim(), rsa.publicKey.export({ type: 'spki', format: 'der' }), JSON.stringify(rsa.publicKey.export({ format: 'jwk' }))];
    for (const s of secrets) {
      // RS256 credential: the header's HS256 is not in its allow-list.
      refused(await call('/jwt', { token: craft('HS256', s as Buffer, { iss: 'key-RS256' }) }), 'Invalid algorithm');
      // A credential allowing both families: HS256 checks only against its real secret.
      refused(await call('/jwt', { token: craft('HS256', s as Buffer, { iss: 'mixed' }) }), 'Invalid signature');
      // Key sets hold public keys only.
      refused(await call('/jwt', { token: craft('HS256', s as Buffer, { iss: 'jwks-inline' }, { kid: 'r1' }) }), 'Invalid algorithm');
    }
    // The mixed credential works with each family's own key.
    assert.equal((await call('/jwt', { token: craft('HS256', Buffer.from('mixed-secret'), { iss: 'mixed' }) })).status, 200);
    assert.equal((await call('/jwt', { token: craft('RS256', rsa.privateKey, { iss: 'mixed' }) })).status, 200);
    // RS256 allowed, but PS256 (same RSA key) is not in the allow-list.
    refused(await call('/jwt', { token: craft('PS256', rsa.privateKey, { iss: 'mixed' }) }), 'Invalid algorithm');
  });

  test('JWK and inline JWKS credentials: the kid picks the key; an unknown kid or a key of another type is refused', async () => {
    assert.equal((await call('/jwt', { token: craft('ES256', ec.ES256!.privateKey, { iss: 'jwk-one' }, { kid: 'e1' }) })).status, 200);
    refused(await call('/jwt', { token: craft('ES256', ecOther.privateKey, { iss: 'jwk-one' }, { kid: 'e1' }) }), 'Invalid signature');
    const rs = await call('/jwt', { token: craft('RS256', rsa.privateKey, { iss: 'jwks-inline' }, { kid: 'r1' }) });
    assert.equal(rs.status, 200);
    assert.equal(rs.seen['x-consumer-username'], 'jwks-inline');
    assert.equal((await call('/jwt', { token: craft('ES256', ec.ES256!.privateKey, { iss: 'jwks-inline' }, { kid: 'e1' }) })).status, 200);
    // No kid: every key that fits the algorithm is tried.
    assert.equal((await call('/jwt', { token: craft('ES256', ec.ES256!.privateKey, { iss: 'jwks-inline' }) })).status, 200);
    refused(await call('/jwt', { token: craft('RS256', rsa.privateKey, { iss: 'jwks-inline' }, { kid: 'nope' }) }), 'Invalid signature');
    // The RSA key signed, but the kid names the EC key.
    refused(await call('/jwt', { token: craft('RS256', rsa.privateKey, { iss: 'jwks-inline' }, { kid: 'e1' }) }), 'Invalid signature');
    refused(await call('/jwt', { token: craft('PS256', rsa.privateKey, { iss: 'jwks-inline' }, { kid: 'r1' }) }), 'Invalid algorithm');
  });

  test('claims_to_verify: exp and nbf with Kong\'s claim errors as the body members', async () => {
    assert.equal((await call('/exp', { token: hs({ iss: 'alice', exp: now() + 60, nbf: now() - 60 }) })).status, 200);
    const expired = await call('/exp', { token: hs({ iss: 'alice', exp: now() - 10, nbf: now() - 60 }) });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.exp, 'token expired');
    assert.equal(expired.body.message, 'token expired');
    assert.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token"');
    const early = await call('/exp', { token: hs({ iss: 'alice', exp: now() + 60, nbf: now() + 30 }) });
    assert.equal(early.body.nbf, 'token not valid yet');
    const both = await call('/exp', { token: hs({ iss: 'alice', exp: 'tomorrow' }) });
    assert.equal(both.status, 401);
    assert.equal(both.body.exp, 'must be a number');
    assert.equal(both.body.nbf, 'must be a number');
    // Without claims_to_verify (Kong's default) neither is checked.
    assert.equal((await call('/jwt', { token: hs({ iss: 'alice', exp: now() - 10 }) })).status, 200);
  });

  test('clock_skew tolerates a small clock difference on exp and nbf, not more', async () => {
    assert.equal((await call('/skew', { token: hs({ iss: 'alice', exp: now() - 10, nbf: now() + 10 }) })).status, 200);
    assert.equal((await call('/skew', { token: hs({ iss: 'alice', exp: now() - 60, nbf: now() - 60 }) })).body.exp, 'token expired');
    assert.equal((await call('/skew', { token: hs({ iss: 'alice', exp: now() + 60, nbf: now() + 60 }) })).body.nbf, 'token not valid yet');
  });

  test('maximum_expiration refuses tokens that live too long', async () => {
    assert.equal((await call('/maxexp', { token: hs({ iss: 'alice', exp: now() + 50 }) })).status, 200);
    const far = await call('/maxexp', { token: hs({ iss: 'alice', exp: now() + 3600 }) });
    assert.equal(far.status, 401);
    assert.equal(far.body.exp, 'exceeds maximum allowed expiration');
  });

  test('Palisade claim policy: allowed issuers and audiences, token age', async () => {
    const good = { iss: 'alice', aud: ['api://billing', 'api://orders'], iat: now() - 10 };
    assert.equal((await call('/policy', { token: hs(good) })).status, 200);
    assert.equal((await call('/policy', { token: hs({ ...good, aud: 'api://orders' }) })).status, 200);
    const aud = await call('/policy', { token: hs({ ...good, aud: 'api://other' }) });
    assert.equal(aud.status, 401);
    assert.equal(aud.body.aud, 'audience not allowed');
    assert.equal((await call('/policy', { token: hs({ ...good, aud: undefined }) })).body.aud, 'audience not allowed');
    assert.equal((await call('/policy', { token: hs({ ...good, iat: now() - 3600 }) })).body.iat, 'token too old');
    assert.equal((await call('/policy', { token: hs({ ...good, iat: now() + 3600 }) })).body.iat, 'token issued in the future');
    assert.equal((await call('/policy', { token: hs({ ...good, iat: undefined }) })).body.iat, 'must be a number');
    // Another consumer's valid token: issuer not in the allow-list.
    const other = await call('/policy', { token: craft('HS256', Buffer.from('mixed-secret'), { ...good, iss: 'mixed' }) });
    assert.equal(other.body.iss, 'issuer not allowed');
  });

  test('the key claim is read from the payload, then from the header (key_claim_name)', async () => {
    const r = await call('/kid-claim', { token: hs({ sub: 'x' }, { kid: 'alice' }) });
    assert.equal(r.status, 200);
    assert.equal(r.seen['x-credential-identifier'], 'alice');
    refused(await call('/kid-claim', { token: hs({ iss: 'alice' }) }), "No mandatory 'kid' in claims");
  });

  test("tokens from the query, cookies and headers (Kong's names); several different tokens are refused", async () => {
    const token = hs({ iss: 'alice' });
    assert.equal((await call(`/jwt?jwt=${token}`)).status, 200);
    assert.equal((await call(`/sources?token=${token}`)).status, 200);
    assert.equal((await call('/sources', { headers: { cookie: `other=1; jwt_cookie=${token}` } })).status, 200);
    assert.equal((await call('/sources', { headers: { 'x-token': `Bearer ${token}` } })).status, 200);
    assert.equal((await call('/sources', { headers: { authorization: `bearer   ${token}` } })).status, 200);
    // The same token in two places is one token.
    assert.equal((await call(`/sources?jwt=${token}`, { token })).status, 200);
    // The default route reads neither this cookie nor this header, nor a header without "Bearer".
    refused(await call('/jwt', { headers: { cookie: `jwt_cookie=${token}` } }), 'Unauthorized', 'Bearer');
    refused(await call('/jwt', { headers: { 'x-token': `Bearer ${token}` } }), 'Unauthorized', 'Bearer');
    refused(await call('/jwt', { headers: { authorization: token } }), 'Unauthorized', 'Bearer');
    refused(await call('/jwt?jwt='), 'Unauthorized', 'Bearer');
    refused(await call(`/sources?jwt=${token}`, { token: hs({ iss: 'alice', n: 2 }) }), 'Multiple tokens provided');
    refused(await call(`/jwt?jwt=${token}&jwt=${hs({ iss: 'alice', n: 3 })}`), 'Multiple tokens provided');
    refused(await call('/jwt?jwt'), 'Unrecognizable token');
  });

  test('secret_is_base64: the secret is decoded; a secret that is not base64 gives "Invalid key/secret"', async () => {
    const raw = Buffer.from('raw secret bytes \x00\x01');
    assert.equal((await call('/b64', { token: craft('HS256', raw, { iss: 'b64' }) })).status, 200);
    refused(await call('/b64', { token: craft('HS256', Buffer.from(raw.toString('base64')), { iss: 'b64' }) }), 'Invalid signature');
    refused(await call('/b64', { token: craft('HS256', Buffer.from('not base64!'), { iss: 'b64-bad' }) }), 'Invalid key/secret');
  });

  test('claims_to_headers: claims go upstream as headers; a client\'s own copies never do', async () => {
    const spoof = { 'x-user-id': 'evil', 'x-roles': '["admin"]', 'x-email': 'evil@example.com', 'x-consumer-id': 'evil', 'x-credential-identifier': 'evil' };
    const token = hs({ iss: 'alice', sub: 'user-42', realm_access: { roles: ['reader', 'writer'] }, name: 'José\nDoe' });
    const r = await call('/claims', { token, headers: spoof });
    assert.equal(r.status, 200);
    assert.equal(r.seen['x-user-id'], 'user-42');
    assert.equal(r.seen['x-roles'], '["reader","writer"]');
    assert.equal(r.seen['x-email'], undefined, 'absent claim: the client\'s header is removed');
    assert.equal(r.seen['x-name'], undefined, 'a value with a line break is dropped');
    assert.equal(r.seen['x-credential-identifier'], 'alice');
    assert.notEqual(r.seen['x-consumer-id'], 'evil');
    const accents = await call('/claims', { token: hs({ iss: 'alice', name: 'José' }) });
    assert.equal(accents.seen['x-name'], 'Jos%C3%A9');
    // Failed authentication: nothing reaches the upstream; with anonymous the spoofed identity is gone too.
    assert.equal((await call('/claims', { headers: spoof })).status, 401);
    const anon = await call('/anon', { headers: spoof });
    assert.equal(anon.status, 200);
    assert.equal(anon.seen['x-consumer-id'] !== 'evil', true);
    assert.equal(anon.seen['x-credential-identifier'], undefined);
  });

  test('anonymous: missing or bad tokens continue as the anonymous consumer; good tokens identify the real one', async () => {
    for (const token of [undefined, 'garbage', hs({ iss: 'nobody' }), craft('HS256', Buffer.from('wrong'), { iss: 'alice' })]) {
      const r = await call('/anon', { token });
      assert.equal(r.status, 200);
      assert.equal(r.seen['x-consumer-username'], 'anonymous-user');
      assert.equal(r.seen['x-anonymous-consumer'], 'true');
      assert.equal(r.seen['x-credential-identifier'], undefined);
    }
    const real = await call('/anon', { token: hs({ iss: 'alice' }) });
    assert.equal(real.seen['x-consumer-username'], 'alice');
    assert.equal(real.seen['x-anonymous-consumer'], undefined);
  });

  test('with key-auth: anonymous on both = "any of them"; without = "all of them"', async () => {
    const token = hs({ iss: 'alice' });
    assert.equal((await call('/any', { token })).seen['x-consumer-username'], 'alice');
    assert.equal((await call('/any', { headers: { apikey: 'api-key-1' } })).seen['x-consumer-username'], 'keyed');
    const neither = await call('/any');
    assert.equal(neither.seen['x-anonymous-consumer'], 'true');
    assert.equal(neither.seen['x-consumer-username'], 'anonymous-user');

    refused(await call('/all', { headers: { apikey: 'api-key-1' } }), 'Unauthorized', 'Bearer');
    assert.equal((await call('/all', { token })).status, 401);
    assert.equal((await call('/all', { token, headers: { apikey: 'api-key-1' } })).status, 200);
  });

  test('run_on_preflight: false lets OPTIONS through without a token; by default they are authenticated', async () => {
    assert.equal((await call('/preflight', { method: 'OPTIONS' })).status, 200);
    refused(await call('/preflight'), 'Unauthorized', 'Bearer');
    refused(await call('/jwt', { method: 'OPTIONS' }), 'Unauthorized', 'Bearer');
  });

  test('the verified-token cache never serves a token past its exp', async () => {
    const token = hs({ iss: 'alice', exp: now() + 2 });
    assert.equal((await call('/cache', { token })).status, 200);
    assert.equal((await call('/cache', { token })).status, 200, 'cached and still valid');
    await new Promise((r) => setTimeout(r, (Number(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp) - Date.now() / 1000) * 1000 + 1100));
    const late = await call('/cache', { token });
    assert.equal(late.status, 401);
    assert.equal(late.body.exp, 'token expired');
  });

  test('brute force: failed signatures lock the credential key out (429 + Retry-After, even for a valid token), then it recovers', async () => {
    const good = craft('HS256', Buffer.from('locked-secret'), { iss: 'locked' });
    assert.equal((await call('/bf', { token: good })).status, 200);
    for (let i = 0; i < 3; i++) refused(await call('/bf', { token: craft('HS256', Buffer.from(`guess-${i}`), { iss: 'locked' }) }), 'Invalid signature');
    await new Promise((r) => setTimeout(r, 50)); // failures are counted asynchronously
    const locked = await call('/bf', { token: good });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    // Other identities are not affected; missing tokens are not failures.
    assert.equal((await call('/bf', { token: hs({ iss: 'alice' }) })).status, 200);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await call('/bf', { token: good })).status, 200);

    // Per client IP: malformed tokens count too.
    for (let i = 0; i < 3; i++) refused(await call('/bf-ip', { token: `garbage-${i}` }), 'Bad token; invalid JSON');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await call('/bf-ip', { token: hs({ iss: 'alice' }) })).status, 429);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await call('/bf-ip', { token: hs({ iss: 'alice' }) })).status, 200);
  });

  test('invalid configs are refused at load, naming the field', async () => {
    const withJwt = (cred: object, config: object = {}, extraConsumers: object[] = []) => ({
      consumers: [{ username: 'c', jwt_secrets: [cred] }, ...extraConsumers],
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'jwt', config }] }] }],
    });
    const says = (text: string | RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const all = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(all, typeof text === 'string' ? new RegExp(text) : text, all);
      return true;
    };
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await assert.rejects(startGateway(withJwt({ key: 'k' })), says(/jwt_secrets\/0.*secret: required for HS256/));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'RS256' })), says('rsa_public_key: required for RS256'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'RS256', rsa_public_key: 'not a key' })), says('rsa_public_key: invalid key'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'RS256', rsa_public_key: pem(rsa1024.publicKey) })), says('at least 2048 bits'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'RS256', rsa_public_key: pem(ec.ES256!.publicKey) })), says('no key can verify RS256'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'ES384', rsa_public_key: pem(ec.ES256!.publicKey) })), says('no key can verify ES384'));
    const privatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'RS256', rsa_public_key: privatePem })), says('private key'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'HS256', algorithms: ['HS256'], jwk: { kty: 'oct', k: b64url('s') }, secret: 's' })), says('symmetric'));
    await assert.rejects(
      startGateway(withJwt({ key: 'k', algorithm: 'RS256', rsa_public_key: pem(rsa.publicKey), jwks_url: 'https://idp.example/jwks' })),
      says('set only one of rsa_public_key, jwk, jwks, jwks_url'),
    );
    await assert.rejects(startGateway(withJwt({ key: 'k', jwks_url: 'https://idp.example/jwks' })), says('secret: required for HS256'));
    await assert.rejects(startGateway(withJwt({ key: 'k', algorithm: 'none', secret: 's' })), says('algorithm'));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, {}, [{ username: 'd', jwt_secrets: [{ key: 'k', secret: 't' }] }])), says("key 'k' is used by two credentials"));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { maximum_expiration: 10 })), says("claims_to_verify: must contain 'exp'"));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { claims_to_verify: ['iat'] })), says('claims_to_verify'));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { anonymous: 'ghost' })), says("anonymous consumer 'ghost' does not exist"));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { claims_to_headers: { sub: 'Bad Header' } })), says('claims_to_headers'));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { hide_credentials: true })), says('hide_credentials'));
    await assert.rejects(startGateway(withJwt({ key: 'k', secret: 's' }, { realm: 'a"b' })), says('realm'));
  });
});
