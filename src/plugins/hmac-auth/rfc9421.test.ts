/**
 * hmac-auth with RFC 9421 HTTP Message Signatures (Palisade addition).
 *
 * 1. The signature bases of RFC 9421 Appendix B.2 are reproduced byte for
 *    byte, the deterministic signatures (hmac-sha256, ed25519) are
 *    reproduced, the non-deterministic ones (rsa-pss, ecdsa) verify.
 * 2. The RFC's request examples are sent to a real gateway exactly as in the
 *    RFC (POST /foo?param=Value&Pet=dog to example.com, with its headers and
 *    body) and verify — with the time window relaxed, since `created` is in
 *    2021.
 * 3. Live signatures (every algorithm) and every failure mode, black-box.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createHmac, createPrivateKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { verifyRfc9421 } from './keys.ts';
import { signatureBase, type MessageView } from './signature-base.ts';
import { parseDictionary, type InnerList, type Item } from './structured-fields.ts';
import {
  TEST_KEY_ECC_P256_JWK,
  TEST_KEY_ECC_P256_PRIVATE,
  TEST_KEY_ECC_P256_PUBLIC,
  TEST_KEY_ED25519_PRIVATE,
  TEST_KEY_ED25519_PUBLIC,
  TEST_KEY_RSA_PSS_PRIVATE,
  TEST_KEY_RSA_PSS_PUBLIC,
  TEST_REQUEST,
  TEST_RESPONSE,
  TEST_SHARED_SECRET,
  VECTORS,
  type Vector,
} from './test-vectors/rfc9421-appendix-b.ts';

const NOT_VERIFIED = 'HMAC signature cannot be verified';
const NO_MATCH = 'HMAC signature does not match';

function view(headers: [string, string][], over: Partial<MessageView> = {}): MessageView {
  return {
    method: TEST_REQUEST.method,
    target: TEST_REQUEST.target,
    scheme: 'https',
    authority: 'example.com',
    fieldLines: (n) => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v),
    ...over,
  };
}

function member(dict: string, label: string) {
  return parseDictionary(dict).get(label)!;
}

const publicKeys: Record<string, string | object> = {
  'test-key-rsa-pss': TEST_KEY_RSA_PSS_PUBLIC,
  'test-key-ecc-p256': TEST_KEY_ECC_P256_PUBLIC,
  'test-key-ed25519': TEST_KEY_ED25519_PUBLIC,
};

describe('RFC 9421 Appendix B: signature bases and signatures', () => {
  for (const v of VECTORS) {
    test(`${v.section} ${v.title}: the signature base is reproduced byte for byte`, () => {
      const msg = v.message === 'request' ? view(TEST_REQUEST.headers) : view(TEST_RESPONSE.headers, { status: TEST_RESPONSE.status });
      assert.equal(signatureBase(msg, member(v.signatureInput, v.label) as InnerList), v.signatureBase);
    });
  }

  test('B.2.5 (hmac-sha256) and B.2.6 (ed25519) signatures are reproduced exactly', () => {
    const b25 = VECTORS.find((v) => v.section === 'B.2.5')!;
    const mac = createHmac('sha256', Buffer.from(TEST_SHARED_SECRET, 'base64')).update(b25.signatureBase).digest('base64');
    assert.equal(`${b25.label}=:${mac}:`, b25.signature);
    const b26 = VECTORS.find((v) => v.section === 'B.2.6')!;
    const sig = cryptoSign(null, Buffer.from(b26.signatureBase), createPrivateKey(TEST_KEY_ED25519_PRIVATE)).toString('base64');
    assert.equal(`${b26.label}=:${sig}:`, b26.signature);
  });

  test('rsa-pss-sha512 (B.2.1–B.2.3) and ecdsa-p256-sha256 (B.2.4) verify, but a fresh signature differs', async () => {
    const { createPublicKey } = await import('node:crypto');
    for (const v of VECTORS.filter((x) => !x.deterministic)) {
      const key = createPublicKey(publicKeys[v.keyid] as string);
      const sig = (member(v.signature, v.label) as Item).value.v as Buffer;
      assert.ok(verifyRfc9421(v.alg as never, key, Buffer.from(v.signatureBase), sig), `${v.section} verifies`);
      const flipped = Buffer.from(sig);
      flipped[5]! ^= 1;
      assert.equal(verifyRfc9421(v.alg as never, key, Buffer.from(v.signatureBase), flipped), false, `${v.section} with one bit flipped fails`);
      assert.equal(verifyRfc9421(v.alg as never, key, Buffer.from(`${v.signatureBase} `), sig), false, `${v.section} over another base fails`);
    }
    const b23 = VECTORS.find((v) => v.section === 'B.2.3')!;
    const fresh = cryptoSign('sha512', Buffer.from(b23.signatureBase), {
      key: createPrivateKey(TEST_KEY_RSA_PSS_PRIVATE),
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 64,
    });
    assert.notEqual(`${b23.label}=:${fresh.toString('base64')}:`, b23.signature);
    assert.ok(verifyRfc9421('rsa-pss-sha512', createPublicKey(TEST_KEY_RSA_PSS_PUBLIC), Buffer.from(b23.signatureBase), fresh));
  });

  test('RFC 9421 §2.1 field examples: combination, sf, key, bs', () => {
    const headers: [string, string][] = [
      ['Cache-Control', 'max-age=60'],
      ['Cache-Control', '   must-revalidate'],
      ['Example-Dict', ' a=1,    b=2;x=1;y=2,   c=(a   b   c)'],
      ['Example-Header', 'value, with, lots'],
      ['Example-Header', 'of, commas'],
      ['X-Empty-Header', ''],
    ];
    const line = (input: string) => signatureBase(view(headers), member(`s=${input}`, 's') as InnerList).split('\n')[0];
    assert.equal(line('("cache-control")'), '"cache-control": max-age=60, must-revalidate');
    assert.equal(line('("example-dict")'), '"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)');
    assert.equal(line('("example-dict";sf)'), '"example-dict";sf: a=1, b=2;x=1;y=2, c=(a b c)');
    assert.equal(line('("example-dict";key="b")'), '"example-dict";key="b": 2;x=1;y=2');
    assert.equal(line('("example-dict";key="c")'), '"example-dict";key="c": (a b c)');
    assert.equal(line('("example-header";bs)'), '"example-header";bs: :dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:');
    assert.equal(line('("x-empty-header")'), '"x-empty-header": ');
    for (const bad of ['("example-dict";key="zz")', '("x-missing")', '("@status")', '("@method";req)', '("@method" "@method")', '("Example-Dict")', '("@unknown")']) {
      assert.throws(() => line(bad), /./, bad);
    }
  });

  test('RFC 9421 §2.2 derived components', () => {
    const msg = view([], { method: 'POST', target: '/path?param=value&foo=bar&baz=batman&qux=', authority: 'www.example.com' });
    const base = signatureBase(msg, member('s=("@method" "@target-uri" "@authority" "@scheme" "@request-target" "@path" "@query" "@query-param";name="baz" "@query-param";name="qux")', 's') as InnerList);
    assert.deepEqual(base.split('\n').slice(0, -1), [
      '"@method": POST',
      '"@target-uri": https://www.example.com/path?param=value&foo=bar&baz=batman&qux=',
      '"@authority": www.example.com',
      '"@scheme": https',
      '"@request-target": /path?param=value&foo=bar&baz=batman&qux=',
      '"@path": /path',
      '"@query": ?param=value&foo=bar&baz=batman&qux=',
      '"@query-param";name="baz": batman',
      '"@query-param";name="qux": ',
    ]);
    const enc = view([], { target: '/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something' });
    const lines = signatureBase(enc, member('s=("@query-param";name="var" "@query-param";name="bar" "@query-param";name="fa%C3%A7ade%22%3A%20")', 's') as InnerList).split('\n');
    assert.deepEqual(lines.slice(0, 3), [
      '"@query-param";name="var": this%20is%20a%20big%0Amultiline%20value',
      '"@query-param";name="bar": with%20plus%20whitespace',
      '"@query-param";name="fa%C3%A7ade%22%3A%20": something',
    ]);
    assert.equal(signatureBase(view([], { target: '/' }), member('s=("@query" "@path")', 's') as InnerList).split('\n')[0], '"@query": ?');
    assert.throws(() => signatureBase(view([], { target: '/p?a=1&a=2' }), member('s=("@query-param";name="a")', 's') as InnerList), /more than once/);
  });
});

// ---- through a real gateway ----

/** The RFC's test-request over a raw socket (Host: example.com), with a vector's signature fields. */
function sendRfcRequest(gw: TestGateway, v: Vector, override: { body?: string; extra?: Record<string, string> } = {}) {
  return new Promise<{ status: number; json: Record<string, unknown> | null }>((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const [k, val] of TEST_REQUEST.headers) headers[k] = val;
    Object.assign(headers, { 'Signature-Input': v.signatureInput, Signature: v.signature }, override.extra);
    const req = http.request(`${gw.url}${TEST_REQUEST.target}`, { method: TEST_REQUEST.method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text.startsWith('{') ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(override.body ?? TEST_REQUEST.body);
  });
}

interface LiveSign {
  method?: string;
  /** Path and query as sent. */
  target: string;
  headers?: Record<string, string>;
  body?: string;
  components: string[];
  keyid: string;
  alg: 'hmac-sha256' | 'ed25519' | 'ecdsa-p256-sha256' | 'rsa-pss-sha512' | 'rsa-v1_5-sha256';
  key: KeyObject | Buffer;
  created?: number;
  /** Extra parameters, serialized (e.g. ';nonce="n1"'). */
  params?: string;
  label?: string;
}

/**
 * An independent, minimal RFC 9421 signer (plain string building, not the
 * plugin's code): derived components from the request line and Host, fields
 * from the headers given.
 */
function liveSign(gw: TestGateway, s: LiveSign): Record<string, string> {
  const method = s.method ?? 'GET';
  const authority = new URL(gw.url).host;
  const headers: Record<string, string> = { ...s.headers };
  if (s.body !== undefined) headers['content-digest'] ??= `sha-256=:${createHash('sha256').update(s.body).digest('base64')}:`;
  const q = s.target.indexOf('?');
  const values: Record<string, string> = {
    '@method': method,
    '@authority': authority,
    '@scheme': 'http',
    '@path': q < 0 ? s.target : s.target.slice(0, q),
    '@query': q < 0 ? '?' : s.target.slice(q),
    '@request-target': s.target,
    '@target-uri': `http://${authority}${s.target}`,
  };
  const created = s.created ?? Math.floor(Date.now() / 1000);
  const params = `(${s.components.map((c) => `"${c}"`).join(' ')});created=${created};keyid="${s.keyid}"${s.params ?? ''}`;
  const lines = s.components.map((c) => `"${c}": ${values[c] ?? headers[c]}`);
  const base = Buffer.from([...lines, `"@signature-params": ${params}`].join('\n'));
  let sig: Buffer;
  switch (s.alg) {
    case 'hmac-sha256':
      sig = createHmac('sha256', s.key as Buffer).update(base).digest();
      break;
    case 'ed25519':
      sig = cryptoSign(null, base, s.key as KeyObject);
      break;
    case 'ecdsa-p256-sha256':
      sig = cryptoSign('sha256', base, { key: s.key as KeyObject, dsaEncoding: 'ieee-p1363' });
      break;
    case 'rsa-pss-sha512':
      sig = cryptoSign('sha512', base, { key: s.key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 });
      break;
    case 'rsa-v1_5-sha256':
      sig = cryptoSign('sha256', base, { key: s.key as KeyObject, padding: constants.RSA_PKCS1_PADDING });
      break;
  }
  const label = s.label ?? 'sig1';
  return { ...headers, 'signature-input': `${label}=${params}`, signature: `${label}=:${sig.toString('base64')}:` };
}

describe('hmac-auth with RFC 9421 through a real gateway', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const ed = createPrivateKey(TEST_KEY_ED25519_PRIVATE);
  const ecc = createPrivateKey(TEST_KEY_ECC_P256_PRIVATE);
  const pss = createPrivateKey(TEST_KEY_RSA_PSS_PRIVATE);
  const secret = Buffer.from('a-long-shared-secret-for-hmac-sha256');
  const rsa15 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('ed25519');
  const strict = { signature_schemes: ['rfc9421'], brute_force: { enabled: false } };

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'hmac-auth', config: { ...strict, ...config } }] });
    gw = await startGateway({
      consumers: [
        { username: 'rsa-pss-client', hmacauth_credentials: [{ username: 'test-key-rsa-pss', public_key: TEST_KEY_RSA_PSS_PUBLIC }] },
        { username: 'ecc-client', hmacauth_credentials: [{ username: 'test-key-ecc-p256', public_key: TEST_KEY_ECC_P256_JWK }] },
        { username: 'ed-client', hmacauth_credentials: [{ username: 'test-key-ed25519', public_key: TEST_KEY_ED25519_PUBLIC }] },
        { username: 'hmac-client', hmacauth_credentials: [{ username: 'test-shared-secret', secret: TEST_SHARED_SECRET, secret_encoding: 'base64' }] },
        { username: 'live-hmac', hmacauth_credentials: [{ username: 'live-hmac', secret: secret.toString() }] },
        {
          username: 'rsa15-client',
          hmacauth_credentials: [{ username: 'rsa15', public_key: rsa15.publicKey.export({ type: 'spki', format: 'pem' }), algorithm: 'rsa-v1_5-sha256' }],
        },
        { username: 'locked-client', hmacauth_credentials: [{ username: 'locked', public_key: TEST_KEY_ED25519_PUBLIC }] },
        { username: 'fine-client', hmacauth_credentials: [{ username: 'fine', public_key: TEST_KEY_ED25519_PUBLIC }] },
        { username: 'guest' },
      ],
      services: [
        {
          name: 'rfc',
          url: upstream.url,
          routes: [
            {
              name: 'rfc-examples',
              hosts: ['example.com'],
              paths: ['/foo'],
              strip_path: false,
              plugins: [
                {
                  name: 'hmac-auth',
                  config: {
                    ...strict,
                    // created is 1618884473 (April 2021): the window has to be relaxed to accept the RFC's examples.
                    clock_skew: 1_000_000_000,
                    rfc9421: { required_components: [], require_query_coverage: false, require_content_digest: false },
                  },
                },
              ],
            },
            route('api', {}),
            route('both', { signature_schemes: ['cavage', 'rfc9421'] }),
            route('nonce', { rfc9421: { require_nonce: true } }),
            route('tagged', { rfc9421: { tag: 'partner-v1', label: 'partner' } }),
            route('hide', { hide_credentials: true }),
            route('anon', { anonymous: 'guest' }),
            route('skew', { clock_skew: 30 }),
            route('bf', { brute_force: { window: 60, max_failures_per_ip: 0, max_failures_per_identity: 3, lockout: 1 } }),
            route('small', { max_body_size: 16 }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function send(target: string, headers: Record<string, string>, opts: { method?: string; body?: string } = {}) {
    const n = upstream.requests.length;
    const r = await request(gw.url + target, { method: (opts.method ?? 'GET') as 'GET', headers, body: opts.body });
    const text = await r.body.text();
    return {
      status: r.statusCode,
      headers: r.headers,
      json: text.startsWith('{') ? (JSON.parse(text) as Record<string, string>) : null,
      seen: upstream.requests.length > n ? upstream.requests.at(-1)! : null,
    };
  }

  for (const v of VECTORS.filter((x) => x.message === 'request')) {
    test(`${v.section}: the RFC's signed request verifies through the gateway (${v.alg})`, async () => {
      const n = upstream.requests.length;
      const r = await sendRfcRequest(gw, v);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const seen = upstream.requests.at(-1)!;
      assert.equal(upstream.requests.length, n + 1);
      assert.equal(seen.headers['x-credential-identifier'], v.keyid);
      assert.equal(seen.body, TEST_REQUEST.body);
      assert.equal(seen.url, TEST_REQUEST.target);
    });
  }

  test('B.2.1 carries a nonce: the same request a second time is a replay', async () => {
    const b21 = VECTORS.find((v) => v.section === 'B.2.1')!;
    const r = await sendRfcRequest(gw, b21);
    assert.equal(r.status, 401);
    assert.equal(r.json!.message, NOT_VERIFIED);
    assert.match(String(r.json!.detail), /nonce/);
  });

  test('B.2.3 with the body changed: content-digest no longer matches (401)', async () => {
    const b23 = VECTORS.find((v) => v.section === 'B.2.3')!;
    const r = await sendRfcRequest(gw, b23, { body: '{"hello": "WORLD"}' });
    assert.equal(r.status, 401);
    assert.equal(r.json!.message, NO_MATCH);
    assert.match(String(r.json!.detail), /content-digest/);
  });

  test('B.2.2 with another Pet, B.2.6 with another Content-Type: the signature fails', async () => {
    const b26 = VECTORS.find((v) => v.section === 'B.2.6')!;
    assert.equal((await sendRfcRequest(gw, b26, { extra: { 'Content-Type': 'text/plain' } })).status, 401);
    const b22 = VECTORS.find((v) => v.section === 'B.2.2')!;
    const r = await new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = Object.fromEntries(TEST_REQUEST.headers);
      Object.assign(headers, { 'Signature-Input': b22.signatureInput, Signature: b22.signature });
      const req = http.request(`${gw.url}/foo?param=Value&Pet=cat`, { method: 'POST', headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(TEST_REQUEST.body);
    });
    assert.equal(r, 401);
  });

  test('live signatures with every algorithm authenticate the consumer of the keyid', async () => {
    const cases: [LiveSign['alg'], string, KeyObject | Buffer, string][] = [
      ['ed25519', 'test-key-ed25519', ed, 'ed-client'],
      ['ecdsa-p256-sha256', 'test-key-ecc-p256', ecc, 'ecc-client'],
      ['rsa-pss-sha512', 'test-key-rsa-pss', pss, 'rsa-pss-client'],
      ['hmac-sha256', 'live-hmac', secret, 'live-hmac'],
      ['rsa-v1_5-sha256', 'rsa15', rsa15.privateKey, 'rsa15-client'],
    ];
    for (const [alg, keyid, key, consumer] of cases) {
      const headers = liveSign(gw, { target: '/api/orders?limit=5', components: ['@method', '@target-uri'], keyid, alg, key, params: `;alg="${alg}"` });
      const r = await send('/api/orders?limit=5', headers);
      assert.equal(r.status, 200, `${alg}: ${JSON.stringify(r.json)}`);
      assert.equal(r.seen!.headers['x-consumer-username'], consumer);
      assert.equal(r.seen!.headers['x-credential-identifier'], keyid);
      assert.ok(r.seen!.headers['signature-input'], 'signature fields are forwarded without hide_credentials');
    }
  });

  test('a body must be covered by content-digest, which must match (sha-256 or sha-512)', async () => {
    const body = '{"order":42}';
    const components = ['@method', '@authority', '@path', 'content-digest'];
    const ok = await send('/api/o', liveSign(gw, { method: 'POST', target: '/api/o', body, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }), { method: 'POST', body });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.seen!.body, body);
    const sha512 = `sha-512=:${createHash('sha512').update(body).digest('base64')}:, md5=:AAAA:`;
    const both = liveSign(gw, { method: 'POST', target: '/api/o', body, headers: { 'content-digest': sha512 }, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed });
    assert.equal((await send('/api/o', both, { method: 'POST', body })).status, 200);
    const tampered = await send('/api/o', liveSign(gw, { method: 'POST', target: '/api/o', body, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }), {
      method: 'POST',
      body: '{"order":43}',
    });
    assert.equal(tampered.status, 401);
    assert.equal(tampered.json!.message, NO_MATCH);
    assert.equal(tampered.seen, null);
    const uncovered = await send('/api/o', liveSign(gw, { method: 'POST', target: '/api/o', body, components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }), {
      method: 'POST',
      body,
    });
    assert.equal(uncovered.status, 401);
    assert.equal(uncovered.json!.message, NOT_VERIFIED);
    assert.match(uncovered.json!.detail!, /content-digest/);
    const unknownOnly = liveSign(gw, { method: 'POST', target: '/api/o', body, headers: { 'content-digest': 'md5=:AAAA:' }, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed });
    assert.equal((await send('/api/o', unknownOnly, { method: 'POST', body })).status, 401, 'no supported digest algorithm');
    const big = 'x'.repeat(64);
    const tooBig = await send('/small', liveSign(gw, { method: 'POST', target: '/small', body: big, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }), { method: 'POST', body: big });
    assert.equal(tooBig.status, 401);
    assert.match(tooBig.json!.detail!, /too large/);
  });

  test('required components: the method, the path and (when present) the query must be covered', async () => {
    const sign = (target: string, components: string[]) => liveSign(gw, { target, components, keyid: 'test-key-ed25519', alg: 'ed25519', key: ed });
    const noMethod = await send('/api/x', sign('/api/x', ['@target-uri']));
    assert.equal(noMethod.status, 401);
    assert.equal(noMethod.json!.message, NOT_VERIFIED);
    assert.match(noMethod.json!.detail!, /@method/);
    assert.equal((await send('/api/x', sign('/api/x', ['@method']))).status, 401, 'no path');
    assert.equal((await send('/api/x', sign('/api/x', ['@method', '@path']))).status, 200);
    const noQuery = await send('/api/x?admin=1', sign('/api/x?admin=1', ['@method', '@path']));
    assert.equal(noQuery.status, 401);
    assert.match(noQuery.json!.detail!, /query/);
    assert.equal((await send('/api/x?admin=1', sign('/api/x?admin=1', ['@method', '@path', '@query']))).status, 200);
    assert.equal((await send('/api/x?admin=1', sign('/api/x?admin=1', ['@method', '@request-target']))).status, 200);
  });

  test('wrong key and unknown keyid: the same 401 answer', async () => {
    const wrong = await send('/api/w', liveSign(gw, { target: '/api/w', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: other.privateKey }));
    const unknown = await send('/api/w', liveSign(gw, { target: '/api/w', components: ['@method', '@path'], keyid: 'nobody', alg: 'ed25519', key: other.privateKey }));
    for (const r of [wrong, unknown]) {
      assert.equal(r.status, 401);
      assert.equal(r.json!.message, NO_MATCH);
      assert.equal(r.headers['www-authenticate'], 'hmac');
      assert.equal(r.seen, null);
    }
    assert.deepEqual({ ...wrong.json, request_id: null }, { ...unknown.json, request_id: null });
  });

  test('alg is checked against the key, never trusted: mismatches and key confusion fail', async () => {
    const sign = (params: string, alg: LiveSign['alg'], key: KeyObject | Buffer, keyid = 'test-key-ed25519') =>
      liveSign(gw, { target: '/api/a', components: ['@method', '@path'], keyid, alg, key, params });
    assert.equal((await send('/api/a', sign(';alg="ed25519"', 'ed25519', ed))).status, 200);
    const mismatch = await send('/api/a', sign(';alg="rsa-pss-sha512"', 'ed25519', ed));
    assert.equal(mismatch.status, 401);
    assert.equal(mismatch.json!.message, NO_MATCH);
    // HMAC "keyed" with the public key's bytes: the classic confusion attack.
    const pubBytes = Buffer.from(TEST_KEY_ED25519_PUBLIC);
    assert.equal((await send('/api/a', sign(';alg="hmac-sha256"', 'hmac-sha256', pubBytes))).status, 401);
    assert.equal((await send('/api/a', sign('', 'hmac-sha256', pubBytes))).status, 401);
    assert.equal((await send('/api/a', sign(';alg="ed25519"', 'ed25519', ed, 'live-hmac'))).status, 401, 'an HMAC credential does not verify ed25519');
  });

  test('created / expires outside clock_skew are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sign = (created: number, params = '') => liveSign(gw, { target: '/skew', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed, created, params });
    assert.equal((await send('/skew', sign(now - 10))).status, 200);
    for (const [headers, why] of [
      [sign(now - 120), /clock skew/],
      [sign(now + 120), /clock skew/],
      [sign(now - 5, `;expires=${now - 60}`), /expired/],
    ] as const) {
      const r = await send('/skew', headers);
      assert.equal(r.status, 401);
      assert.equal(r.json!.message, NOT_VERIFIED);
      assert.match(r.json!.detail!, why);
    }
    assert.equal((await send('/skew', sign(now, `;expires=${now + 60}`))).status, 200);
    const noCreated = sign(now);
    noCreated['signature-input'] = noCreated['signature-input']!.replace(/;created=\d+/, '');
    assert.match((await send('/skew', noCreated)).json!.detail!, /created/);
  });

  test('a nonce is accepted once; require_nonce refuses signatures without one', async () => {
    const sign = (path: string, params: string) => liveSign(gw, { target: path, components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed, params });
    const once = sign('/api/n', ';nonce="n-1"');
    assert.equal((await send('/api/n', once)).status, 200);
    const replay = await send('/api/n', once);
    assert.equal(replay.status, 401);
    assert.match(replay.json!.detail!, /nonce/);
    assert.equal(replay.seen, null);
    assert.equal((await send('/api/n', sign('/api/n', ';nonce="n-2"'))).status, 200, 'another nonce is fine');
    const without = await send('/nonce', sign('/nonce', ''));
    assert.equal(without.status, 401);
    assert.match(without.json!.detail!, /nonce/);
    assert.equal((await send('/nonce', sign('/nonce', ';nonce="n-3"'))).status, 200);
  });

  test('label and tag profile: only the configured signature is used', async () => {
    const base = { target: '/tagged', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519' as const, key: ed };
    assert.equal((await send('/tagged', liveSign(gw, { ...base, label: 'partner', params: ';tag="partner-v1"' }))).status, 200);
    assert.equal((await send('/tagged', liveSign(gw, { ...base, label: 'partner', params: ';tag="other"' }))).status, 401);
    assert.equal((await send('/tagged', liveSign(gw, { ...base, label: 'sig1', params: ';tag="partner-v1"' }))).status, 401);
  });

  test('several signatures: the first that verifies wins', async () => {
    const good = liveSign(gw, { target: '/api/m', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed, label: 'client' });
    const bad = liveSign(gw, { target: '/api/m', components: ['@method', '@path'], keyid: 'nobody', alg: 'ed25519', key: other.privateKey, label: 'proxy' });
    const headers = { 'signature-input': `${bad['signature-input']}, ${good['signature-input']}`, signature: `${bad.signature}, ${good.signature}` };
    const r = await send('/api/m', headers);
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers['x-credential-identifier'], 'test-key-ed25519');
  });

  test('malformed Signature-Input / Signature and a missing Signature', async () => {
    const good = liveSign(gw, { target: '/api/z', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed });
    for (const headers of [
      { ...good, 'signature-input': 'sig1=("@method" "@path";created=1' },
      { ...good, signature: 'sig1=not-bytes' },
      { ...good, signature: 'other=:AAAA:' },
      { 'signature-input': good['signature-input']! },
      { ...good, 'signature-input': good['signature-input']!.replace('"@path"', '"@path" "@status"') },
    ]) {
      const r = await send('/api/z', headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json!.message, NOT_VERIFIED);
    }
    const none = await send('/api/z', {});
    assert.equal(none.json!.message, 'Unauthorized');
    assert.equal(none.headers['www-authenticate'], 'hmac');
  });

  test('@authority binds the Host: another Host fails', async () => {
    const headers = liveSign(gw, { target: '/api/h', components: ['@method', '@authority', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed });
    assert.equal((await send('/api/h', headers)).status, 200);
    assert.equal((await send('/api/h', { ...headers, host: 'evil.example' })).status, 401);
  });

  test('structured field components (sf, key) through the gateway', async () => {
    const headers = { 'x-dict': 'a=1,   b=2;x=1' };
    // Signed by hand: the minimal signer has no component parameters.
    const created = Math.floor(Date.now() / 1000);
    const params = `("@method" "@path" "x-dict";sf "x-dict";key="b");created=${created};keyid="test-key-ed25519"`;
    const base = ['"@method": GET', '"@path": /api/sf', '"x-dict";sf: a=1, b=2;x=1', '"x-dict";key="b": 2;x=1', `"@signature-params": ${params}`].join('\n');
    const sig = cryptoSign(null, Buffer.from(base), ed).toString('base64');
    const signed = { ...headers, 'signature-input': `s=${params}`, signature: `s=:${sig}:` };
    assert.equal((await send('/api/sf', signed)).status, 200);
    assert.equal((await send('/api/sf', { ...signed, 'x-dict': 'a=1, b=3;x=1' })).status, 401);
    assert.equal((await send('/api/sf', { ...signed, 'x-dict': 'a=1,b=2;x=1' })).status, 200, 'sf canonicalises whitespace');
  });

  test('cavage and rfc9421 on one route', async () => {
    const rfc = liveSign(gw, { target: '/both', components: ['@method', '@path'], keyid: 'live-hmac', alg: 'hmac-sha256', key: secret });
    assert.equal((await send('/both', rfc)).status, 200);
    const date = new Date().toUTCString();
    const mac = createHmac('sha256', secret).update(`date: ${date}\nGET /both HTTP/1.1`).digest('base64');
    const cav = await send('/both', { date, authorization: `hmac username="live-hmac", algorithm="hmac-sha256", headers="date request-line", signature="${mac}"` });
    assert.equal(cav.status, 200);
    assert.equal(cav.seen!.headers['x-credential-identifier'], 'live-hmac');
    assert.equal((await send('/api', { date, authorization: `hmac username="live-hmac", algorithm="hmac-sha256", headers="date request-line", signature="${mac}"` })).status, 401, 'rfc9421 only: cavage is not accepted');
  });

  test('hide_credentials removes Signature and Signature-Input', async () => {
    const r = await send('/hide', liveSign(gw, { target: '/hide', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }));
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers.signature, undefined);
    assert.equal(r.seen!.headers['signature-input'], undefined);
    assert.equal(r.seen!.headers['x-consumer-username'], 'ed-client');
  });

  test('anonymous: a failed signature proceeds as the anonymous consumer', async () => {
    const bad = await send('/anon', liveSign(gw, { target: '/anon', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: other.privateKey }));
    assert.equal(bad.status, 200);
    assert.equal(bad.seen!.headers['x-consumer-username'], 'guest');
    assert.equal(bad.seen!.headers['x-anonymous-consumer'], 'true');
    const good = await send('/anon', liveSign(gw, { target: '/anon', components: ['@method', '@path'], keyid: 'test-key-ed25519', alg: 'ed25519', key: ed }));
    assert.equal(good.seen!.headers['x-consumer-username'], 'ed-client');
    assert.equal(good.seen!.headers['x-anonymous-consumer'], undefined);
  });

  test('brute force by keyid: 429 with Retry-After, other keyids unaffected, then recovery', async () => {
    const sign = (keyid: string, key: KeyObject) => liveSign(gw, { target: '/bf', components: ['@method', '@path'], keyid, alg: 'ed25519', key });
    for (let i = 0; i < 3; i++) assert.equal((await send('/bf', sign('locked', other.privateKey))).status, 401);
    await new Promise((r) => setTimeout(r, 50));
    const locked = await send('/bf', sign('locked', ed));
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    assert.equal(locked.seen, null);
    assert.equal((await send('/bf', sign('fine', ed))).status, 200);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await send('/bf', sign('locked', ed))).status, 200);
  });

  test('credential key config: private keys, wrong algorithms and small RSA keys are refused', async () => {
    const cfg = (cred: object) => ({
      consumers: [{ username: 'c', hmacauth_credentials: [{ username: 'k', ...cred }] }],
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'hmac-auth', config: strict }] }] }],
    });
    const names = (re: RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      assert.match(`${e.message} ${JSON.stringify(e.errors ?? '')}`, re);
      return true;
    };
    await assert.rejects(startGateway(cfg({ public_key: TEST_KEY_ED25519_PRIVATE })), names(/public_key: a private key/));
    await assert.rejects(startGateway(cfg({ public_key: { ...TEST_KEY_ECC_P256_JWK, d: 'UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs' } })), names(/public_key: a private JWK/));
    await assert.rejects(startGateway(cfg({ public_key: TEST_KEY_ED25519_PUBLIC, algorithm: 'rsa-pss-sha512' })), names(/algorithm: rsa-pss-sha512 does not fit/));
    await assert.rejects(startGateway(cfg({ secret: 'x', algorithm: 'ed25519' })), names(/algorithm: ed25519 needs a public_key/));
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    await assert.rejects(startGateway(cfg({ public_key: small })), names(/at least 2048 bits/));
    await assert.rejects(startGateway(cfg({ public_key: { ...TEST_KEY_ECC_P256_JWK, alg: 'RS256' } })), names(/does not fit the key type/));
    const g = await startGateway(cfg({ public_key: JSON.stringify(TEST_KEY_ECC_P256_JWK) }));
    await g.close();
  });
});
