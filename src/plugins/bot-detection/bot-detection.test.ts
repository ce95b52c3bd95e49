/**
 * bot-detection through a real gateway and upstream: Kong's built-in list,
 * the scanners Palisade adds, allow/deny regexes, the missing User-Agent
 * policy, several User-Agent headers, and a hostile User-Agent that must not
 * cost the gateway more than a moment.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

let upstream: TestUpstream;
let gw: TestGateway;

const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'bot-detection', config }] });

before(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    services: [
      {
        name: 's',
        url: upstream.url,
        routes: [
          route('default', {}),
          route('lists', { allow: ['Googlebot', 'friendly-monitor'], deny: ['^MyEvilClient', '(?i)badagent', 'friendly'] }),
          route('strict', { missing_user_agent: 'deny' }),
        ],
      },
    ],
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

async function as(path: string, userAgent: string | undefined) {
  const seen = upstream.requests.length;
  // node:http adds no User-Agent of its own: absent means absent.
  const res = await request(gw.port, path, { headers: userAgent === undefined ? {} : { 'user-agent': userAgent } });
  return { status: res.status, message: res.status >= 400 ? res.json().message : undefined, reached: upstream.requests.length > seen };
}

const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'curl/8.5.0',
  'python-requests/2.31.0',
  'okhttp/4.12.0',
  'Mozilla/5.0 (Linux; Android 13; CUBOT KingKong 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36',
];

/** Kong's list (crawlers, Kong's "downloaders") and the scanners Palisade adds. */
const BOTS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
  'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
  'Twitterbot/1.0',
  'Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)',
  'Scrapy/2.11.0 (+https://scrapy.org)',
  'Python-urllib/3.11',
  'Apache-HttpClient/4.5.14 (Java/17.0.8)',
  'sqlmap/1.7.2#stable (https://sqlmap.org)',
  'Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:map_codes)',
  'Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)',
  'masscan/1.3 (https://github.com/robertdavidgraham/masscan)',
  'Mozilla/5.0 zgrab/0.x',
  'Nuclei - Open-source project (github.com/projectdiscovery/nuclei)',
  'WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)',
  'DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)',
  'gobuster/3.6',
  'Fuzz Faster U Fool v2.1.0-dev',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36 acunetix-wvs-test-for-some-inexistent-file',
  'Mozilla/5.0 (compatible; Nessus)',
  'OpenVAS-VT 22.4',
  'w3af.org',
  'Havij',
  'Arachni/v1.6.1.3',
  'Mozilla/5.0 (compatible; Netsparker)',
  'feroxbuster/2.10.1',
  'Wfuzz/3.1.0',
];

describe('bot-detection', () => {
  test('browsers and ordinary HTTP clients pass', async () => {
    for (const ua of BROWSERS) {
      const r = await as('/default', ua);
      assert.equal(r.status, 200, ua);
      assert.ok(r.reached);
    }
  });

  test("bots, crawlers and scanners get Kong's 403 Forbidden and never reach the upstream", async () => {
    for (const ua of BOTS) {
      const r = await as('/default', ua);
      assert.equal(r.status, 403, ua);
      assert.equal(r.message, 'Forbidden');
      assert.equal(r.reached, false, ua);
    }
    // The answer is the same the second time (the verdict cache).
    assert.equal((await as('/default', BOTS[0])).status, 403);
  });

  test('allow wins over deny and over the built-in rules; deny adds to them; (?i) is honoured', async () => {
    assert.equal((await as('/lists', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)')).status, 200);
    assert.equal((await as('/lists', 'friendly-monitor/1.0')).status, 200, 'in allow and in deny: allow wins');
    assert.equal((await as('/lists', 'friendly/1.0')).status, 403);
    assert.equal((await as('/lists', 'MyEvilClient/2.0')).status, 403);
    assert.equal((await as('/lists', 'NotMyEvilClient/2.0')).status, 200, 'the regex is anchored where the user anchors it');
    assert.equal((await as('/lists', 'some BadAgent here')).status, 403);
    assert.equal((await as('/lists', 'bingbot/2.0')).status, 403, 'the built-in rules still apply');
    assert.equal((await as('/lists', BROWSERS[0])).status, 200);
  });

  test('a missing or empty User-Agent passes by default (Kong); missing_user_agent: deny refuses it', async () => {
    assert.equal((await as('/default', undefined)).status, 200);
    assert.equal((await as('/default', '')).status, 200);
    for (const ua of [undefined, '', '   ']) {
      const r = await as('/strict', ua);
      assert.equal(r.status, 403, JSON.stringify(ua));
      assert.equal(r.message, 'Forbidden');
      assert.equal(r.reached, false);
    }
    assert.equal((await as('/strict', BROWSERS[0])).status, 200);
    assert.equal((await as('/strict', BOTS[0])).status, 403);
  });

  test("several User-Agent headers: Kong's 400", async () => {
    const head = await new Promise<string>((ok, fail) => {
      const s = connect({ port: gw.port, host: '127.0.0.1' });
      let data = '';
      s.setEncoding('utf8').on('data', (d: string) => (data += d)).on('end', () => ok(data)).on('error', fail);
      s.write(`GET /default HTTP/1.1\r\nHost: x\r\nUser-Agent: ${BROWSERS[0]}\r\nUser-Agent: curl/8.5.0\r\nConnection: close\r\n\r\n`);
    });
    assert.match(head, /^HTTP\/1\.1 400 /);
    assert.match(head, /"message":"Only one User-Agent header allowed"/);
  });

  test('a hostile User-Agent is judged quickly (no catastrophic backtracking)', async () => {
    // Kong's original rules backtrack cubically on such strings: a 1,000-character one took a second.
    for (const ua of ['a'.repeat(12_000), 'crawl'.repeat(2400), 'Google'.repeat(2000), 'a '.repeat(6000)]) {
      const t0 = Date.now();
      const r = await as('/default', ua);
      assert.ok(r.status === 200 || r.status === 403, String(r.status));
      assert.ok(Date.now() - t0 < 3000, `${ua.slice(0, 10)}… took ${Date.now() - t0} ms`);
    }
    assert.equal((await as('/default', 'sqlmap/1.7 ' + 'x'.repeat(12_000))).status, 403, 'a long bot User-Agent is still a bot');
  });

  test('padding does not hide a bot: scanners anywhere in the value, Kong\'s list at either end', async () => {
    const pad = 'Mozilla/5.0 (X11; Linux x86_64) ' + 'x'.repeat(2000);
    const cases: [string, string][] = [
      ['scanner after padding', `${pad} sqlmap/1.7.2#stable (https://sqlmap.org)`],
      ['scanner in the middle', `${pad} Nikto/2.5.0 ${pad}`],
      ['scanner before padding', `Nuclei - Open-source project (github.com/projectdiscovery/nuclei) ${pad}`],
      ["Kong's list after padding", `${pad} Googlebot/2.1 (+http://www.google.com/bot.html)`],
      ["Kong's list before padding", `Scrapy/2.11 (+https://scrapy.org) ${pad}`],
    ];
    for (const [name, ua] of cases) assert.equal((await as('/default', ua)).status, 403, name);
    assert.equal((await as('/default', `${pad} Firefox/126.0`)).status, 200, 'a long browser User-Agent passes');
  });

  test('invalid regexes are refused at load, naming the field', async () => {
    const withConfig = (c: object) => ({ services: [{ name: 's', url: upstream.url, routes: [route('r', c)] }] });
    const names = (re: RegExp) => (err: unknown) => {
      assert.match(String((err as Error).message), re);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ deny: ['ok', '(unclosed'] })), names(/deny\[1\]: not a valid regular expression/));
    await assert.rejects(startGateway(withConfig({ allow: ['[z-a]'] })), names(/allow\[0\]: not a valid regular expression/));
    await assert.rejects(startGateway(withConfig({ missing_user_agent: 'maybe' })), names(/missing_user_agent/));
  });
});
