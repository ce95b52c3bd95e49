/**
 * `palisade lint` as a user runs it: the real command on documents written to a
 * temporary directory; outputs (text, JSON, SARIF), the project ruleset
 * (.palisade-rules.yaml in the current directory or --ruleset), exit codes by
 * --fail-severity, usage errors.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, test } from 'node:test';
import { runPalisade, TempDir } from '../helpers/process.ts';

const dir = new TempDir();
after(() => dir.remove());

/** Clean under spectral:oas and OWASP except for what a test adds: everything documented, secured, limited. */
const CLEAN = `openapi: 3.0.3
info:
  title: Clean
  version: "1.0"
  description: A document with nothing to report.
  contact: { name: API team, email: api@example.com }
servers:
  - { url: "https://api.example.com/v1", x-internal: false }
tags: [{ name: items, description: Items. }]
security: [{ apiKey: [] }]
paths:
  /items/{itemId}:
    get:
      operationId: getItem
      summary: Get an item
      description: One item.
      tags: [items]
      parameters:
        - { name: itemId, in: path, required: true, schema: { type: string, format: uuid, maxLength: 36 } }
      responses:
        "200":
          description: The item.
          headers:
            RateLimit: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
            Access-Control-Allow-Origin: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Item" }
        "400": { $ref: "#/components/responses/Problem" }
        "401": { $ref: "#/components/responses/Problem" }
        "404": { $ref: "#/components/responses/Problem" }
        "429": { $ref: "#/components/responses/TooMany" }
        "500": { $ref: "#/components/responses/Problem" }
components:
  securitySchemes:
    apiKey: { type: apiKey, in: header, name: X-API-Key }
  responses:
    Problem:
      description: A problem.
      headers:
        RateLimit: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
        Access-Control-Allow-Origin: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
      content: { application/problem+json: { schema: { $ref: "#/components/schemas/Problem" } } }
    TooMany:
      description: Too many requests.
      headers:
        RateLimit: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
        Retry-After: { schema: { type: integer, format: int32, minimum: 0, maximum: 86400 } }
        Access-Control-Allow-Origin: { schema: { type: string, maxLength: 100, pattern: "^.*$" } }
      content: { application/problem+json: { schema: { $ref: "#/components/schemas/Problem" } } }
  schemas:
    Item:
      type: object
      additionalProperties: false
      properties:
        id: { type: string, format: uuid, maxLength: 36 }
    Problem:
      type: object
      additionalProperties: false
      properties:
        title: { type: string, maxLength: 200, pattern: "^.*$" }
`;

const clean = dir.write('clean.yaml', CLEAN);
// The same document without servers (a spectral:oas warning) and with an unbounded string (an OWASP error).
const warnOnly = dir.write('warn.yaml', CLEAN.replace(/^servers:\n.*\n/m, ''));
const withError = dir.write('error.yaml', CLEAN.replace('format: uuid, maxLength: 36 } }', 'format: uuid } }'));

test('a clean document: exit 0, "no problems found"', async () => {
  const r = await runPalisade(['lint', clean]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim(), `${clean}: no problems found`);
});

test('text output: FILE:LINE:COL severity code message (path), a summary; exit 1 on an error', async () => {
  const r = await runPalisade(['lint', withError]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^${withError}:19:\\d+  error  owasp:api4:2023-string-limit  Schema of type string must specify maxLength, enum, or const\\.  \\(paths\\./items/\\{itemId\\}\\.get\\.parameters\\.0\\.schema\\)$`, 'm'));
  assert.match(r.stdout, /: 1 problem \(1 error\)\n$/);
});

test('--fail-severity: a warning fails at warn (and below), not at error', async () => {
  const atError = await runPalisade(['lint', warnOnly]);
  assert.equal(atError.code, 0, 'warnings do not fail the default --fail-severity error');
  assert.match(atError.stdout, /warn  oas3-api-servers/);
  for (const sev of ['warn', 'info', 'hint']) {
    const r = await runPalisade(['lint', warnOnly, '--fail-severity', sev]);
    assert.equal(r.code, 1, `--fail-severity ${sev}`);
  }
  const bad = await runPalisade(['lint', warnOnly, '--fail-severity', 'fatal']);
  assert.equal(bad.code, 2, 'an unknown severity is a usage error');
});

test('--format json: Spectral\'s findings array (code, path, message, severity, range, source)', async () => {
  const r = await runPalisade(['lint', withError, '--format', 'json']);
  assert.equal(r.code, 1);
  const findings = JSON.parse(r.stdout);
  assert.equal(findings.length, 1);
  assert.equal(findings[0].code, 'owasp:api4:2023-string-limit');
  assert.equal(findings[0].severity, 0);
  assert.deepEqual(findings[0].path, ['paths', '/items/{itemId}', 'get', 'parameters', '0', 'schema']);
  assert.equal(findings[0].range.start.line, 18, 'zero-based line');
  assert.equal(findings[0].source, withError);
});

test('--format sarif: a SARIF 2.1.0 log with the rules that ran and each result located', async () => {
  const r = await runPalisade(['lint', warnOnly, '-f', 'sarif'], { cwd: dir.path });
  assert.equal(r.code, 0);
  const log = JSON.parse(r.stdout);
  assert.equal(log.version, '2.1.0');
  assert.match(log.$schema, /sarif-2\.1\.0/);
  const run = log.runs[0];
  assert.equal(run.tool.driver.name, 'spectral');
  const ids = run.tool.driver.rules.map((x: { id: string }) => x.id);
  assert.ok(ids.includes('oas3-api-servers') && ids.includes('owasp:api4:2023-string-limit'), 'oas and OWASP rules listed');
  assert.ok(run.tool.driver.rules.every((x: { shortDescription: { text: string } }) => x.shortDescription.text), 'every rule described');
  assert.equal(run.results.length, 1);
  const [res] = run.results;
  assert.equal(res.ruleId, 'oas3-api-servers');
  assert.equal(res.level, 'warning');
  assert.equal(res.locations[0].physicalLocation.artifactLocation.uri, 'warn.yaml', 'relative to the current directory');
  assert.equal(res.locations[0].physicalLocation.region.startLine, 1);
});

const RULES = `# governance rules
rules:
  info-contact: off
  oas3-api-servers: error
  operation-summary-short:
    description: Summaries fit in a list view.
    message: "Summary too long: {{value}}"
    severity: warn
    given: $.paths[*][*].summary
    then:
      function: length
      functionOptions: { max: 10 }
  require-x-owner:
    description: Every API names its owning team.
    severity: error
    given: $.info
    then: { field: x-owner, function: truthy }
`;

test('.palisade-rules.yaml in the current directory: own rules, severities changed, rules turned off', async () => {
  const sub = new TempDir();
  try {
    sub.write('.palisade-rules.yaml', RULES);
    const spec = sub.write('api.yaml', CLEAN.replace(/^servers:\n.*\n/m, '').replace(/^  contact:.*\n/m, ''));
    const r = await runPalisade(['lint', 'api.yaml', '--format', 'json'], { cwd: sub.path });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const codes = (JSON.parse(r.stdout) as { code: string; severity: number }[]).map((f) => `${f.code}/${f.severity}`).sort();
    assert.deepEqual(codes, ['oas3-api-servers/0', 'operation-summary-short/1', 'require-x-owner/0'], 'info-contact off; servers raised to error');
    // Without the project file, the built-in rules alone.
    const alone = await runPalisade(['lint', spec, '--format', 'json']);
    const builtin = (JSON.parse(alone.stdout) as { code: string }[]).map((f) => f.code).sort();
    assert.deepEqual(builtin, ['info-contact', 'oas3-api-servers']);
  } finally {
    sub.remove();
  }
});

test('--ruleset FILE: extends another ruleset file; rule messages use the ruleset\'s templates', async () => {
  dir.write('base-rules.yaml', RULES);
  const rules = dir.write('team-rules.yaml', 'extends: [./base-rules.yaml]\nrules:\n  require-x-owner: off\n');
  const r = await runPalisade(['lint', clean, '--ruleset', rules]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /warn  operation-summary-short  Summary too long: Get an item {2}\(paths\.\/items\/\{itemId\}\.get\.summary\)/);
});

test('custom functions: `functions` names JavaScript modules in functions/ beside the ruleset', async () => {
  const sub = new TempDir();
  try {
    mkdirSync(sub.file('functions'));
    sub.write('functions/noWord.js', 'export default function noWord(input, options) {\n  if (String(input).includes(options.word)) return [{ message: `mentions ${options.word}` }];\n}\n');
    const rules = sub.write('rules.yaml', 'functions: [noWord]\nrules:\n  no-draft:\n    severity: error\n    given: $.info.description\n    then: { function: noWord, functionOptions: { word: nothing } }\n');
    const r = await runPalisade(['lint', clean, '--ruleset', rules]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /:5:16 {2}error {2}no-draft {2}mentions nothing {2}\(info\.description\)$/m);
  } finally {
    sub.remove();
  }
});

test('usage errors exit 2: unreadable document, unreadable or invalid ruleset, unknown format', async () => {
  const missing = await runPalisade(['lint', dir.file('nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /palisade: cannot read .*nope\.yaml: ENOENT/);
  assert.equal(missing.stdout, '');

  const noRules = await runPalisade(['lint', clean, '--ruleset', dir.file('none.yaml')]);
  assert.equal(noRules.code, 2);
  assert.match(noRules.stderr, /cannot read the ruleset .*none\.yaml: ENOENT/);

  const unknownFn = await runPalisade(['lint', clean, '--ruleset', dir.write('fn.yaml', 'rules:\n  r:\n    given: $.info\n    then: { function: nosuch }\n')]);
  assert.equal(unknownFn.code, 2);
  assert.match(unknownFn.stderr, /rule r: unknown function "nosuch"; core functions: alphabetical, casing, defined/);

  const badGiven = await runPalisade(['lint', clean, '--ruleset', dir.write('given.yaml', 'rules:\n  r:\n    given: 5\n    then: { function: truthy }\n')]);
  assert.equal(badGiven.code, 2);
  assert.match(badGiven.stderr, /invalid ruleset: .*JSON Path/);

  const format = await runPalisade(['lint', clean, '--format', 'xml']);
  assert.equal(format.code, 2);
  assert.match(format.stderr, /argument 'xml' is invalid/);
});
