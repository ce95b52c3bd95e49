/**
 * mtls-auth through a real https listener (client_verify: optional) with real
 * client certificates from test/fixtures/tls: valid, none, self-signed,
 * another CA, expired, revoked (CRL), an intermediate chain, SAN mapping,
 * anonymous, skip_consumer_lookup with acl, certificate headers, spoofing,
 * brute force and config errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

const pem = (name: string) => readFileSync(new URL(`../../../test/fixtures/tls/${name}`, import.meta.url), 'utf8');
const CA = pem('ca.crt');
const CLIENT_CA = pem('client-ca.crt');
const INTERMEDIATE = pem('client-intermediate-ca.crt');
const CRL = pem('client-ca.crl');
const STALE_CRL = pem('client-ca-expired.crl');
const id = (name: string) => ({ cert: pem(`${name}.crt`), key: pem(`${name}.key`) });
const CERTS = {
  client: id('client'),
  selfSigned: id('client-selfsigned'),
  revoked: id('client-revoked'),
  san: id('client-san'),
  expired: id('client-expired'),
  chainLeafOnly: id('client-chain'),
  chain: { cert: pem('client-chain.crt') + INTERMEDIATE, key: pem('client-chain.key') },
  // A server certificate (serverAuth only) from the other CA.
  server: id('localhost'),
};
type Who = keyof typeof CERTS | 'none';

const fingerprint = (certPem: string) => createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
const colonFingerprint = (certPem: string) => new X509Certificate(certPem).fingerprint256;

const TEST_CLIENT = { id: '7c000000-0000-4000-8000-000000000001', username: 'test-client' };
const REVOKED = { id: '7c000000-0000-4000-8000-000000000003', username: 'revoked-user', custom_id: 'revoked-client' };
const CHAIN = { id: '7c000000-0000-4000-8000-000000000004', username: 'chain-client' };
const ANON = { id: '7c000000-0000-4000-8000-000000000005', username: 'anonymous-user' };
const FALLBACK = { id: '7c000000-0000-4000-8000-000000000006', username: 'fallback' };
const ALICE = {
  id: '7c000000-0000-4000-8000-000000000007',
  username: 'alice',
  mtls_auth_credentials: [{ id: '7cc00000-0000-4000-8000-000000000001', subject_name: 'alice.clients.example.test', ca_certificate: CLIENT_CA }],
};
const CAROL = {
  id: '7c000000-0000-4000-8000-000000000008',
  username: 'carol',
  // Same certificate name, but only for certificates under the server CA: must not match.
  mtls_auth_credentials: [{ subject_name: 'alice@example.test', ca_certificate: colonFingerprint(CA) }],
};
const DAVE = {
  id: '7c000000-0000-4000-8000-000000000009',
  username: 'dave',
  mtls_auth_credentials: [{ subject_name: 'spiffe://example.test/alice' }],
};

/** Does this node expose, on the server, the intermediates a client sends (getPeerCertificate(true))? */
async function runtimeExposesClientChain(): Promise<boolean> {
  const srv = createHttpsServer({ cert: pem('localhost.crt'), key: pem('localhost.key'), ca: CLIENT_CA, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
    res.end(peer.issuerCertificate?.subject?.CN === 'Palisade Test Client Intermediate CA' ? 'yes' : 'no');
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', () => ok()));
  const agent = new Agent({ connect: { ca: CA, ...CERTS.chain } });
  try {
    const r = await request(`https://127.0.0.1:${(srv.address() as AddressInfo).port}/`, { dispatcher: agent });
    return (await r.body.text()) === 'yes';
  } finally {
    await agent.close();
    srv.close();
  }
}

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  seen: IncomingHttpHeaders | null;
}

describe('mtls-auth', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const agents = new Map<Who, Agent>();

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object, extra: object[] = []) => ({
      name,
      paths: [`/${name}`],
      // Brute-force counters are shared by every route (per IP): only the bf route counts.
      plugins: [{ name: 'mtls-auth', config: { ca_certificates: [CLIENT_CA], brute_force: { enabled: false }, ...config } }, ...extra],
    });
    gw = await startGateway({
      certificates: [{ cert: pem('localhost.crt'), key: pem('localhost.key'), snis: ['localhost'], client_ca: CLIENT_CA, client_verify: 'optional' }],
      consumers: [TEST_CLIENT, REVOKED, CHAIN, ANON, FALLBACK, ALICE, CAROL, DAVE],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('mtls', {}),
            route('wrong-ca', { ca_certificates: [CA] }),
            route('crl', { crls: [CRL] }),
            route('crl-skip', { crls: [CRL], revocation_check_mode: 'SKIP' }),
            route('strict', { crls: [CRL], revocation_check_mode: 'STRICT' }),
            route('strict-no-crl', { revocation_check_mode: 'STRICT' }),
            route('strict-stale', { crls: [STALE_CRL], revocation_check_mode: 'STRICT' }),
            route('stale', { crls: [STALE_CRL] }),
            route('by-custom-id', { consumer_by: ['custom_id'] }),
            route('no-auto', { consumer_by: [] }),
            route('default-consumer', { consumer_by: [], default_consumer: FALLBACK.username }),
            route('anon', { anonymous: ANON.username }),
            route('skip', { skip_consumer_lookup: true }),
            route('skip-acl', { skip_consumer_lookup: true }, [{ name: 'acl', config: { allow: ['test-client'] } }]),
            route('skip-acl-dn', { skip_consumer_lookup: true, authenticated_group_by: 'DN' }, [{ name: 'acl', config: { allow: ['CN=test-client,O=Palisade Tests'] } }]),
            route('headers', { send_client_cert_headers: true }),
            route('chain-full', { ca_certificates: [CLIENT_CA + INTERMEDIATE] }),
            route('partial', { ca_certificates: [INTERMEDIATE], allow_partial_chain: true }),
            route('no-partial', { ca_certificates: [INTERMEDIATE] }),
            route('bf', { brute_force: { window: 60, max_failures_per_ip: 2, max_failures_per_identity: 0, lockout: 1 } }),
          ],
        },
      ],
    });
    for (const who of [...Object.keys(CERTS), 'none'] as Who[]) {
      const creds = who === 'none' ? {} : CERTS[who];
      agents.set(who, new Agent({ connect: { ca: CA, ...creds } }));
    }
  });

  after(async () => {
    for (const a of agents.values()) await a.close();
    await gw?.close();
    await upstream?.close();
  });

  async function call(who: Who, path: string, headers: Record<string, string> = {}, base = gw.tlsUrl!): Promise<Res> {
    const before = upstream.requests.length;
    const r = await request(base + path, { dispatcher: agents.get(who), headers });
    const text = await r.body.text();
    return {
      status: r.statusCode,
      headers: r.headers,
      json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      seen: upstream.requests.length > before ? upstream.requests.at(-1)!.headers : null,
    };
  }

  function refused(r: Res, message: string) {
    assert.equal(r.status, 401, message);
    assert.equal(r.json.message, message);
    assert.equal(r.seen, null, 'the upstream was not reached');
    assert.equal(r.headers['www-authenticate'], undefined);
  }

  test('a valid client certificate identifies the consumer by its CN (consumer_by username)', async () => {
    const r = await call('client', '/mtls');
    assert.equal(r.status, 200);
    assert.equal(r.seen!['x-consumer-id'], TEST_CLIENT.id);
    assert.equal(r.seen!['x-consumer-username'], 'test-client');
    assert.equal(r.seen!['x-anonymous-consumer'], undefined);
  });

  test('no certificate, or plain http: 401 "No required TLS certificate was sent"', async () => {
    refused(await call('none', '/mtls'), 'No required TLS certificate was sent');
    refused(await call('none', '/mtls', {}, gw.url), 'No required TLS certificate was sent');
  });

  test('self-signed, another CA, expired, server-only certificates: 401 "TLS certificate failed verification"', async () => {
    for (const who of ['selfSigned', 'expired', 'server'] as Who[]) refused(await call(who, '/mtls'), 'TLS certificate failed verification');
    refused(await call('client', '/wrong-ca'), 'TLS certificate failed verification');
  });

  test('the plugin verifies with its own CAs, not the listener\'s: a certificate the listener trusts is refused by another CA list', async () => {
    // The listener's client_ca is the client CA (the handshake authorized client.crt); /wrong-ca trusts only the server CA.
    refused(await call('client', '/wrong-ca'), 'TLS certificate failed verification');
    assert.equal((await call('client', '/mtls')).status, 200);
  });

  test('CRL: a revoked certificate is refused, others pass; SKIP ignores the CRL', async () => {
    refused(await call('revoked', '/crl'), 'TLS certificate failed verification');
    assert.equal((await call('client', '/crl')).status, 200);
    const skipped = await call('revoked', '/crl-skip');
    assert.equal(skipped.status, 200);
    assert.equal(skipped.seen!['x-consumer-username'], 'revoked-user');
    assert.equal((await call('revoked', '/mtls')).status, 200, 'without crls the revocation is unknown (IGNORE_CA_ERROR)');
  });

  test('STRICT: a CRL is required for the issuer and must be current', async () => {
    assert.equal((await call('client', '/strict')).status, 200);
    refused(await call('revoked', '/strict'), 'TLS certificate failed verification');
    refused(await call('client', '/strict-no-crl'), 'TLS certificate failed verification');
    refused(await call('client', '/strict-stale'), 'TLS certificate failed verification');
    // IGNORE_CA_ERROR still honours a stale CRL's revocations.
    assert.equal((await call('client', '/stale')).status, 200);
    refused(await call('revoked', '/stale'), 'TLS certificate failed verification');
  });

  test('intermediate CAs: configured with the root (a bundle), or alone with allow_partial_chain', async () => {
    for (const who of ['chain', 'chainLeafOnly'] as Who[]) {
      const full = await call(who, '/chain-full');
      assert.equal(full.status, 200, who);
      assert.equal(full.seen!['x-consumer-username'], 'chain-client');
      assert.equal((await call(who, '/partial')).status, 200, `${who}: the configured intermediate is enough with allow_partial_chain`);
      refused(await call(who, '/no-partial'), 'TLS certificate failed verification');
    }
    refused(await call('client', '/partial'), 'TLS certificate failed verification');
    refused(await call('chainLeafOnly', '/mtls'), 'TLS certificate failed verification');
  });

  test('an intermediate sent by the client counts only where node exposes it (nodejs/node#65579); otherwise refused', async (t) => {
    const exposed = await runtimeExposesClientChain();
    t.diagnostic(`this node ${exposed ? 'exposes' : 'does not expose'} client-sent intermediates: expecting ${exposed ? '200' : '401'}`);
    const r = await call('chain', '/mtls');
    if (exposed) {
      assert.equal(r.status, 200);
      assert.equal(r.seen!['x-consumer-username'], 'chain-client');
    } else refused(r, 'TLS certificate failed verification');
  });

  test('SAN mapping through mtls_auth_credentials: per name, a CA-bound mapping of a CA in the chain, then one for any CA', async () => {
    const r = await call('san', '/mtls');
    assert.equal(r.status, 200);
    // email (carol, bound to another CA: skipped) → DNS (alice, bound to the client CA) wins before URI (dave).
    assert.equal(r.seen!['x-consumer-username'], 'alice');
    assert.equal(r.seen!['x-consumer-id'], ALICE.id);
    assert.equal(r.seen!['x-credential-identifier'], undefined, 'Kong sends no credential identifier for mtls-auth');
  });

  test('consumer_by: custom_id; [] disables auto-matching; default_consumer', async () => {
    const byId = await call('revoked', '/by-custom-id');
    assert.equal(byId.status, 200);
    assert.equal(byId.seen!['x-consumer-username'], 'revoked-user', 'CN revoked-client is the custom_id of revoked-user');
    refused(await call('client', '/by-custom-id'), 'TLS certificate failed verification');
    refused(await call('client', '/no-auto'), 'TLS certificate failed verification');
    const fallback = await call('client', '/default-consumer');
    assert.equal(fallback.status, 200);
    assert.equal(fallback.seen!['x-consumer-username'], 'fallback');
    assert.equal(fallback.seen!['x-anonymous-consumer'], undefined);
    // Explicit mappings still come first.
    assert.equal((await call('san', '/default-consumer')).seen!['x-consumer-username'], 'alice');
  });

  test('anonymous: no or bad certificate → the anonymous consumer; a good one → its consumer', async () => {
    for (const who of ['none', 'selfSigned', 'expired'] as Who[]) {
      const r = await call(who, '/anon');
      assert.equal(r.status, 200, who);
      assert.equal(r.seen!['x-anonymous-consumer'], 'true');
      assert.equal(r.seen!['x-consumer-username'], ANON.username);
    }
    const plain = await call('none', '/anon', {}, gw.url);
    assert.equal(plain.seen!['x-anonymous-consumer'], 'true');
    const ok = await call('client', '/anon');
    assert.equal(ok.seen!['x-consumer-username'], 'test-client');
    assert.equal(ok.seen!['x-anonymous-consumer'], undefined);
  });

  test('skip_consumer_lookup: no consumer, X-Client-Cert-DN / -SAN upstream, CN or DN as the authenticated group for acl', async () => {
    const r = await call('san', '/skip');
    assert.equal(r.status, 200);
    assert.equal(r.seen!['x-consumer-id'], undefined);
    assert.equal(r.seen!['x-client-cert-dn'], 'CN=san-client,O=Palisade Tests');
    assert.equal(r.seen!['x-client-cert-san'], 'alice@example.test,alice.clients.example.test,spiffe://example.test/alice,san-client');
    assert.equal((await call('client', '/skip-acl')).status, 200);
    const other = await call('san', '/skip-acl');
    assert.equal(other.status, 403);
    assert.equal(other.json.message, 'You cannot consume this service');
    assert.equal((await call('client', '/skip-acl-dn')).status, 200);
    assert.equal((await call('san', '/skip-acl-dn')).status, 403);
  });

  test('send_client_cert_headers: DN, SAN, SHA-256 fingerprint, serial and notAfter of the verified certificate', async () => {
    const r = await call('client', '/headers');
    assert.equal(r.status, 200);
    const cert = new X509Certificate(CERTS.client.cert);
    assert.equal(r.seen!['x-client-cert-dn'], 'CN=test-client,O=Palisade Tests');
    assert.equal(r.seen!['x-client-cert-san'], 'test-client');
    assert.equal(r.seen!['x-client-cert-fingerprint'], fingerprint(CERTS.client.cert));
    assert.equal(r.seen!['x-client-cert-serial'], cert.serialNumber);
    assert.equal(r.seen!['x-client-cert-not-after'], cert.validToDate.toISOString());
  });

  test('spoofed X-Client-Cert-* and identity headers from the client are stripped', async () => {
    const spoof = {
      'x-client-cert-dn': 'CN=admin',
      'x-client-cert-san': 'admin',
      'x-client-cert-fingerprint': 'ff',
      'x-client-cert-serial': '01',
      'x-client-cert-not-after': '2999-01-01T00:00:00.000Z',
      'x-consumer-username': 'admin',
      'x-consumer-id': ALICE.id,
      'x-anonymous-consumer': 'false',
    };
    const plain = await call('client', '/mtls', spoof);
    assert.equal(plain.status, 200);
    for (const h of Object.keys(spoof).filter((h) => h.startsWith('x-client-cert'))) assert.equal(plain.seen![h], undefined, h);
    assert.equal(plain.seen!['x-consumer-username'], 'test-client');
    assert.equal(plain.seen!['x-consumer-id'], TEST_CLIENT.id);
    assert.equal(plain.seen!['x-anonymous-consumer'], undefined);
    const sent = await call('client', '/headers', spoof);
    assert.equal(sent.seen!['x-client-cert-dn'], 'CN=test-client,O=Palisade Tests');
    assert.equal(sent.seen!['x-client-cert-fingerprint'], fingerprint(CERTS.client.cert));
    const anon = await call('none', '/anon', spoof);
    for (const h of Object.keys(spoof).filter((h) => h.startsWith('x-client-cert'))) assert.equal(anon.seen![h], undefined, h);
  });

  test('brute force: failed verifications lock the client IP out (429 + Retry-After), then it recovers', async () => {
    refused(await call('selfSigned', '/bf'), 'TLS certificate failed verification');
    refused(await call('expired', '/bf'), 'TLS certificate failed verification');
    await sleep(50);
    const locked = await call('client', '/bf');
    assert.equal(locked.status, 429, 'locked out, even with a good certificate');
    assert.equal(locked.headers['retry-after'], '1');
    assert.equal(locked.seen, null);
    assert.equal((await call('none', '/bf')).status, 401, 'missing certificates are not counted nor locked');
    await sleep(1100);
    assert.equal((await call('client', '/bf')).status, 200);
  });

  describe('config errors name the field', () => {
    const withConfig = (config: object, consumers: object[] = []) => ({
      consumers,
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'mtls-auth', config }] }] }],
    });
    const names = (text: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const all = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.ok(all.includes(text), all);
      return true;
    };

    test('ca_certificates: required, PEM only (Kong ids refused)', async () => {
      await assert.rejects(startGateway(withConfig({})), names('ca_certificates'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [] })), names('ca_certificates'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: ['0b9f2b52-5a1c-4cd1-9c4e-8a5b5f8f6c11'] })), names('ca_certificates[0]: Kong CA certificate ids are not supported'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'] })), names('ca_certificates[0]'));
    });

    test('unsupported Kong fields and bad values', async () => {
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], http_proxy_host: 'proxy.example' })), names('http_proxy_host is not supported'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], https_proxy_port: 3128 })), names('https_proxy_port is not supported'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], san_dirname_matcher: ['CN'] })), names('san_dirname_matcher'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], revocation_check_mode: 'OCSP' })), names('revocation_check_mode'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], consumer_by: ['id'] })), names('consumer_by'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], authenticated_group_by: 'OU' })), names('authenticated_group_by'));
      // Kong's defaults for the download-only fields load fine (decK dumps write them).
      const gw2 = await startGateway(withConfig({ ca_certificates: [CLIENT_CA], cert_cache_ttl: 60000, http_timeout: 30000, ssl_verify: true, send_ca_dn: false, san_dirname_matcher: [], http_proxy_host: null }));
      await gw2.close();
    });

    test('crls: PEM CRLs signed by one of ca_certificates', async () => {
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], crls: ['garbage'] })), names('crls[0]'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CA], crls: [CRL] })), names('crls[0]: not signed by any of ca_certificates'));
    });

    test('consumers: anonymous, default_consumer, credential CA references, duplicate mappings', async () => {
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], anonymous: 'nobody' })), names('anonymous'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA], default_consumer: 'nobody' })), names('default_consumer'));
      const cons = (cred: object) => [{ username: 'u1', mtls_auth_credentials: [cred] }];
      await assert.rejects(
        startGateway(withConfig({ ca_certificates: [CLIENT_CA] }, cons({ subject_name: 'x', ca_certificate: '0b9f2b52-5a1c-4cd1-9c4e-8a5b5f8f6c11' }))),
        names('mtls_auth_credentials/0'),
      );
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA] }, cons({ subject_name: 'x', ca_certificate: 'nope' }))), names('ca_certificate'));
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA] }, cons({ ca_certificate: CLIENT_CA }))), names('subject_name'));
      const dup = [
        { username: 'u1', mtls_auth_credentials: [{ subject_name: 'same' }] },
        { username: 'u2', mtls_auth_credentials: [{ subject_name: 'same' }] },
      ];
      await assert.rejects(startGateway(withConfig({ ca_certificates: [CLIENT_CA] }, dup)), names("subject_name 'same'"));
      // A fingerprint reference works like the PEM.
      const gw2 = await startGateway(withConfig({ ca_certificates: [CLIENT_CA] }, cons({ subject_name: 'x', ca_certificate: colonFingerprint(CLIENT_CA).replace(/:/g, '').toLowerCase() })));
      await gw2.close();
    });
  });
});
