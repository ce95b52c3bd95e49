/**
 * hmac-auth, Kong's draft-cavage scheme, black-box through a real gateway and
 * a real upstream: the client signs exactly like a Kong client would.
 * RFC 9421 is covered in rfc9421.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { getPlugin } from '../registry.ts';

const HASH: Record<string, string> = { 'hmac-sha1': 'sha1', 'hmac-sha224': 'sha224', 'hmac-sha256': 'sha256', 'hmac-sha384': 'sha384', 'hmac-sha512': 'sha512' };
const NOT_VERIFIED = 'HMAC signature cannot be verified';
const NO_MATCH = 'HMAC signature does not match';
const DATE_REQUIRED = 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication';

interface SignOpts {
  username?: string;
  secret?: string;
  algorithm?: string;
  method?: string;
  /** Path and query, as sent. */
  target: string;
  /** Headers sent (lower-case names); a Date is added unless given. */
  headers?: Record<string, string>;
  /** The headers parameter. */
  signed?: string[];
  scheme?: 'authorization' | 'proxy-authorization';
}

/** A Kong hmac-auth client: returns the request headers, Authorization included. */
function sign(o: SignOpts): Record<string, string> {
  const method = o.method ?? 'GET';
  const algorithm = o.algorithm ?? 'hmac-sha256';
  const headers: Record<string, string> = { date: new Date().toUTCString(), ...o.headers };
  const signed = o.signed ?? ['date', 'request-line'];
  const lines = signed.map((h) => {
    if (h === 'request-line') return `${method} ${o.target} HTTP/1.1`;
    if (h === '@request-target') return `${method.toLowerCase()} ${o.target}`;
    return headers[h] === undefined ? `${h}:` : `${h}: ${headers[h]}`;
  });
  const signature = createHmac(HASH[algorithm]!, o.secret ?? 'alice-secret').update(lines.join('\n')).digest('base64');
  headers[o.scheme ?? 'authorization'] = `hmac username="${o.username ?? 'alice'}", algorithm="${algorithm}", headers="${signed.join(' ')}", signature="${signature}"`;
  return headers;
}

const names = (field: string) => (err: unknown) => {
  const e = err as { message?: string; errors?: unknown };
  const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
  assert.match(text, new RegExp(field), text);
  return true;
};

describe('hmac-auth (Kong draft-cavage scheme)', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const off = { enabled: false };

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'hmac-auth', config: { brute_force: off, ...config } }] });
    gw = await startGateway({
      _format_version: '3.0',
      consumers: [
        { username: 'alice', custom_id: 'alice-cid', hmacauth_credentials: [{ username: 'alice', secret: 'alice-secret' }] },
        { username: 'bob', hmacauth_credentials: [{ username: 'bob-key', secret: 'bob-secret' }] },
        { username: 'carol', hmacauth_credentials: [{ username: 'carol', secret: 'carol-secret' }] },
        { username: 'dave', hmacauth_credentials: [{ username: 'dave', secret: 'dave-secret' }] },
        { username: 'guest' },
      ],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('cav', {}),
            route('hide', { hide_credentials: true }),
            route('realm', { realm: 'partner-api' }),
            route('enforce', { enforce_headers: ['date', '@request-target', 'x-tenant'] }),
            route('body', { validate_request_body: true }),
            route('sha1', { algorithms: ['hmac-sha1'] }),
            route('skew', { clock_skew: 10 }),
            route('anon', { anonymous: 'guest' }),
            route('bf', { brute_force: { window: 60, max_failures_per_ip: 0, max_failures_per_identity: 3, lockout: 1 } }),
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
    const before = upstream.requests.length;
    const r = await request(gw.url + target, { method: (opts.method ?? 'GET') as 'GET', headers, body: opts.body });
    const text = await r.body.text();
    const json = r.headers['content-type']?.toString().includes('json') ? JSON.parse(text) : null;
    return { status: r.statusCode, headers: r.headers, json, seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null };
  }

  test('a valid signature over date and request-line authenticates the consumer', async () => {
    const r = await send('/cav/items?x=1', sign({ target: '/cav/items?x=1' }));
    assert.equal(r.status, 200);
    const h = r.seen!.headers;
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'alice-cid');
    assert.equal(h['x-credential-identifier'], 'alice');
    assert.ok(h['x-consumer-id']);
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.match(String(h.authorization), /^hmac username="alice"/, 'the credential is forwarded without hide_credentials');
  });

  test('X-Credential-Identifier is the credential username, not the consumer name', async () => {
    const r = await send('/cav', sign({ target: '/cav', username: 'bob-key', secret: 'bob-secret' }));
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers['x-consumer-username'], 'bob');
    assert.equal(r.seen!.headers['x-credential-identifier'], 'bob-key');
  });

  test('every default algorithm works; hmac-sha1 only when listed', async () => {
    for (const algorithm of ['hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512']) {
      assert.equal((await send('/cav', sign({ target: '/cav', algorithm }))).status, 200, algorithm);
    }
    const sha1 = await send('/cav', sign({ target: '/cav', algorithm: 'hmac-sha1' }));
    assert.equal(sha1.status, 401);
    assert.equal(sha1.json.message, NOT_VERIFIED);
    assert.equal((await send('/sha1', sign({ target: '/sha1', algorithm: 'hmac-sha1' }))).status, 200);
    assert.equal((await send('/sha1', sign({ target: '/sha1', algorithm: 'hmac-sha256' }))).status, 401);
  });

  test('x-date, @request-target, other signed headers and Proxy-Authorization', async () => {
    const xdate = sign({ target: '/cav?a=b', headers: { 'x-date': new Date().toUTCString(), date: 'not a date' }, signed: ['x-date', '@request-target', 'x-tenant'] });
    xdate['x-tenant'] = 'acme';
    // x-tenant was signed as absent ("x-tenant:"), so sending it changes the signing string.
    assert.equal((await send('/cav?a=b', xdate)).status, 401);
    const withTenant = sign({ target: '/cav?a=b', headers: { 'x-date': new Date().toUTCString(), 'x-tenant': 'acme' }, signed: ['x-date', '@request-target', 'x-tenant'] });
    assert.equal((await send('/cav?a=b', withTenant)).status, 200);
    const proxy = await send('/cav', sign({ target: '/cav', scheme: 'proxy-authorization' }));
    assert.equal(proxy.status, 200);
    assert.equal(proxy.seen!.headers['proxy-authorization'], undefined, 'Proxy-Authorization never goes upstream');
  });

  test('the signature covers the method, target and signed headers', async () => {
    const h = sign({ target: '/cav/a?x=1' });
    assert.equal((await send('/cav/a?x=2', h)).status, 401, 'other query');
    assert.equal((await send('/cav/b?x=1', h)).status, 401, 'other path');
    assert.equal((await send('/cav/a?x=1', h, { method: 'DELETE' })).status, 401, 'other method');
    const dated = sign({ target: '/cav' });
    dated.date = new Date(Date.now() - 1000).toUTCString();
    const r = await send('/cav', dated);
    assert.equal(r.status, 401);
    assert.equal(r.json.message, NO_MATCH);
  });

  test("Kong's deprecated fallback: a request-line signed over the path without the query is accepted", async () => {
    const h = sign({ target: '/cav/legacy' });
    const r = await send('/cav/legacy?page=2', h);
    assert.equal(r.status, 200);
    assert.equal(r.seen!.url, '/legacy?page=2');
    const other = sign({ target: '/cav/legacy?page=1' });
    assert.equal((await send('/cav/legacy?page=2', other)).status, 401, 'a signed query still binds');
  });

  test('no credentials: 401 Unauthorized with the hmac challenge (realm when configured)', async () => {
    const r = await send('/cav', {});
    assert.equal(r.status, 401);
    assert.equal(r.json.message, 'Unauthorized');
    assert.equal(r.headers['www-authenticate'], 'hmac');
    assert.equal(r.seen, null);
    const realm = await send('/realm', {});
    assert.equal(realm.headers['www-authenticate'], 'hmac realm="partner-api"');
    const wrong = await send('/realm', sign({ target: '/realm', secret: 'nope' }));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['www-authenticate'], 'hmac realm="partner-api"', 'every 401 carries the challenge');
  });

  test('Date / X-Date missing, unparsable or outside clock_skew', async () => {
    const noDate = sign({ target: '/cav', signed: ['request-line'] });
    delete noDate.date;
    for (const headers of [noDate, { ...noDate, date: 'yesterday' }, { ...noDate, date: new Date(Date.now() - 301_000).toUTCString() }]) {
      const r = await send('/cav', headers);
      assert.equal(r.status, 401);
      assert.equal(r.json.message, DATE_REQUIRED);
      assert.equal(r.headers['www-authenticate'], 'hmac');
    }
    const old = sign({ target: '/skew', headers: { date: new Date(Date.now() - 30_000).toUTCString() } });
    assert.equal((await send('/skew', old)).json.message, DATE_REQUIRED);
    assert.equal((await send('/skew', sign({ target: '/skew' }))).status, 200);
    // Any Authorization value gets the date check first, as in Kong.
    assert.equal((await send('/cav', { authorization: 'Bearer abc' })).json.message, DATE_REQUIRED);
  });

  test('malformed or incomplete Authorization: HMAC signature cannot be verified', async () => {
    const date = new Date().toUTCString();
    for (const authorization of ['Bearer abc', 'hmac username="alice", algorithm="hmac-sha256", signature="abc"', 'hmac username="alice"']) {
      const r = await send('/cav', { date, authorization });
      assert.equal(r.status, 401);
      assert.equal(r.json.message, NOT_VERIFIED, authorization);
    }
    const badB64 = sign({ target: '/cav' });
    badB64.authorization = badB64.authorization!.replace(/signature="[^"]+"/, 'signature="!!!"');
    assert.equal((await send('/cav', badB64)).json.message, NO_MATCH);
  });

  test('enforce_headers: every enforced header must be signed', async () => {
    const missing = await send('/enforce', sign({ target: '/enforce', signed: ['date', '@request-target'] }));
    assert.equal(missing.status, 401);
    assert.equal(missing.json.message, NOT_VERIFIED);
    const ok = await send('/enforce', sign({ target: '/enforce', headers: { 'x-tenant': 't1' }, signed: ['date', '@request-target', 'x-tenant'] }));
    assert.equal(ok.status, 200);
  });

  test('wrong secret and unknown username get the same answer (no user enumeration)', async () => {
    const wrong = await send('/cav', sign({ target: '/cav', secret: 'guess' }));
    const unknown = await send('/cav', sign({ target: '/cav', username: 'mallory' }));
    for (const r of [wrong, unknown]) {
      assert.equal(r.status, 401);
      assert.equal(r.json.message, NO_MATCH);
      assert.equal(r.headers['www-authenticate'], 'hmac');
      assert.equal(r.seen, null);
    }
    const strip = (j: Record<string, unknown>) => ({ ...j, request_id: null });
    assert.deepEqual(strip(wrong.json), strip(unknown.json));
    assert.doesNotMatch(JSON.stringify(wrong.json), /secret|guess/);
  });

  test('validate_request_body: Digest must be SHA-256 of the body', async () => {
    const body = '{"amount":100}';
    const digest = `SHA-256=${createHash('sha256').update(body).digest('base64')}`;
    const ok = await send('/body', sign({ method: 'POST', target: '/body', headers: { digest }, signed: ['date', 'request-line', 'digest'] }), { method: 'POST', body });
    assert.equal(ok.status, 200);
    assert.equal(ok.seen!.body, body, 'the buffered body still goes upstream');
    const tampered = await send('/body', sign({ method: 'POST', target: '/body', headers: { digest }, signed: ['date', 'request-line', 'digest'] }), {
      method: 'POST',
      body: '{"amount":999}',
    });
    assert.equal(tampered.status, 401);
    assert.equal(tampered.json.message, NO_MATCH);
    assert.equal(tampered.seen, null);
    const noDigest = await send('/body', sign({ method: 'POST', target: '/body' }), { method: 'POST', body });
    assert.equal(noDigest.status, 401);
    assert.equal(noDigest.json.message, NO_MATCH);
    assert.equal((await send('/body', sign({ target: '/body' }))).status, 200, 'no body and no Digest is fine');
    const lowercase = `sha-256=${createHash('sha256').update(body).digest('base64')}`;
    assert.equal((await send('/body', sign({ method: 'POST', target: '/body', headers: { digest: lowercase } }), { method: 'POST', body })).status, 401);
  });

  test('hide_credentials removes Authorization before proxying', async () => {
    const r = await send('/hide', sign({ target: '/hide' }));
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers.authorization, undefined);
    assert.equal(r.seen!.headers['x-consumer-username'], 'alice');
  });

  test('identity headers sent by the client are replaced or removed', async () => {
    const spoof = { 'x-consumer-username': 'admin', 'x-consumer-id': 'root', 'x-credential-identifier': 'admin', 'x-anonymous-consumer': 'false' };
    const ok = await send('/cav', { ...sign({ target: '/cav' }), ...spoof });
    assert.equal(ok.status, 200);
    assert.equal(ok.seen!.headers['x-consumer-username'], 'alice');
    assert.equal(ok.seen!.headers['x-credential-identifier'], 'alice');
    assert.notEqual(ok.seen!.headers['x-consumer-id'], 'root');
    assert.equal(ok.seen!.headers['x-anonymous-consumer'], undefined);
    const anon = await send('/anon', spoof);
    assert.equal(anon.status, 200);
    assert.equal(anon.seen!.headers['x-consumer-username'], 'guest');
    assert.equal(anon.seen!.headers['x-credential-identifier'], undefined);
    assert.equal(anon.seen!.headers['x-anonymous-consumer'], 'true');
  });

  test('anonymous: failures proceed as the anonymous consumer, success as the real one', async () => {
    for (const headers of [{}, sign({ target: '/anon', secret: 'wrong' }), { authorization: 'hmac garbage', date: new Date().toUTCString() }]) {
      const r = await send('/anon', headers);
      assert.equal(r.status, 200);
      assert.equal(r.seen!.headers['x-consumer-username'], 'guest');
      assert.equal(r.seen!.headers['x-anonymous-consumer'], 'true');
    }
    const ok = await send('/anon', sign({ target: '/anon' }));
    assert.equal(ok.seen!.headers['x-consumer-username'], 'alice');
    assert.equal(ok.seen!.headers['x-anonymous-consumer'], undefined);
  });

  test('brute force: an identity failing too often is locked out (429 + Retry-After), then recovers', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await send('/bf', sign({ target: '/bf', username: 'carol', secret: 'wrong' }))).status, 401);
    await new Promise((r) => setTimeout(r, 50));
    const locked = await send('/bf', sign({ target: '/bf', username: 'carol', secret: 'carol-secret' }));
    assert.equal(locked.status, 429, 'even the right secret is refused while locked out');
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    assert.equal(locked.seen, null);
    assert.equal((await send('/bf', sign({ target: '/bf', username: 'dave', secret: 'dave-secret' }))).status, 200, 'other identities are not affected');
    assert.equal((await send('/bf', {})).status, 401, 'missing credentials are not failures');
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await send('/bf', sign({ target: '/bf', username: 'carol', secret: 'carol-secret' }))).status, 200);
  });

  test('brute force: a client IP failing too often is locked out', async () => {
    const up = await startUpstream();
    const g = await startGateway({
      consumers: [{ username: 'alice', hmacauth_credentials: [{ username: 'alice', secret: 'alice-secret' }] }],
      services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/ip'], plugins: [{ name: 'hmac-auth', config: { brute_force: { max_failures_per_ip: 2, max_failures_per_identity: 0, lockout: 1 } } }] }] }],
    });
    try {
      const go = async (headers: Record<string, string>) => {
        const r = await request(`${g.url}/ip`, { headers });
        await r.body.text();
        return r;
      };
      await go(sign({ target: '/ip', username: 'x1', secret: 'a' }));
      await go(sign({ target: '/ip', username: 'x2', secret: 'b' }));
      await new Promise((r) => setTimeout(r, 50));
      const locked = await go(sign({ target: '/ip' }));
      assert.equal(locked.statusCode, 429);
      assert.ok(locked.headers['retry-after']);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await go(sign({ target: '/ip' }))).statusCode, 200);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('two auth plugins: any of them (with anonymous) and all of them (without)', { skip: getPlugin('key-auth') === undefined && 'key-auth is not registered' }, async () => {
    const up = await startUpstream();
    const both = (anonymous?: string) => [
      { name: 'hmac-auth', config: { anonymous, brute_force: off } },
      { name: 'key-auth', config: { anonymous } },
    ];
    const g = await startGateway({
      consumers: [
        { username: 'alice', hmacauth_credentials: [{ username: 'alice', secret: 'alice-secret' }] },
        { username: 'kim', keyauth_credentials: [{ key: 'kim-key' }] },
        { username: 'guest' },
      ],
      services: [
        {
          name: 's',
          url: up.url,
          routes: [
            { name: 'any', paths: ['/any'], plugins: both('guest') },
            { name: 'all', paths: ['/all'], plugins: both() },
          ],
        },
      ],
    });
    try {
      const go = async (path: string, headers: Record<string, string>) => {
        const n = up.requests.length;
        const r = await request(`${g.url}${path}`, { headers });
        await r.body.text();
        return { status: r.statusCode, seen: up.requests.length > n ? up.requests.at(-1)! : null };
      };
      assert.equal((await go('/any', sign({ target: '/any' }))).seen!.headers['x-consumer-username'], 'alice');
      assert.equal((await go('/any', { apikey: 'kim-key' })).seen!.headers['x-consumer-username'], 'kim');
      const none = await go('/any', {});
      assert.equal(none.seen!.headers['x-consumer-username'], 'guest');
      assert.equal(none.seen!.headers['x-anonymous-consumer'], 'true');
      assert.equal((await go('/all', sign({ target: '/all' }))).status, 401, 'hmac alone is not enough');
      assert.equal((await go('/all', { apikey: 'kim-key' })).status, 401, 'key alone is not enough');
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('invalid configs are refused, naming the field', async () => {
    const withPlugin = (config: object, consumers: object[] = []) => ({
      consumers,
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'hmac-auth', config }] }] }],
    });
    await assert.rejects(startGateway(withPlugin({ algorithms: ['hmac-md5'] })), names('algorithms'));
    await assert.rejects(startGateway(withPlugin({ clock_skew: 0 })), names('clock_skew'));
    await assert.rejects(startGateway(withPlugin({ enforce_headers: 'date' })), names('enforce_headers'));
    // A quote or a control character would break the WWW-Authenticate challenge.
    await assert.rejects(startGateway(withPlugin({ realm: 'a"b' })), names('realm'));
    await assert.rejects(startGateway(withPlugin({ signature_schemes: [] })), names('signature_schemes'));
    await assert.rejects(startGateway(withPlugin({ signature_schemes: ['jws'] })), names('signature_schemes'));
    await assert.rejects(startGateway(withPlugin({ anonymous: 'nobody' })), names('anonymous'));
    await assert.rejects(startGateway(withPlugin({ rfc9421: { required_components: ['Not A Name'] } })), names('required_components'));
    await assert.rejects(startGateway(withPlugin({}, [{ username: 'c', hmacauth_credentials: [{ username: 'c' }] }])), names('hmacauth_credentials.*secret or public_key'));
    await assert.rejects(startGateway(withPlugin({}, [{ username: 'c', hmacauth_credentials: [{ secret: 'x' }] }])), names('username'));
    await assert.rejects(startGateway(withPlugin({}, [{ username: 'c', hmacauth_credentials: [{ username: 'c', secret: '' }] }])), names('secret'));
    await assert.rejects(
      startGateway(withPlugin({}, [{ username: 'c', hmacauth_credentials: [{ username: 'c', secret: 'x', secret_encoding: 'base64' }] }])),
      names('secret: not valid base64'),
    );
    await assert.rejects(startGateway(withPlugin({}, [{ username: 'c', hmacauth_credentials: [{ username: 'c', public_key: 'not a key' }] }])), names('public_key'));
    await assert.rejects(
      startGateway(
        withPlugin({}, [
          { username: 'a', hmacauth_credentials: [{ username: 'same', secret: 'x' }] },
          { username: 'b', hmacauth_credentials: [{ username: 'same', secret: 'y' }] },
        ]),
      ),
      names("username 'same'"),
    );
  });
});
