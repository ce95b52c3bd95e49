/**
 * ldap-auth against a real OpenLDAP slapd (test/helpers/slapd.ts: a private
 * instance, plain + StartTLS + LDAPS), through a real gateway and upstream.
 * slapd missing → the suite fails with the install hint
 * (scripts/ci/install-slapd.sh); it is never skipped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { LDAP_GROUPS, LDAP_PEOPLE, LDAP_USERS, startSlapd, type TestSlapd } from '../../../test/helpers/slapd.ts';

const pem = (name: string) => readFileSync(new URL(`../../../test/fixtures/tls/${name}`, import.meta.url), 'utf8');
const CA = pem('ca.crt');
const CLIENT_CA = pem('client-ca.crt');

const ALICE = { id: '0a11ce00-0000-4000-8000-00000000000a', username: 'alice', custom_id: 'alice-ldap' };
const BOB_CONSUMER = { id: '0b0b0000-0000-4000-8000-00000000000b', username: 'robert', custom_id: 'bob' };
const ANON = { id: '0a0a0000-0000-4000-8000-0000000000aa', username: 'anonymous-user' };
const TEST_CLIENT = { id: '0c0c0000-0000-4000-8000-0000000000cc', username: 'test-client' };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const ldap = (user: string, password: string, scheme = 'ldap') => `${scheme} ${b64(`${user}:${password}`)}`;

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  /** Headers the upstream saw, when the request reached it. */
  seen: IncomingHttpHeaders | null;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', () => ok()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

describe('ldap-auth', () => {
  let slapd: TestSlapd;
  let upstream: TestUpstream;
  let gw: TestGateway;
  let downPort: number;

  const base = () => ({ ldap_host: '127.0.0.1', ldap_port: slapd.port, base_dn: LDAP_PEOPLE, attribute: 'uid' });

  before(async () => {
    slapd = await startSlapd();
    upstream = await startUpstream();
    downPort = await closedPort();
    const route = (name: string, config: object, extra: object[] = []) => ({
      name,
      paths: [`/${name}`],
      // Brute-force counters are shared by every route (per IP, per username): only the bf routes count.
      plugins: [{ name: 'ldap-auth', config: { ...base(), brute_force: { enabled: false }, ...config } }, ...extra],
    });
    const mtls = (config: object = {}) => ({ name: 'mtls-auth', config: { ca_certificates: [CLIENT_CA], brute_force: { enabled: false }, ...config } });
    gw = await startGateway({
      certificates: [{ cert: pem('localhost.crt'), key: pem('localhost.key'), snis: ['localhost'], client_ca: CLIENT_CA, client_verify: 'optional' }],
      consumers: [ALICE, BOB_CONSUMER, ANON, TEST_CLIENT],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('plain', {}),
            route('ldaps', { ldaps: true, ldap_port: slapd.ldapsPort, verify_ldap_host: true, ca_certificates: [CA] }),
            route('starttls', { start_tls: true, verify_ldap_host: true, ca_certificates: [CA] }),
            route('ldaps-wrong-ca', { ldaps: true, ldap_port: slapd.ldapsPort, verify_ldap_host: true, ca_certificates: [CLIENT_CA] }),
            route('starttls-wrong-ca', { start_tls: true, verify_ldap_host: true, ca_certificates: [CLIENT_CA] }),
            route('hide', { hide_credentials: true }),
            route('realm', { realm: 'corp' }),
            route('basic', { header_type: 'basic' }),
            route('groups', { group_base_dn: LDAP_GROUPS }),
            route('acl', { group_base_dn: LDAP_GROUPS }, [{ name: 'acl', config: { allow: ['admins'] } }]),
            route('by-username', { consumer_by: ['username', 'custom_id'] }),
            route('by-optional', { consumer_by: ['custom_id'], consumer_optional: true }),
            route('anon', { anonymous: ANON.username }),
            route('down', { ldap_port: downPort, timeout: 2000 }),
            route('down-anon', { ldap_port: downPort, timeout: 2000, anonymous: ANON.username }),
            route('down-open', { ldap_port: downPort, timeout: 2000, anonymous: ANON.username, on_ldap_error: 'anonymous' }),
            route('bf', { cache_ttl: 0, brute_force: { window: 60, max_failures_per_identity: 3, max_failures_per_ip: 0, lockout: 1 } }),
            route('bf-ip', { brute_force: { window: 60, max_failures_per_identity: 0, max_failures_per_ip: 2, lockout: 1 } }),
            route('short-cache', { cache_ttl: 1 }),
            // Two auth plugins: "any of them" (anonymous on both) and "all of them" (no anonymous).
            route('any', { anonymous: ANON.username }, [mtls({ anonymous: ANON.username })]),
            route('all', { consumer_by: ['username'] }, [mtls()]),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
    await slapd?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}): Promise<Res> {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { headers });
    const text = await r.body.text();
    const reached = upstream.requests.length > before;
    return {
      status: r.statusCode,
      headers: r.headers,
      json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      seen: reached ? upstream.requests.at(-1)!.headers : null,
    };
  }

  function assertUnauthorized(r: Res, challenge = 'LDAP') {
    assert.equal(r.status, 401);
    assert.equal(r.json.message, 'Unauthorized');
    assert.equal(r.headers['www-authenticate'], challenge);
    assert.equal(r.seen, null, 'the upstream was not reached');
  }

  test('a valid user over plain LDAP: 200, X-Credential-Identifier = username, no consumer (Kong OSS)', async () => {
    const r = await call('/plain', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(r.status, 200);
    assert.equal(r.seen!['x-credential-identifier'], 'alice');
    assert.equal(r.seen!['x-consumer-id'], undefined);
    assert.equal(r.seen!['x-anonymous-consumer'], undefined);
    assert.equal(r.seen!.authorization, ldap('alice', LDAP_USERS.alice), 'the credential goes upstream without hide_credentials');
  });

  test('no credentials: 401 "Unauthorized" with WWW-Authenticate: LDAP', async () => {
    assertUnauthorized(await call('/plain'));
  });

  test('a wrong password, an unknown user and another scheme all get the same 401', async () => {
    const wrong = await call('/plain', { authorization: ldap('alice', 'not-her-password') });
    const unknown = await call('/plain', { authorization: ldap('mallory', 'whatever') });
    const other = await call('/plain', { authorization: `Bearer ${b64('alice:alice-secret')}` });
    for (const r of [wrong, unknown, other]) assertUnauthorized(r);
    assert.deepEqual({ ...wrong.json, request_id: null }, { ...unknown.json, request_id: null }, 'same body for an unknown user');
  });

  test('malformed credentials: not base64, no colon, empty password, empty username', async () => {
    for (const value of ['ldap !!!not-base64!!!', `ldap ${b64('alice')}`, `ldap ${b64('alice:')}`, `ldap ${b64(':alice-secret')}`, 'ldap']) {
      assertUnauthorized(await call('/plain', { authorization: value }));
    }
  });

  test('the scheme is case-insensitive and the password may contain colons', async () => {
    assert.equal((await call('/plain', { authorization: ldap('alice', LDAP_USERS.alice, 'LDAP') })).status, 200);
    assert.equal((await call('/plain', { authorization: `  LdAp   ${b64(`alice:${LDAP_USERS.alice}`)}` })).status, 200);
    const bob = await call('/plain', { authorization: ldap('bob', LDAP_USERS.bob) });
    assert.equal(bob.status, 200);
    assert.equal(bob.seen!['x-credential-identifier'], 'bob');
  });

  test('usernames are escaped in the bind DN: no DN injection, special characters work', async () => {
    assertUnauthorized(await call('/plain', { authorization: ldap(`alice,${LDAP_PEOPLE}`, LDAP_USERS.alice) }));
    assertUnauthorized(await call('/plain', { authorization: ldap('*', LDAP_USERS.alice) }));
    const jdoe = await call('/plain', { authorization: ldap('j, doe', LDAP_USERS['j, doe']) });
    assert.equal(jdoe.status, 200, 'uid "j, doe" binds as uid=j\\, doe');
    assert.equal(jdoe.seen!['x-credential-identifier'], 'j, doe');
  });

  test('Proxy-Authorization is tried first, then Authorization; Proxy-Authorization never goes upstream', async () => {
    const proxyOk = await call('/plain', { 'proxy-authorization': ldap('alice', LDAP_USERS.alice), authorization: 'Bearer something-else' });
    assert.equal(proxyOk.status, 200);
    assert.equal(proxyOk.seen!['x-credential-identifier'], 'alice');
    assert.equal(proxyOk.seen!['proxy-authorization'], undefined);
    assert.equal(proxyOk.seen!.authorization, 'Bearer something-else');
    const fallback = await call('/plain', { 'proxy-authorization': ldap('alice', 'wrong'), authorization: ldap('bob', LDAP_USERS.bob) });
    assert.equal(fallback.status, 200);
    assert.equal(fallback.seen!['x-credential-identifier'], 'bob');
  });

  test('LDAPS and StartTLS with a verified server certificate', async () => {
    for (const path of ['/ldaps', '/starttls']) {
      const ok = await call(path, { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(ok.status, 200, path);
      assert.equal(ok.seen!['x-credential-identifier'], 'alice');
      assertUnauthorized(await call(path, { authorization: ldap('alice', 'wrong') }));
      // A second request reuses the pooled (TLS) connection.
      assert.equal((await call(path, { authorization: ldap('bob', LDAP_USERS.bob) })).status, 200, `${path} again`);
    }
  });

  test('a server certificate that does not verify: 500 "An unexpected error occurred", never a bind', async () => {
    for (const path of ['/ldaps-wrong-ca', '/starttls-wrong-ca']) {
      const r = await call(path, { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(r.status, 500, path);
      assert.equal(r.json.message, 'An unexpected error occurred');
      assert.equal(r.seen, null);
    }
  });

  test('hide_credentials removes Authorization before the upstream', async () => {
    const r = await call('/hide', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(r.status, 200);
    assert.equal(r.seen!.authorization, undefined);
    assert.equal(r.seen!['x-credential-identifier'], 'alice');
  });

  test('realm and header_type shape the challenge and the accepted scheme', async () => {
    assertUnauthorized(await call('/realm'), 'LDAP realm="corp"');
    assertUnauthorized(await call('/basic'), 'basic');
    assertUnauthorized(await call('/basic', { authorization: ldap('alice', LDAP_USERS.alice) }), 'basic');
    const basic = await call('/basic', { authorization: ldap('alice', LDAP_USERS.alice, 'Basic') });
    assert.equal(basic.status, 200);
    assert.equal(basic.seen!['x-credential-identifier'], 'alice');
  });

  test('group lookup: the user\'s groups go upstream in X-Authenticated-Groups', async () => {
    const alice = await call('/groups', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(alice.status, 200);
    assert.deepEqual(String(alice.seen!['x-authenticated-groups']).split(', ').sort(), ['admins', 'developers']);
    const jdoe = await call('/groups', { authorization: ldap('j, doe', LDAP_USERS['j, doe']) });
    assert.equal(jdoe.seen!['x-authenticated-groups'], 'developers');
    // Cached results keep the groups.
    const again = await call('/groups', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.deepEqual(String(again.seen!['x-authenticated-groups']).split(', ').sort(), ['admins', 'developers']);
  });

  test('groups feed acl (ctx.shared.authenticated_groups): admins pass, others get 403', async () => {
    const alice = await call('/acl', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(alice.status, 200);
    const bob = await call('/acl', { authorization: ldap('bob', LDAP_USERS.bob) });
    assert.equal(bob.status, 403);
    assert.equal(bob.json.message, 'You cannot consume this service');
  });

  test('spoofed identity headers from the client never reach the upstream', async () => {
    const r = await call('/groups', {
      authorization: ldap('bob', LDAP_USERS.bob),
      'x-consumer-id': ALICE.id,
      'x-consumer-username': 'alice',
      'x-credential-identifier': 'alice',
      'x-authenticated-groups': 'admins',
      'x-anonymous-consumer': 'true',
    });
    assert.equal(r.status, 200);
    assert.equal(r.seen!['x-consumer-id'], undefined);
    assert.equal(r.seen!['x-consumer-username'], undefined);
    assert.equal(r.seen!['x-credential-identifier'], 'bob');
    assert.equal(r.seen!['x-authenticated-groups'], 'developers');
    assert.equal(r.seen!['x-anonymous-consumer'], undefined);
  });

  test('consumer_by maps the LDAP username to a consumer (username, then custom_id); no match is refused', async () => {
    const alice = await call('/by-username', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(alice.status, 200);
    assert.equal(alice.seen!['x-consumer-id'], ALICE.id);
    assert.equal(alice.seen!['x-consumer-username'], 'alice');
    assert.equal(alice.seen!['x-credential-identifier'], 'alice');
    const bob = await call('/by-username', { authorization: ldap('bob', LDAP_USERS.bob) });
    assert.equal(bob.status, 200);
    assert.equal(bob.seen!['x-consumer-username'], BOB_CONSUMER.username, 'bob is the custom_id of consumer robert');
    assertUnauthorized(await call('/by-username', { authorization: ldap('j, doe', LDAP_USERS['j, doe']) }));
    const optional = await call('/by-optional', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(optional.status, 200, 'consumer_optional: authenticated without a consumer');
    assert.equal(optional.seen!['x-consumer-id'], undefined);
    assert.equal(optional.seen!['x-credential-identifier'], 'alice');
  });

  test('anonymous: failures continue as the anonymous consumer, successes are not anonymous', async () => {
    for (const headers of [{}, { authorization: ldap('alice', 'wrong') }, { authorization: 'ldap %%%' }] as Record<string, string>[]) {
      const r = await call('/anon', headers);
      assert.equal(r.status, 200);
      assert.equal(r.seen!['x-anonymous-consumer'], 'true');
      assert.equal(r.seen!['x-consumer-username'], ANON.username);
      assert.equal(r.seen!['x-credential-identifier'], undefined);
    }
    const ok = await call('/anon', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(ok.status, 200);
    assert.equal(ok.seen!['x-anonymous-consumer'], undefined);
    assert.equal(ok.seen!['x-credential-identifier'], 'alice');
  });

  test('directory down: 500 "An unexpected error occurred" (fail closed, even with anonymous); on_ldap_error: anonymous falls back', async () => {
    for (const path of ['/down', '/down-anon']) {
      const r = await call(path, { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(r.status, 500, path);
      assert.equal(r.json.message, 'An unexpected error occurred');
      assert.equal(r.seen, null);
    }
    const open = await call('/down-open', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(open.status, 200);
    assert.equal(open.seen!['x-anonymous-consumer'], 'true');
    // Without credentials nothing is asked of the directory: plain 401.
    assertUnauthorized(await call('/down'));
  });

  test('brute force per username: locked out with 429 + Retry-After, others unaffected, then recovery', async () => {
    for (let i = 0; i < 3; i++) assertUnauthorized(await call('/bf', { authorization: ldap('bob', `guess-${i}`) }));
    await sleep(50);
    const locked = await call('/bf', { authorization: ldap('bob', LDAP_USERS.bob) });
    assert.equal(locked.status, 429, 'even the right password is refused while locked out');
    assert.equal(locked.headers['retry-after'], '1');
    assert.equal(locked.seen, null);
    assert.equal((await call('/bf', { authorization: ldap('alice', LDAP_USERS.alice) })).status, 200, 'another user is not locked');
    await sleep(1100);
    assert.equal((await call('/bf', { authorization: ldap('bob', LDAP_USERS.bob) })).status, 200, 'recovered after the lockout');
  });

  test('brute force per IP counts malformed and wrong credentials, not missing ones', async () => {
    for (let i = 0; i < 3; i++) assertUnauthorized(await call('/bf-ip'));
    assert.equal((await call('/bf-ip', { authorization: ldap('alice', LDAP_USERS.alice) })).status, 200, 'missing credentials are not failures');
    assertUnauthorized(await call('/bf-ip', { authorization: 'ldap !!!' }));
    assertUnauthorized(await call('/bf-ip', { authorization: ldap('alice', 'wrong') }));
    await sleep(50);
    const locked = await call('/bf-ip', { authorization: ldap('alice', LDAP_USERS.alice) });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    await sleep(1100);
    assert.equal((await call('/bf-ip', { authorization: ldap('alice', LDAP_USERS.alice) })).status, 200);
  });

  test('passwords never appear in the gateway log', async () => {
    await call('/down', { authorization: ldap('alice', LDAP_USERS.alice) });
    await call('/plain', { authorization: ldap('alice', 'a-wrong-secret-value') });
    const text = JSON.stringify(gw.logs);
    for (const secret of [...Object.values(LDAP_USERS), 'a-wrong-secret-value']) assert.ok(!text.includes(secret), `log leaks ${secret}`);
  });

  test('results are cached (cache_ttl) under the (username, password) pair; outage and restart of the directory', async () => {
    const alice = { authorization: ldap('alice', LDAP_USERS.alice) };
    assert.equal((await call('/short-cache', alice)).status, 200);
    assertUnauthorized(await call('/short-cache', { authorization: ldap('bob', 'wrong') }));
    await slapd.stop();
    try {
      assert.equal((await call('/short-cache', alice)).status, 200, 'served from the cache while the directory is down');
      assertUnauthorized(await call('/short-cache', { authorization: ldap('bob', 'wrong') }));
      const other = await call('/short-cache', { authorization: ldap('alice', 'another-password') });
      assert.equal(other.status, 500, 'another password is another cache entry: asks the (down) directory');
      await sleep(1100);
      assert.equal((await call('/short-cache', alice)).status, 500, 'the entry expired after cache_ttl');
    } finally {
      await slapd.start();
    }
    // Pooled connections died with the server: new ones are opened.
    for (const path of ['/plain', '/ldaps', '/starttls', '/short-cache']) {
      assert.equal((await call(path, { authorization: ldap('bob', LDAP_USERS.bob) })).status, 200, `${path} after the restart`);
    }
  });

  test('with mtls-auth: "any of them" (anonymous on both) — the first that succeeds wins, else anonymous; "all of them" — both required', async () => {
    const withCert = new Agent({ connect: { ca: CA, cert: pem('client.crt'), key: pem('client.key') } });
    const noCert = new Agent({ connect: { ca: CA } });
    try {
      const tlsCall = async (agent: Agent, path: string, headers: Record<string, string> = {}) => {
        const before = upstream.requests.length;
        const r = await request(gw.tlsUrl! + path, { dispatcher: agent, headers });
        const text = await r.body.text();
        return { status: r.statusCode, headers: r.headers, json: text ? JSON.parse(text) : {}, seen: upstream.requests.length > before ? upstream.requests.at(-1)!.headers : null } as Res;
      };
      const cert = await tlsCall(withCert, '/any', { authorization: ldap('alice', 'wrong') });
      assert.equal(cert.status, 200);
      assert.equal(cert.seen!['x-consumer-username'], 'test-client', 'mtls-auth (priority 1600) identified the client; ldap-auth skipped');
      assert.equal(cert.seen!['x-anonymous-consumer'], undefined);
      const pass = await tlsCall(noCert, '/any', { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(pass.status, 200);
      assert.equal(pass.seen!['x-credential-identifier'], 'alice', 'ldap-auth replaced the anonymous fallback of mtls-auth');
      assert.equal(pass.seen!['x-consumer-id'], undefined);
      assert.equal(pass.seen!['x-anonymous-consumer'], undefined);
      const none = await tlsCall(noCert, '/any', { authorization: ldap('alice', 'wrong') });
      assert.equal(none.status, 200);
      assert.equal(none.seen!['x-anonymous-consumer'], 'true');
      assert.equal(none.seen!['x-consumer-username'], ANON.username);

      // "All of them": both must succeed.
      const both = await tlsCall(withCert, '/all', { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(both.status, 200);
      assert.equal(both.seen!['x-consumer-username'], 'alice', 'the last plugin (ldap-auth, consumer_by) sets the consumer');
      const certOnly = await tlsCall(withCert, '/all');
      assertUnauthorized(certOnly);
      const ldapOnly = await tlsCall(noCert, '/all', { authorization: ldap('alice', LDAP_USERS.alice) });
      assert.equal(ldapOnly.status, 401);
      assert.equal(ldapOnly.json.message, 'No required TLS certificate was sent');
      assert.equal(ldapOnly.seen, null);
    } finally {
      await withCert.close();
      await noCert.close();
    }
  });

  describe('config errors name the field', () => {
    const withConfig = (config: object, consumers: object[] = []) => ({
      consumers,
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'ldap-auth', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    const good = () => ({ ...base() });

    test('required fields and types', async () => {
      const { ldap_host: _h, ...noHost } = good();
      await assert.rejects(startGateway(withConfig(noHost)), names('ldap_host'));
      const { base_dn: _b, ...noBase } = good();
      await assert.rejects(startGateway(withConfig(noBase)), names('base_dn'));
      await assert.rejects(startGateway(withConfig({ ...good(), attribute: 'uid=x' })), names('attribute'));
      await assert.rejects(startGateway(withConfig({ ...good(), ldap_port: 70000 })), names('ldap_port'));
      await assert.rejects(startGateway(withConfig({ ...good(), header_type: 'two words' })), names('header_type'));
      await assert.rejects(startGateway(withConfig({ ...good(), realm: 'a"b' })), names('realm'));
      await assert.rejects(startGateway(withConfig({ ...good(), consumer_by: ['id'] })), names('consumer_by'));
      await assert.rejects(startGateway(withConfig({ ...good(), unknown_field: 1 })), names('unknown_field'));
    });

    test('cross-field rules and references', async () => {
      await assert.rejects(startGateway(withConfig({ ...good(), ldaps: true, start_tls: true })), names("'ldaps' and 'start_tls' cannot be enabled simultaneously"));
      await assert.rejects(startGateway(withConfig({ ...good(), on_ldap_error: 'anonymous' })), names('on_ldap_error'));
      await assert.rejects(startGateway(withConfig({ ...good(), ca_certificates: ['not a pem'] })), names('ca_certificates'));
      await assert.rejects(startGateway(withConfig({ ...good(), consumer_optional: true })), names('consumer_optional'));
      await assert.rejects(startGateway(withConfig({ ...good(), anonymous: 'nobody' })), names('anonymous'));
    });
  });
});
