/**
 * The `palisade` command line as a real process: help, usage errors (exit 2),
 * `config validate`, failed starts (exit 1), the flags > env > file precedence
 * of listen addresses and workers, and the Node.js version guard.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePorts, portAnswers, request, runPalisade, spawnPalisade, TempDir, type PalisadeProcess } from '../helpers/process.ts';

const dir = new TempDir();
after(() => dir.remove());

/** A valid config as JSON (JSON is YAML): one service, two routes. */
function validConfig(server: Record<string, unknown> = {}): string {
  return JSON.stringify({
    _format_version: '3.0',
    server: { access_log: 'off', watch: false, ...server },
    services: [{ name: 'echo', url: 'http://127.0.0.1:9', routes: [{ name: 'a', paths: ['/a'] }, { name: 'b', paths: ['/b'] }] }],
  });
}

// Two mistakes at known places: an unknown field (line 5, column 5) and a number where a path string belongs (line 8, column 17).
const INVALID_YAML = `_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:9
    colour: blue
    routes:
      - name: a
        paths: ["/a", 42]
`;

describe('help', () => {
  test('palisade --help: usage with the commands, exit 0', async () => {
    const r = await runPalisade(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: palisade /m);
    assert.match(r.stdout, /^\s+start\b/m);
    assert.match(r.stdout, /^\s+config\b/m);
  });

  test('palisade start --help: every option of the CLI contract, exit 0', async () => {
    const r = await runPalisade(['start', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: palisade start /m);
    for (const opt of ['--config <file>', '--listen <host:port|off>', '--tls-listen <host:port|off>', '--admin-listen <host:port|off>', '--workers <n>', '--help']) {
      assert.ok(r.stdout.includes(opt), `start --help lacks ${opt}:\n${r.stdout}`);
    }
    for (const env of ['PALISADE_CONFIG', 'PALISADE_LISTEN', 'PALISADE_TLS_LISTEN', 'PALISADE_ADMIN_LISTEN', 'PALISADE_WORKERS']) {
      assert.ok(r.stdout.includes(env), `start --help does not mention ${env}`);
    }
  });

  test('palisade config validate --help: usage with <file> and --json, exit 0', async () => {
    const r = await runPalisade(['config', 'validate', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: palisade config validate \[options\] <file>/m);
    assert.ok(r.stdout.includes('--json'));
  });
});

describe('usage errors exit 2 with a message', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown command', ['bogus'], /unknown command 'bogus'/],
    ['unknown option', ['start', '--bogus'], /unknown option '--bogus'/],
    ['--workers 0', ['start', '--workers', '0'], /--workers.*'0' is invalid/],
    ['--workers not a number', ['start', '--workers', 'many'], /--workers.*'many' is invalid/],
    ['--listen not HOST:PORT', ['start', '--listen', 'localhost'], /--listen.*'localhost' is invalid.*HOST:PORT/],
    ['config validate without a file', ['config', 'validate'], /missing required argument 'file'/],
    ['no command at all', [], /Usage: palisade/],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const r = await runPalisade(args);
      assert.equal(r.code, 2, `exit code of palisade ${args.join(' ')}\n${r.stderr}`);
      assert.match(r.stderr, message);
    });
  }
});

describe('config validate', () => {
  test('a valid file: exit 0 and a summary', async () => {
    const file = dir.write('valid.yaml', validConfig());
    const r = await runPalisade(['config', 'validate', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `${file}: valid (1 services, 2 routes, 0 consumers)`);
    assert.equal(r.stderr, '');
  });

  test('an invalid file: exit 1, every error as FILE:LINE:COLUMN: PATH: MESSAGE on stderr', async () => {
    const file = dir.write('invalid.yaml', INVALID_YAML);
    const r = await runPalisade(['config', 'validate', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1).sort(), [
      `${file}:5:5: /services/0/colour: unknown field 'colour'`,
      `${file}:8:23: /services/0/routes/0/paths/1: must be string`,
    ]);
    assert.match(lines.at(-1)!, /2 errors/);
  });

  test('a missing file: exit 1, a clear message and no line:column', async () => {
    const file = dir.file('does-not-exist.yaml');
    const r = await runPalisade(['config', 'validate', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read the config file .*does-not-exist\.yaml: file not found/);
    assert.doesNotMatch(r.stderr, /:0:0:/);
  });

  test('--json: a machine-readable result on stdout for valid and invalid files', async () => {
    const good = dir.write('valid-json.yaml', validConfig());
    const ok = await runPalisade(['config', 'validate', good, '--json']);
    assert.equal(ok.code, 0);
    assert.deepEqual(JSON.parse(ok.stdout), { valid: true, file: good, services: 1, routes: 2 });

    const bad = dir.write('invalid-json.yaml', INVALID_YAML);
    const ko = await runPalisade(['config', 'validate', bad, '--json']);
    assert.equal(ko.code, 1);
    const out = JSON.parse(ko.stdout);
    assert.equal(out.valid, false);
    assert.equal(out.file, bad);
    assert.deepEqual(
      out.errors.map((e: { path: string; line: number; column: number }) => `${e.line}:${e.column} ${e.path}`).sort(),
      ['5:5 /services/0/colour', '8:23 /services/0/routes/0/paths/1'],
    );
    for (const e of out.errors) assert.equal(typeof e.message, 'string');
  });
});

describe('start fails with exit 1', () => {
  test('an invalid config: the errors and a hint', async () => {
    const file = dir.write('start-invalid.yaml', INVALID_YAML);
    const [port] = await freePorts(1);
    const r = await runPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--admin-listen', 'off', '--workers', '1']);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${file}:5:5: /services/0/colour: unknown field 'colour'`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:8:23: /services/0/routes/0/paths/1: must be string`), r.stderr);
    assert.match(r.stderr, /palisade config validate/);
    assert.equal(await portAnswers(port!), false, 'nothing may listen after a failed start');
  });

  test('a missing config file: a clear message', async () => {
    const r = await runPalisade(['start', '--config', dir.file('nope.yaml'), '--admin-listen', 'off']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read the config file .*nope\.yaml: file not found; pass --config FILE or set PALISADE_CONFIG/);
  });

  describe('port already in use: the message names the address', () => {
    let blocker: Server;
    let busy: number;
    before(async () => {
      blocker = createServer();
      await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', () => ok()));
      busy = (blocker.address() as { port: number }).port;
    });
    after(() => new Promise<void>((ok) => blocker.close(() => ok())));

    for (const workers of ['1', '2']) {
      test(`proxy listener, --workers ${workers}`, async () => {
        const file = dir.write('inuse.yaml', validConfig());
        const [admin] = await freePorts(1);
        const r = await runPalisade(['start', '--config', file, '--listen', `127.0.0.1:${busy}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', workers]);
        assert.equal(r.code, 1, r.stderr);
        assert.ok(r.stderr.includes(`127.0.0.1:${busy} is already in use`), r.stderr);
        assert.equal(await portAnswers(admin!), false, 'the admin listener is not left behind');
      });
    }

    test('admin listener', async () => {
      const file = dir.write('inuse-admin.yaml', validConfig());
      const [proxy] = await freePorts(1);
      const r = await runPalisade(['start', '--config', file, '--listen', `127.0.0.1:${proxy}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${busy}`, '--workers', '1']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`admin listener: .*127\\.0\\.0\\.1:${busy}`));
      assert.equal(await portAnswers(proxy!), false);
    });
  });
});

describe('precedence: flags > environment > file', () => {
  /** Start, wait for 'palisade started', and report which of the candidate ports answer, and /status. */
  async function observe(p: PalisadeProcess, proxyPorts: number[], adminPorts: number[]) {
    try {
      await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
      const proxy = await Promise.all(proxyPorts.map((port) => portAnswers(port)));
      const admin = await Promise.all(adminPorts.map((port) => portAnswers(port)));
      const adminPort = adminPorts[admin.indexOf(true)];
      const status = adminPort ? (await request(adminPort, '/status')).json() : null;
      const winner = proxyPorts[proxy.indexOf(true)];
      const answer = winner ? await request(winner, '/nowhere') : null;
      return { proxy, admin, status, answer };
    } finally {
      assert.equal(await p.stop('SIGTERM'), 0, p.output);
    }
  }

  test('flags win over PALISADE_* and the file', async () => {
    const [fileP, envP, flagP, fileA, envA, flagA] = await freePorts(6);
    const file = dir.write('prec-flags.yaml', validConfig({ listen: `127.0.0.1:${fileP}`, admin_listen: `127.0.0.1:${fileA}`, tls_listen: 'off', workers: 2 }));
    const p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${flagP}`, '--admin-listen', `127.0.0.1:${flagA}`, '--workers', '1'], {
      env: { PALISADE_LISTEN: `127.0.0.1:${envP}`, PALISADE_ADMIN_LISTEN: `127.0.0.1:${envA}`, PALISADE_WORKERS: '2' },
    });
    const o = await observe(p, [fileP!, envP!, flagP!], [fileA!, envA!, flagA!]);
    assert.deepEqual(o.proxy, [false, false, true], 'only the --listen port answers');
    assert.deepEqual(o.admin, [false, false, true], 'only the --admin-listen port answers');
    assert.equal(o.status.workers, 1, '--workers 1 wins over PALISADE_WORKERS=2 and workers: 2');
    assert.equal(o.answer!.status, 404);
    assert.equal(o.answer!.headers['content-type'], 'application/problem+json');
  });

  test('PALISADE_* win over the file (and PALISADE_CONFIG names it)', async () => {
    const [fileP, envP, fileA, envA] = await freePorts(4);
    const file = dir.write('prec-env.yaml', validConfig({ listen: `127.0.0.1:${fileP}`, admin_listen: `127.0.0.1:${fileA}`, tls_listen: 'off', workers: 1 }));
    const p = spawnPalisade(['start'], {
      env: { PALISADE_CONFIG: file, PALISADE_LISTEN: `127.0.0.1:${envP}`, PALISADE_ADMIN_LISTEN: `127.0.0.1:${envA}`, PALISADE_WORKERS: '2' },
    });
    const o = await observe(p, [fileP!, envP!], [fileA!, envA!]);
    assert.deepEqual(o.proxy, [false, true]);
    assert.deepEqual(o.admin, [false, true]);
    assert.equal(o.status.workers, 2, 'PALISADE_WORKERS=2 wins over workers: 1');
    assert.equal(o.answer!.status, 404);
  });

  test("the file's server section wins over the defaults", async () => {
    const [fileP, fileA] = await freePorts(2);
    const file = dir.write('prec-file.yaml', validConfig({ listen: `127.0.0.1:${fileP}`, admin_listen: `127.0.0.1:${fileA}`, tls_listen: 'off', workers: 1 }));
    const p = spawnPalisade(['start', '--config', file]);
    const o = await observe(p, [fileP!], [fileA!]);
    assert.deepEqual(o.proxy, [true]);
    assert.deepEqual(o.admin, [true]);
    assert.equal(o.status.workers, 1);
    assert.equal(o.answer!.status, 404);
  });
});

function systemNodeMajor(): number | null {
  if (!existsSync('/usr/bin/node')) return null;
  try {
    return Number(execFileSync('/usr/bin/node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim());
  } catch {
    return null;
  }
}

const major = systemNodeMajor();
test('with Node.js < 24 (the system /usr/bin/node): "needs Node.js 24", exit 1', { skip: major === null || major >= 24 ? 'no Node.js < 24 at /usr/bin/node' : false }, async () => {
  const file = dir.write('node20.yaml', validConfig());
  for (const args of [['--help'], ['start', '--config', file]]) {
    const r = await runPalisade(args, { node: '/usr/bin/node' });
    assert.equal(r.code, 1, `palisade ${args.join(' ')} on Node ${major}`);
    assert.match(r.stderr, /needs Node\.js 24/);
    assert.equal(r.stdout, '');
  }
});
