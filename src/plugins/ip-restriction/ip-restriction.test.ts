/**
 * ip-restriction through a real gateway and upstream. The client IP is what
 * the gateway believes: the test client connects from 127.0.0.1, and the
 * gateway that trusts 127.0.0.1 (server.trusted_ips) takes the client from
 * X-Forwarded-For — which is how these tests play clients from anywhere, IPv6
 * included. A second gateway trusts nobody: a forged X-Forwarded-For from its
 * (untrusted) peer must change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

let upstream: TestUpstream;
let trusting: TestGateway;
let untrusting: TestGateway;

const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'ip-restriction', config }] });
const ROUTES = [
  route('allow4', { allow: ['10.1.0.0/16', '192.0.2.7'] }),
  route('v6', { allow: ['2001:db8:abcd::/48'], deny: ['2001:db8:abcd:66::/64'] }),
  route('mapped', { deny: ['198.51.100.0/24', '::ffff:203.0.113.0/120'] }),
  route('custom', { deny: ['10.9.9.9'], status: 451, message: 'Go away' }),
  route('deny-local', { deny: ['127.0.0.1'] }),
];
const config = (server: object) => ({ server, services: [{ name: 's', url: upstream.url, routes: ROUTES }] });

/** A request from `client` (sent as X-Forwarded-For; believed by the trusting gateway only). */
async function from(gw: TestGateway, path: string, client?: string) {
  const seen = upstream.requests.length;
  const res = await request(gw.port, path, { headers: client === undefined ? {} : { 'x-forwarded-for': client } });
  return { status: res.status, headers: res.headers, body: res.body, message: res.status >= 400 ? res.json().message : undefined, reached: upstream.requests.length > seen };
}

before(async () => {
  upstream = await startUpstream();
  trusting = await startGateway(config({ trusted_ips: ['127.0.0.1'] }));
  untrusting = await startGateway(config({}));
});

after(async () => {
  await trusting?.close();
  await untrusting?.close();
  await upstream?.close();
});

describe('ip-restriction', () => {
  test('allow: addresses and IPv4 ranges pass, everyone else gets Kong\'s 403 and never reaches the upstream', async () => {
    for (const ip of ['10.1.0.1', '10.1.255.254', '192.0.2.7']) {
      const r = await from(trusting, '/allow4', ip);
      assert.equal(r.status, 200, ip);
      assert.ok(r.reached);
    }
    for (const ip of ['10.2.0.1', '192.0.2.8', '2001:db8::1']) {
      const r = await from(trusting, '/allow4', ip);
      assert.equal(r.status, 403, ip);
      assert.equal(r.message, `IP address not allowed: ${ip}`);
      assert.match(String(r.headers['content-type']), /application\/problem\+json/);
      assert.equal(r.reached, false, `${ip} must not reach the upstream`);
    }
  });

  test('IPv6 CIDRs, any spelling of the address; deny is checked before allow', async () => {
    assert.equal((await from(trusting, '/v6', '2001:db8:abcd:1::5')).status, 200);
    assert.equal((await from(trusting, '/v6', '2001:DB8:ABCD:0:0:0:0:9')).status, 200, 'upper case, uncompressed');
    assert.equal((await from(trusting, '/v6', '2001:db8:abcd:ffff:ffff:ffff:ffff:ffff')).status, 200, 'last address of the /48');
    assert.equal((await from(trusting, '/v6', '2001:db8:abce::1')).status, 403, 'outside the /48');
    const denied = await from(trusting, '/v6', '2001:db8:abcd:66::1');
    assert.equal(denied.status, 403, 'in allow and in deny: deny wins');
    assert.equal(denied.message, 'IP address not allowed: 2001:db8:abcd:66::1');
    assert.equal((await from(trusting, '/v6', '10.1.0.1')).status, 403, 'an IPv4 client is not in an IPv6 allow list');
  });

  test('IPv4-mapped IPv6 is the same client as its IPv4 address, both ways', async () => {
    // An IPv4 rule catches the mapped spelling …
    const mapped = await from(trusting, '/mapped', '::ffff:198.51.100.9');
    assert.equal(mapped.status, 403);
    assert.equal(mapped.message, 'IP address not allowed: 198.51.100.9', 'the client IP is normalised to IPv4');
    assert.equal((await from(trusting, '/mapped', '198.51.100.200')).status, 403);
    // … and a rule written as ::ffff:a.b.c.d/120 catches the plain IPv4 address.
    assert.equal((await from(trusting, '/mapped', '203.0.113.5')).status, 403);
    assert.equal((await from(trusting, '/mapped', '::ffff:203.0.113.250')).status, 403);
    assert.equal((await from(trusting, '/mapped', '203.0.114.5')).status, 200);
    assert.equal((await from(trusting, '/mapped', '::ffff:198.51.101.1')).status, 200);
  });

  test('custom status and message', async () => {
    const r = await from(trusting, '/custom', '10.9.9.9');
    assert.equal(r.status, 451);
    assert.equal(r.message, 'Go away');
    assert.equal(r.reached, false);
    assert.equal((await from(trusting, '/custom', '10.9.9.10')).status, 200);
  });

  test('X-Forwarded-For from a trusted peer: the client is the first untrusted hop from the right', async () => {
    // A client behind the trusted proxy prepends an allowed address: the proxy appended the real one.
    const spoof = await from(trusting, '/allow4', '10.1.2.3, 10.2.0.1');
    assert.equal(spoof.status, 403);
    assert.equal(spoof.message, 'IP address not allowed: 10.2.0.1');
    assert.equal((await from(trusting, '/allow4', '10.2.0.1, 10.1.2.3')).status, 200);
    // Trusted hops are skipped: 127.0.0.1 is a trusted proxy in front of 10.1.2.3.
    assert.equal((await from(trusting, '/allow4', '10.1.2.3, 127.0.0.1')).status, 200);
  });

  test('a forged X-Forwarded-For from an untrusted peer changes nothing', async () => {
    // The peer (127.0.0.1) is not in any allow list: claiming an allowed address does not help …
    for (const forged of ['10.1.2.3', '192.0.2.7', '10.1.2.3, 10.1.2.4']) {
      const r = await from(untrusting, '/allow4', forged);
      assert.equal(r.status, 403, forged);
      assert.equal(r.message, 'IP address not allowed: 127.0.0.1');
      assert.equal(r.reached, false);
    }
    // … and claiming another address does not escape a deny list.
    const escape = await from(untrusting, '/deny-local', '10.1.2.3');
    assert.equal(escape.status, 403);
    assert.equal(escape.message, 'IP address not allowed: 127.0.0.1');
    assert.equal((await from(untrusting, '/custom', '10.9.9.9')).status, 200, 'nor can it get someone else denied');
    // The trusting gateway believes its trusted peer, as configured.
    assert.equal((await from(trusting, '/deny-local', '10.1.2.3')).status, 200);
    assert.equal((await from(trusting, '/deny-local')).status, 403, 'no header: the peer itself');
  });

  test('invalid configs are refused at load, naming the field', async () => {
    const withConfig = (c: object) => ({ services: [{ name: 's', url: upstream.url, routes: [route('r', c)] }] });
    const names = (re: RegExp) => (err: unknown) => {
      const e = err as { message?: string };
      assert.match(String(e.message), re);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ allow: ['10.0.0.0/8', '10.0.0.0/33'] })), names(/allow\[1\]: '10\.0\.0\.0\/33' has an invalid prefix length \(0 to 32\)/));
    await assert.rejects(startGateway(withConfig({ deny: ['2001:db8::/129'] })), names(/deny\[0\]: '2001:db8::\/129' has an invalid prefix length \(0 to 128\)/));
    await assert.rejects(startGateway(withConfig({ deny: ['10.0.0.300'] })), names(/deny\[0\]: '10\.0\.0\.300' is not an IP address or CIDR range/));
    await assert.rejects(startGateway(withConfig({ allow: ['localhost'] })), names(/allow\[0\]: 'localhost' is not an IP address or CIDR range/));
    await assert.rejects(startGateway(withConfig({ allow: ['10.0.0.0/8/8'] })), names(/allow\[0\]/));
    await assert.rejects(startGateway(withConfig({ allow: ['10.0.0.0/ 8'] })), names(/allow\[0\]/));
    await assert.rejects(startGateway(withConfig({ allow: [], deny: [] })), names(/at least one of these fields must be non-empty: 'config.allow', 'config.deny'/));
    await assert.rejects(startGateway(withConfig({ allow: ['10.0.0.1'], status: 99 })), names(/status/));
    await assert.rejects(startGateway(withConfig({ allow: ['10.0.0.1'], whitelist: ['10.0.0.2'] })), names(/whitelist/));
  });
});
