/**
 * rate-limiting, policy local, `palisade start --workers 2`: the workers
 * share one count (quota leases from the primary) and never admit more than
 * the limit together — nor fewer, when one worker sits on unused tokens.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePorts, pidOfConnection, request, sleep, spawnPalisade, TempDir, type PalisadeProcess } from '../../../test/helpers/process.ts';

const dir = new TempDir();
let p: PalisadeProcess;
let port: number;
let upstream: Server;
let upstreamPort: number;
/** What the upstream saw: arrival time and the gateway's source port (tells which worker proxied). */
const seen: { url: string; at: number; remotePort: number; ip: string }[] = [];
let ipSeq = 1;
const newIp = () => `10.8.0.${ipSeq++}`;

before(async () => {
  upstream = createServer((req, res) => {
    seen.push({ url: req.url!, at: Date.now(), remotePort: req.socket.remotePort!, ip: String(req.headers['x-forwarded-for'] ?? '') });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(String(req.socket.remotePort)));
  });
  await new Promise<void>((ok) => upstream.listen(0, '127.0.0.1', () => ok()));
  upstreamPort = (upstream.address() as AddressInfo).port;
  let admin: number;
  [port, admin] = (await freePorts(2)) as [number, number];
  const rl = (config: object) => [{ name: 'rate-limiting', config: { limit_by: 'ip', ...config } }];
  const file = dir.write(
    'rl.json',
    JSON.stringify({
      _format_version: '3.0',
      server: { access_log: 'off', watch: false, trusted_ips: ['127.0.0.1'] },
      services: [
        {
          name: 's',
          url: `http://127.0.0.1:${upstreamPort}`,
          routes: [
            { name: 'probe', paths: ['/probe'] },
            { name: 'fixed', paths: ['/fixed'], plugins: rl({ minute: 40, algorithm: 'fixed' }) },
            { name: 'sliding', paths: ['/sliding'], plugins: rl({ minute: 40 }) },
            { name: 'recall', paths: ['/recall'], plugins: rl({ minute: 40, algorithm: 'fixed' }) },
            { name: 'second', paths: ['/second'], plugins: rl({ second: 15, algorithm: 'fixed' }) },
          ],
        },
      ],
    }),
  );
  p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', '2']);
  await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
});

after(async () => {
  await p?.kill();
  await new Promise<void>((ok) => {
    upstream?.closeAllConnections();
    upstream ? upstream.close(() => ok()) : ok();
  });
  dir.remove();
});

const workerPids = () => p.logs().filter((l) => l.msg === 'worker started').map((l) => l.pid as number);

/** `n` requests, `conc` at a time, each on a new connection (spread over the workers). */
async function hammer(path: string, ip: string, n: number, conc = 20) {
  let sent = 0;
  const statuses: number[] = [];
  const servedBy: number[] = [];
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (sent < n) {
        sent++;
        const r = await request(port, path, { headers: { 'x-forwarded-for': ip } });
        statuses.push(r.status);
        if (r.status === 200) servedBy.push(pidOfConnection(Number(r.body), upstreamPort, workerPids()) ?? -1);
      }
    }),
  );
  return { ok: statuses.filter((s) => s === 200).length, refused: statuses.filter((s) => s === 429).length, other: statuses.filter((s) => s !== 200 && s !== 429), servedBy };
}

/** Keep clear of a minute boundary: these tests assert a per-minute count exactly. */
async function clearOfMinuteEdge(): Promise<void> {
  const inMinute = Date.now() % 60_000;
  if (inMinute > 50_000) await sleep(60_000 - inMinute + 50);
}

describe('policy local across 2 workers', { skip: existsSync('/proc/net/tcp') ? false : 'needs Linux /proc to tell workers apart' }, () => {
  test('fixed window: exactly the limit in total, admitted by both workers', async () => {
    await clearOfMinuteEdge();
    const r = await hammer('/fixed', newIp(), 200);
    assert.deepEqual(r.other, []);
    assert.equal(r.ok, 40, `admitted ${r.ok}${p.output}`);
    assert.equal(r.refused, 160);
    assert.equal(new Set(r.servedBy).size, 2, `both workers admitted requests: ${JSON.stringify(r.servedBy)}`);
    assert.ok(!r.servedBy.includes(-1));
  });

  test('sliding window (a new client): exactly the limit in total', async () => {
    await clearOfMinuteEdge();
    const r = await hammer('/sliding', newIp(), 150);
    assert.equal(r.ok, 40, `admitted ${r.ok}`);
    assert.equal(new Set(r.servedBy).size, 2);
  });

  test('a worker sitting on unused tokens gives them back: the other worker still gets the whole rest of the limit', async () => {
    await clearOfMinuteEdge();
    // Two kept-alive connections, each held by a different worker.
    const agents: Agent[] = [];
    const owners: number[] = [];
    for (let i = 0; i < 20 && agents.length < 2; i++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const r = await request(port, '/probe', { agent });
      const pid = pidOfConnection(Number(r.body), upstreamPort, workerPids());
      if (pid !== null && !owners.includes(pid)) {
        agents.push(agent);
        owners.push(pid);
      } else agent.destroy();
    }
    assert.equal(agents.length, 2, 'found connections held by both workers');
    const ip = newIp();
    const via = async (agent: Agent, n: number) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if ((await request(port, '/recall', { agent, headers: { 'x-forwarded-for': ip } })).status === 200) ok++;
      return ok;
    };
    // The first worker spends a few requests; its leases grew (1, 2, 4 tokens): it holds 3 unused.
    assert.equal(await via(agents[0]!, 4), 4);
    // The other worker must still get every remaining token: 40 − 4.
    assert.equal(await via(agents[1]!, 60), 36);
    assert.equal(await via(agents[0]!, 3), 0, 'and nothing is left for the first one');
    for (const a of agents) a.destroy();
  });

  test('per-second windows over several seconds: never more than the limit in any second', async () => {
    const ip = newIp();
    const start = Date.now();
    const from = seen.length;
    const sentAt = new Map<string, number>();
    let sent = 0;
    // The gateway decided between the client's send and the upstream's arrival: when both fall
    // in the same second, that second is the request's window for sure.
    const windows = () => {
      const perSecond = new Map<number, number>();
      let certain = 0;
      for (const s of seen.slice(from)) {
        const id = /id=([^&]+)/.exec(s.url)?.[1];
        const t0 = id !== undefined ? sentAt.get(id) : undefined;
        if (t0 === undefined || Math.floor(t0 / 1000) !== Math.floor(s.at / 1000)) continue;
        certain++;
        const sec = Math.floor(s.at / 1000);
        perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1);
      }
      return { perSecond, certain };
    };
    // At least 3.2 s; longer (up to 12 s) on a loaded machine, where slow answers straddle more second boundaries.
    const more = () => Date.now() - start < 3200 || (Date.now() - start < 12_000 && windows().certain <= 15);
    await Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        while (more()) {
          const id = `${c}-${sent++}`;
          sentAt.set(id, Date.now());
          await request(port, `/second?id=${id}`, { headers: { 'x-forwarded-for': ip } });
        }
      }),
    );
    const { perSecond, certain } = windows();
    assert.ok(certain > 15, `enough requests with a known window (${certain})`);
    for (const [sec, n] of perSecond) assert.ok(n <= 15, `second ${sec}: ${n} admitted > 15`);
    assert.ok(perSecond.size >= 2, 'several seconds observed');
  });
});
