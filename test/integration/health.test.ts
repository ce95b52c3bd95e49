/**
 * Health checks, black-box: passive ejection from real traffic, active probes
 * that take a target out and bring it back, and health state across reloads.
 * Each target is a real upstream that answers with its name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

interface Target extends TestUpstream {
  name: string;
  /** Status of normal requests and of /status probes. */
  status: number;
  probeStatus: number;
  /** Probes never answer while true. */
  hang: boolean;
  probes: number;
  maxConcurrentProbes: number;
}

async function target(name: string, status = 200): Promise<Target> {
  let inflightProbes = 0;
  const t = {} as Target;
  const u = await startUpstream((req, res) => {
    if (req.url === '/status') {
      t.probes++;
      inflightProbes++;
      t.maxConcurrentProbes = Math.max(t.maxConcurrentProbes, inflightProbes);
      res.on('close', () => inflightProbes--);
      if (t.hang) return;
      res.statusCode = t.probeStatus;
      res.end(name);
      return;
    }
    res.statusCode = t.status;
    res.end(name);
  });
  return Object.assign(t, u, { name, status, probeStatus: 200, hang: false, probes: 0, maxConcurrentProbes: 0 });
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

async function hit(url: string): Promise<{ status: number; text: string; id: string }> {
  const r = await request(url);
  return { status: r.statusCode, text: await r.body.text(), id: String(r.headers['x-request-id']) };
}

/** Sends requests until `pred` holds for `streak` answers in a row, or fails after `ms`. */
async function until(url: string, pred: (a: { status: number; text: string }) => boolean, ms: number, streak = 6): Promise<number> {
  const t0 = performance.now();
  let run = 0;
  while (performance.now() - t0 < ms) {
    run = pred(await hit(url)) ? run + 1 : 0;
    if (run >= streak) return performance.now() - t0;
    await delay(20);
  }
  assert.fail(`condition not reached within ${ms} ms`);
}

const addr = (t: { port: number }) => `127.0.0.1:${t.port}`;

describe('health checks', () => {
  const open: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const x of open.reverse()) await x.close();
  });

  async function gateway(config: object): Promise<TestGateway> {
    const g = await startGateway(config);
    open.push(g);
    return g;
  }
  async function targets(...specs: [string, number?][]): Promise<Target[]> {
    const list = await Promise.all(specs.map(([n, s]) => target(n, s)));
    open.push(...list);
    return list;
  }

  const one = (name: string, upstream: object, service: object = {}) => ({
    upstreams: [{ name, ...upstream }],
    services: [{ name, host: name, ...service, routes: [{ name, paths: [`/${name}`] }] }],
  });

  describe('passive', () => {
    let bad: Target, good: Target;
    before(async () => {
      [bad, good] = await targets(['bad', 500], ['good', 200]);
    });

    test('http_failures: a target answering 500 is ejected after N failures; then only the healthy one is used', async () => {
      const g = await gateway(
        one('p-http', {
          targets: [{ target: addr(bad) }, { target: addr(good) }],
          healthchecks: { passive: { unhealthy: { http_failures: 3, http_statuses: [500] } } },
        }),
      );
      const before = bad.requests.length;
      const answers: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await hit(g.url + '/p-http');
        answers.push(`${r.status} ${r.text}`);
      }
      assert.equal(bad.requests.length - before, 3, answers.join(', '));
      assert.equal(answers.filter((a) => a === '500 bad').length, 3);
      assert.deepEqual(answers.slice(6), Array(14).fill('200 good'));
    });

    test('tcp_failures: a closed port is ejected; until then GETs are retried on the healthy target', async () => {
      const dead = await closedPort();
      const g = await gateway(
        one('p-tcp', { targets: [{ target: `127.0.0.1:${dead}` }, { target: addr(good) }], healthchecks: { passive: { unhealthy: { tcp_failures: 2 } } } }),
      );
      for (let i = 0; i < 12; i++) assert.equal((await hit(g.url + '/p-tcp')).status, 200);
      const tries = g.accessLog.map((r) => r.tries);
      assert.equal(tries.filter((t) => t === 2).length, 2, String(tries));
      assert.deepEqual(tries.slice(-6), Array(6).fill(1));
    });

    test('all targets unhealthy → 503 "failure to get a peer from the ring-balancer"', async () => {
      const [d1, d2] = [await closedPort(), await closedPort()];
      const g = await gateway(
        one(
          'p-none',
          { targets: [{ target: `127.0.0.1:${d1}` }, { target: `127.0.0.1:${d2}` }], healthchecks: { passive: { unhealthy: { tcp_failures: 1 } } } },
          { retries: 0 },
        ),
      );
      const statuses: number[] = [];
      let last: { status: number; text: string; id: string } | null = null;
      for (let i = 0; i < 4; i++) {
        last = await hit(g.url + '/p-none');
        statuses.push(last.status);
      }
      assert.deepEqual(statuses, [502, 502, 503, 503]);
      const body = JSON.parse(last!.text);
      assert.equal(body.message, 'failure to get a peer from the ring-balancer');
      assert.equal(body.request_id, last!.id);
      assert.equal(g.accessLog.at(-1)!.error, 'PALISADE_ERR_NO_HEALTHY_TARGET');
    });

    test('health state survives a reload', async () => {
      const [b2, g2] = await targets(['bad2', 500], ['good2', 200]);
      const cfg = (extraRoute: boolean) => {
        const c = one('p-reload', {
          targets: [{ target: addr(b2) }, { target: addr(g2) }],
          healthchecks: { passive: { unhealthy: { http_failures: 1, http_statuses: [500] } } },
        });
        if (extraRoute) (c.services[0] as { routes: object[] }).routes.push({ name: 'extra', paths: ['/extra'] });
        return c;
      };
      const g = await gateway(cfg(false));
      for (let i = 0; i < 4; i++) await hit(g.url + '/p-reload');
      assert.equal(b2.requests.length, 1);
      await g.reload(cfg(true));
      assert.equal((await hit(g.url + '/extra')).text, 'good2'); // the new version is live
      for (let i = 0; i < 10; i++) assert.equal((await hit(g.url + '/p-reload')).text, 'good2');
      assert.equal(b2.requests.length, 1);
    });
  });

  describe('active', () => {
    test('probes mark a failing target down and bring it back when it recovers', async () => {
      const [x, y] = await targets(['x'], ['y']);
      const g = await gateway(
        one('a-flip', {
          targets: [{ target: addr(x) }, { target: addr(y) }],
          healthchecks: {
            active: {
              http_path: '/status',
              timeout: 1,
              healthy: { interval: 0.1, successes: 2 },
              unhealthy: { interval: 0.1, http_failures: 2 },
            },
          },
        }),
      );
      const url = g.url + '/a-flip';
      assert.deepEqual(new Set([(await hit(url)).text, (await hit(url)).text]), new Set(['x', 'y']));
      x.probeStatus = 500;
      await until(url, (a) => a.text === 'y', 3000);
      assert.ok(g.logs.some((l) => l.msg === 'target marked unhealthy' && l.target === addr(x)));
      x.probeStatus = 200;
      await until(url, (a) => a.text === 'x', 3000, 1);
      assert.ok(g.logs.some((l) => l.msg === 'target healthy again' && l.target === addr(x)));
      assert.ok(x.probes >= 4 && y.probes >= 1, `probes: x ${x.probes}, y ${y.probes}`); // 2 failures + 2 successes at least
    });

    test('a probe that hangs is not stacked: one probe per target at a time, timeouts counted one by one', async () => {
      const [h, ok] = await targets(['h'], ['ok']);
      h.hang = true;
      const g = await gateway(
        one('a-hang', {
          targets: [{ target: addr(h) }, { target: addr(ok) }],
          healthchecks: {
            active: { http_path: '/status', timeout: 0.4, healthy: { interval: 0.05 }, unhealthy: { interval: 0.05, timeouts: 3 } },
          },
        }),
      );
      const t0 = performance.now();
      await until(g.url + '/a-hang', (a) => a.text === 'ok', 4000);
      const ms = performance.now() - t0;
      assert.equal(h.maxConcurrentProbes, 1, `concurrent probes of a hanging target: ${h.maxConcurrentProbes}`);
      assert.ok(ms >= 3 * 400 - 100, `marked down after ${ms} ms: 3 timeouts of 400 ms cannot happen sooner`);
    });

    test('a reload replaces the checkers (probing does not double) and keeps the state', async () => {
      const [p, q] = await targets(['p'], ['q']);
      p.probeStatus = 500;
      const cfg = (extra: boolean) => {
        const c = one('a-reload', {
          targets: [{ target: addr(p) }, { target: addr(q) }],
          healthchecks: { active: { http_path: '/status', healthy: { interval: 0.1 }, unhealthy: { interval: 0.1, http_failures: 1 } } },
        });
        if (extra) (c.services[0] as { routes: object[] }).routes.push({ name: 'extra2', paths: ['/extra2'] });
        return c;
      };
      const g = await gateway(cfg(false));
      await until(g.url + '/a-reload', (a) => a.text === 'q', 3000);
      const rate = async () => {
        const n0 = q.probes;
        await delay(1000);
        return q.probes - n0;
      };
      const before = await rate();
      await g.reload(cfg(true));
      for (let i = 0; i < 10; i++) assert.equal((await hit(g.url + '/a-reload')).text, 'q');
      const afterReload = await rate();
      assert.ok(before >= 4, `probes/s before: ${before}`);
      assert.ok(afterReload <= before + 3, `probes/s before ${before}, after reload ${afterReload}`);
    });
  });
});
