/**
 * Load balancing over upstream targets, black-box: each target is a real
 * upstream that answers with its own name, so the client sees who served it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

interface Named extends TestUpstream {
  name: string;
  /** Requests to /hold wait until this is called. */
  release(): void;
  /** How many /hold requests are waiting. */
  holding(): number;
}

async function named(name: string): Promise<Named> {
  let waiting: (() => void)[] = [];
  const u = await startUpstream((req, res) => {
    if (req.url?.endsWith('/hold')) waiting.push(() => res.end(name));
    else res.end(name);
  });
  return Object.assign(u, {
    name,
    holding: () => waiting.length,
    release() {
      const w = waiting;
      waiting = [];
      for (const fn of w) fn();
    },
  });
}

async function who(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await request(url, { headers });
  const text = await r.body.text();
  assert.equal(r.statusCode, 200, text);
  return text;
}

function count(list: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

describe('balancing', () => {
  let a: Named, b: Named, c: Named;
  let gw: TestGateway;
  const t = (u: Named, weight = 100) => ({ target: `127.0.0.1:${u.port}`, weight });

  before(async () => {
    [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
    const hashed = (name: string, extra: object) => ({ name, algorithm: 'consistent-hashing', targets: [t(a), t(b), t(c)], ...extra });
    gw = await startGateway({
      server: { trusted_ips: ['127.0.0.1'] },
      upstreams: [
        { name: 'wrr', targets: [t(a, 300), t(b, 100)] },
        { name: 'zero', targets: [t(a), t(b, 0), t(c)] },
        { name: 'leastconn', algorithm: 'least-connections', targets: [t(a), t(b)] },
        hashed('h-header', { hash_on: 'header', hash_on_header: 'X-User' }),
        hashed('h-ip', { hash_on: 'ip' }),
        hashed('h-query', { hash_on: 'query_arg', hash_on_query_arg: 'user' }),
        hashed('h-path', { hash_on: 'path' }),
        hashed('h-cookie', { hash_on: 'cookie', hash_on_cookie: 'sid' }),
        hashed('h-proto', { hash_on: 'header', hash_on_header: '__proto__' }),
        hashed('h-constructor', { hash_on: 'header', hash_on_header: 'constructor' }),
        { name: 'own-names', targets: [{ target: `localhost:${a.port}` }] },
        { name: 'fixed-name', host_header: 'api.internal', targets: [t(a)] },
        { name: 'retarget', targets: [{ target: 'localhost:1' }, t(b)] }, // the first is refused: a retry goes to b
      ],
      services: ['wrr', 'zero', 'leastconn', 'h-header', 'h-ip', 'h-query', 'h-path', 'h-cookie', 'h-proto', 'h-constructor', 'own-names', 'fixed-name', 'retarget'].map((u) => ({
        name: u,
        host: u,
        routes: [{ name: u, paths: [`/${u}`] }],
      })),
    });
  });

  after(async () => {
    await gw?.close();
    for (const u of [a, b, c]) await u?.close();
  });

  test("an upstream's targets get their own name in Host (Kong), or its host_header; a retry names the target it goes to", async () => {
    await who(`${gw.url}/own-names`);
    assert.equal(a.requests.at(-1)!.headers.host, `localhost:${a.port}`, 'not the upstream entity\'s name');
    await who(`${gw.url}/fixed-name`);
    assert.equal(a.requests.at(-1)!.headers.host, 'api.internal');
    const before = b.requests.length;
    for (let i = 0; i < 2; i++) assert.equal(await who(`${gw.url}/retarget`), 'b');
    assert.deepEqual(b.requests.slice(before).map((r) => r.headers.host), [`127.0.0.1:${b.port}`, `127.0.0.1:${b.port}`]);
  });

  test('hash_on_header __proto__ (a header node never delivers): requests are balanced as without the header, not failed', async () => {
    const seq: string[] = [];
    for (let i = 0; i < 6; i++) seq.push(await who(gw.url + '/h-proto'));
    assert.equal(seq.length, 6);
    for (const name of seq) assert.ok(['a', 'b', 'c'].includes(name), name);
    assert.deepEqual(count(seq), { a: 2, b: 2, c: 2 }, 'no hash key: weighted round-robin over the three equal targets');
  });

  test('hash_on_header constructor (a name every object inherits): without the header, balanced as without a key; with it, one target', async () => {
    const seq: string[] = [];
    for (let i = 0; i < 6; i++) seq.push(await who(gw.url + '/h-constructor'));
    assert.deepEqual(count(seq), { a: 2, b: 2, c: 2 }, 'no hash key: weighted round-robin over the three equal targets');
    const keyed = new Set<string>();
    for (let i = 0; i < 6; i++) keyed.add(await who(gw.url + '/h-constructor', { constructor: 'user-7' }));
    assert.equal(keyed.size, 1, 'the same key always reaches the same target');
  });

  test('round-robin respects weights exactly (smooth WRR 3:1)', async () => {
    const seq: string[] = [];
    for (let i = 0; i < 400; i++) seq.push(await who(gw.url + '/wrr'));
    assert.deepEqual(count(seq), { a: 300, b: 100 });
    // Smooth: every window of four has three a and one b (never b twice in a row).
    for (let i = 0; i + 4 <= seq.length; i += 4) assert.deepEqual(count(seq.slice(i, i + 4)), { a: 3, b: 1 }, `window at ${i}`);
    assert.ok(!seq.join('').includes('bb'));
  });

  test('a target with weight 0 is never used', async () => {
    const seq: string[] = [];
    for (let i = 0; i < 100; i++) seq.push(await who(gw.url + '/zero'));
    assert.deepEqual(count(seq), { a: 50, c: 50 });
  });

  test('least-connections prefers the idle target while the other has slow requests in flight', async () => {
    const held = request(gw.url + '/leastconn/hold').then((r) => r.body.text());
    // Wait until one target holds it.
    let busy: Named | undefined;
    for (let i = 0; i < 200 && !busy; i++) {
      busy = [a, b].find((u) => u.holding() > 0);
      if (!busy) await delay(10);
    }
    assert.ok(busy, 'the held request never reached a target');
    const idle = busy === a ? b : a;
    const seq: string[] = [];
    for (let i = 0; i < 20; i++) seq.push(await who(gw.url + '/leastconn/fast'));
    assert.deepEqual(count(seq), { [idle.name]: 20 });
    busy.release();
    assert.equal(await held, busy.name);
    // Once both are idle again, both are used.
    const after: string[] = [];
    const inflight: Promise<string>[] = [];
    for (let i = 0; i < 2; i++) inflight.push(request(gw.url + '/leastconn/hold').then((r) => r.body.text()));
    for (let i = 0; i < 200 && a.holding() + b.holding() < 2; i++) await delay(10);
    a.release();
    b.release();
    after.push(...(await Promise.all(inflight)));
    assert.deepEqual(count(after), { a: 1, b: 1 });
  });

  describe('consistent hashing', () => {
    /** Sends each key `times` times; returns key → targets that served it. */
    async function mapping(keys: string[], send: (key: string) => Promise<string>, times = 3): Promise<Map<string, Set<string>>> {
      const out = new Map<string, Set<string>>();
      for (const k of keys) {
        const s = new Set<string>();
        for (let i = 0; i < times; i++) s.add(await send(k));
        out.set(k, s);
      }
      return out;
    }

    function assertStickyAndSpread(m: Map<string, Set<string>>): void {
      for (const [k, s] of m) assert.equal(s.size, 1, `key ${k} went to ${[...s]}`);
      const used = new Set([...m.values()].map((s) => [...s][0]));
      assert.equal(used.size, 3, `only ${[...used]} used`);
    }

    const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);

    test('by header', async () => {
      assertStickyAndSpread(await mapping(keys, (k) => who(gw.url + '/h-header', { 'x-user': k })));
    });

    test('by client ip (X-Forwarded-For from a trusted peer)', async () => {
      const ips = keys.map((_, i) => `203.0.113.${i + 1}`);
      assertStickyAndSpread(await mapping(ips, (ip) => who(gw.url + '/h-ip', { 'x-forwarded-for': ip })));
    });

    test('by query argument', async () => {
      assertStickyAndSpread(await mapping(keys, (k) => who(gw.url + `/h-query?x=${Math.random()}&user=${k}`)));
    });

    test('by path', async () => {
      assertStickyAndSpread(await mapping(keys, (k) => who(gw.url + `/h-path/${k}?r=${Math.random()}`)));
    });

    test('by cookie', async () => {
      assertStickyAndSpread(await mapping(keys, (k) => who(gw.url + '/h-cookie', { cookie: `theme=dark; sid=${k}; x=${Math.random()}` })));
    });

    test('shares follow the weights', async () => {
      const g = await startGateway({
        upstreams: [{ name: 'wh', algorithm: 'consistent-hashing', hash_on: 'header', hash_on_header: 'x-user', targets: [t(a, 300), t(b, 100)] }],
        services: [{ name: 'wh', host: 'wh', routes: [{ name: 'wh', paths: ['/wh'] }] }],
      });
      try {
        const seen: string[] = [];
        for (let i = 0; i < 400; i++) seen.push(await who(g.url + '/wh', { 'x-user': `member-${i}` }));
        const share = count(seen).a! / seen.length;
        assert.ok(share > 0.65 && share < 0.85, `a served ${(share * 100).toFixed(0)}% of the keys, expected about 75%`);
      } finally {
        await g.close();
      }
    });

    test('removing a target on reload only remaps the keys of that target', async () => {
      const ring = (targets: object[]) => ({
        upstreams: [{ name: 'ring', algorithm: 'consistent-hashing', hash_on: 'header', hash_on_header: 'x-user', targets }],
        services: [{ name: 'ring', host: 'ring', routes: [{ name: 'ring', paths: ['/ring'] }] }],
      });
      const g = await startGateway(ring([t(a), t(b), t(c)]));
      try {
        const many = Array.from({ length: 200 }, (_, i) => `k${i}`);
        const before = new Map<string, string>();
        for (const k of many) before.set(k, await who(g.url + '/ring', { 'x-user': k }));
        const onC = many.filter((k) => before.get(k) === 'c');
        assert.ok(onC.length > 20 && onC.length < 120, `c had ${onC.length} keys`);
        await g.reload(ring([t(a), t(b)]));
        let kept = 0;
        let others = 0;
        for (const k of many) {
          const now = await who(g.url + '/ring', { 'x-user': k });
          assert.notEqual(now, 'c');
          if (before.get(k) !== 'c') {
            others++;
            if (now === before.get(k)) kept++;
          }
        }
        assert.ok(kept / others >= 0.95, `only ${kept}/${others} keys of the remaining targets kept their target`);
        // Adding it back moves keys only onto it: the mapping is the original one again.
        await g.reload(ring([t(a), t(b), t(c)]));
        let same = 0;
        for (const k of many) if ((await who(g.url + '/ring', { 'x-user': k })) === before.get(k)) same++;
        assert.ok(same / many.length >= 0.95, `only ${same}/${many.length} keys back on their original target`);
      } finally {
        await g.close();
      }
    });
  });
});
