/**
 * The walkthrough of examples/openapi/README.md, run as written with the real
 * `palisade` command in a copy of the example directory: lint (clean, then a
 * governance rule broken), openapi2config --merge, config validate, mock,
 * start, and the documented requests with their documented answers. Only the
 * ports differ (free ones instead of 4010, 8000 and 8001). Every command and
 * every expected output used here is checked to appear in the README, so the
 * README cannot drift from what the commands do.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, freePorts, request, ROOT, runPalisade, spawnPalisade, TempDir, type PalisadeProcess } from '../helpers/process.ts';

const EXAMPLE = join(ROOT, 'examples', 'openapi');
const README = readFileSync(join(EXAMPLE, 'README.md'), 'utf8');

/** The README shows this command (as typed after `npx palisade`, or in full). */
function documented(command: string): void {
  assert.ok(README.includes(command), `examples/openapi/README.md shows: ${command}`);
}

/** The README shows this output block (request ids written as "…"). */
function documentedOutput(text: string): void {
  const shown = text.replace(/"request_id":"[0-9a-f-]{36}"/g, '"request_id":"…"');
  assert.ok(README.includes('```\n' + shown + '\n```'), `examples/openapi/README.md shows the output:\n${shown}`);
}

const dir = new TempDir();
let mockPort: number;
let gwPort: number;
let adminPort: number;
let mock: PalisadeProcess | undefined;
let gateway: PalisadeProcess | undefined;

before(async () => {
  for (const f of ['openapi.yaml', 'base.yaml', '.palisade-rules.yaml']) copyFileSync(join(EXAMPLE, f), dir.file(f));
  [mockPort, gwPort, adminPort] = (await freePorts(3)) as [number, number, number];
});

after(async () => {
  await gateway?.kill();
  await mock?.kill();
  dir.remove();
});

const palisade = (args: string[]) => runPalisade(args, { cwd: dir.path, timeoutMs: 60000 });

test('1. lint: the design is clean; a broken governance rule fails with the documented findings', async () => {
  documented('npx palisade lint openapi.yaml');
  const clean = await palisade(['lint', 'openapi.yaml']);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  documentedOutput(clean.stdout.trimEnd());

  documented("sed 's/in: header/in: query/' openapi.yaml > broken.yaml");
  writeFileSync(dir.file('broken.yaml'), readFileSync(dir.file('openapi.yaml'), 'utf8').replaceAll('in: header', 'in: query'));
  documented('npx palisade lint broken.yaml');
  const broken = await palisade(['lint', 'broken.yaml']);
  assert.equal(broken.code, 1);
  documentedOutput(broken.stdout.trimEnd());
});

test('2. openapi2config --merge, then config validate', async () => {
  documented('npx palisade openapi2config openapi.yaml --server http://127.0.0.1:4010/v1 --merge base.yaml -o palisade.yaml');
  const gen = await palisade(['openapi2config', 'openapi.yaml', '--server', `http://127.0.0.1:${mockPort}/v1`, '--merge', 'base.yaml', '-o', 'palisade.yaml']);
  assert.equal(gen.code, 0, gen.stderr);
  documentedOutput(gen.stderr.trimEnd());

  documented('npx palisade config validate palisade.yaml');
  const check = await palisade(['config', 'validate', 'palisade.yaml']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  documentedOutput(check.stdout.trimEnd());
});

test('3 and 4. mock and start', async () => {
  documented('npx palisade mock openapi.yaml');
  mock = spawnPalisade(['mock', 'openapi.yaml', '--listen', `127.0.0.1:${mockPort}`], { cwd: dir.path });
  await mock.waitForPort(mockPort, '127.0.0.1', 30000);
  await eventually(() => mock!.stderr.includes('\n'), 10000, 'the mock banner');
  documentedOutput(mock.stderr.trimEnd().replace(`:${mockPort}`, ':4010'));

  documented('npx palisade start -c palisade.yaml');
  gateway = spawnPalisade(['start', '-c', 'palisade.yaml', '--listen', `127.0.0.1:${gwPort}`, '--admin-listen', `127.0.0.1:${adminPort}`], { cwd: dir.path });
  await gateway.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
});

interface Step {
  curl: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

const KEY = { 'x-api-key': 'demo-key-change-me' };
const JSON_BODY = { ...KEY, 'content-type': 'application/json' };
const STEPS: Step[] = [
  {
    curl: "curl -s -w '\\n%{http_code}\\n' -H 'X-API-Key: demo-key-change-me' http://localhost:8000/pets/6f1c8e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
    path: '/pets/6f1c8e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
    headers: KEY,
  },
  {
    curl: `curl -s -w '\\n%{http_code}\\n' -H 'X-API-Key: demo-key-change-me' -H 'Content-Type: application/json' -d '{"name":"Bella","species":"dog"}' http://localhost:8000/pets`,
    method: 'POST',
    path: '/pets',
    headers: JSON_BODY,
    body: '{"name":"Bella","species":"dog"}',
  },
  {
    curl: "curl -s -w '\\n%{http_code}\\n' -H 'X-API-Key: demo-key-change-me' 'http://localhost:8000/pets?limit=1000'",
    path: '/pets?limit=1000',
    headers: KEY,
  },
  {
    curl: `curl -s -w '\\n%{http_code}\\n' -H 'X-API-Key: demo-key-change-me' -H 'Content-Type: application/json' -d '{"name":"Smaug","species":"dragon"}' http://localhost:8000/pets`,
    method: 'POST',
    path: '/pets',
    headers: JSON_BODY,
    body: '{"name":"Smaug","species":"dragon"}',
  },
  { curl: "curl -s -w '\\n%{http_code}\\n' http://localhost:8000/pets", path: '/pets' },
];

test('5. the documented requests get the documented answers', async () => {
  assert.ok(gateway && mock, 'steps 3 and 4 ran');
  for (const step of STEPS) {
    documented(step.curl);
    const r = await request(gwPort, step.path, { method: step.method ?? 'GET', headers: step.headers, body: step.body });
    documentedOutput(`${r.body}\n${r.status}`);
  }
  // The valid ones reached the mock (under the server's base path); the invalid ones did not.
  await eventually(() => /POST \/v1\/pets → 201 \(createPet, example\)/.test(mock!.stderr), 10000, 'the mock log line of the POST');
  assert.match(mock!.stderr, /GET \/v1\/pets\/6f1c8e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b → 200 \(showPet, example\)/);
  assert.doesNotMatch(mock!.stderr, /limit=1000|→ 4\d\d/, 'invalid requests stopped at the gateway');
});

test('Ctrl-C stops both (exit 0)', async () => {
  for (const p of [gateway!, mock!]) {
    p.signal('SIGINT');
    assert.deepEqual(await p.waitForExit(20000), { code: 0, signal: null }, p.output);
  }
});
