/**
 * palisade mock: a real mock server on 127.0.0.1 answering from an OpenAPI
 * document — examples first, else values generated from the schemas
 * (deterministic), Prefer (code, example, dynamic), request validation with
 * the oas-validation validator, 404/405/406; and the command itself (banner,
 * Ctrl-C, exit codes).
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { loadOpenApi } from '../../src/openapi/document.ts';
import { startMock } from '../../src/openapi/mock.ts';
import { requestValidator } from '../../src/openapi/mock-validate.ts';
import { request } from '../helpers/http.ts';
import { freePort, runPalisade, spawnPalisade, TempDir } from '../helpers/process.ts';

const SPEC = `openapi: 3.1.0
info: { title: Mock test, version: "1" }
servers: [{ url: "https://api.example.com/v1" }]
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100 } }
      responses:
        "200":
          description: A page of pets.
          headers:
            X-Total-Count: { required: true, schema: { type: integer, minimum: 7 } }
            X-Debug: { schema: { type: string } }
            X-Request-Tag: { schema: { type: string }, example: demo }
          content:
            application/json:
              schema: { type: array, minItems: 2, items: { $ref: "#/components/schemas/Pet" } }
        "404":
          description: Not found.
          content:
            application/problem+json:
              example: { title: No pets, status: 404 }
    post:
      operationId: createPet
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: "#/components/schemas/NewPet" } }
      responses:
        "201":
          description: Created.
          content:
            application/json:
              examples:
                cat: { value: { id: 1, name: Tom, kind: cat } }
                dog: { $ref: "#/components/examples/Dog" }
        "409": { description: Conflict. }
  /pets/{petId}:
    parameters:
      - { name: petId, in: path, required: true, schema: { type: integer, minimum: 1 } }
    get:
      operationId: showPet
      responses:
        "200":
          description: A pet.
          content:
            application/json: { schema: { $ref: "#/components/schemas/Pet" } }
            text/plain: { schema: { type: string, example: "a pet" } }
    delete:
      responses: { "204": { description: Gone. } }
  /pets/mine:
    get:
      responses:
        "200":
          description: Mine.
          content:
            application/json: { example: [{ id: 42, name: Mine, kind: dog }] }
components:
  examples:
    Dog: { value: { id: 2, name: Rex, kind: dog } }
  schemas:
    NewPet:
      type: object
      additionalProperties: false
      required: [name, kind]
      properties:
        name: { type: string, minLength: 1, maxLength: 20 }
        kind: { type: string, enum: [cat, dog] }
    Pet:
      type: object
      required: [id, name, kind, born, owner, tag, weight]
      properties:
        id: { type: integer, format: int64, minimum: 5 }
        name: { type: string, example: Rex }
        kind: { type: string, enum: [dog, cat] }
        born: { type: string, format: date-time }
        owner: { type: string, format: email }
        tag: { type: string, format: uuid }
        weight: { type: number, minimum: 0.5, maximum: 80 }
        nickname: { type: string, default: Buddy }
`;

let server: Server;
let port: number;
before(async () => {
  const doc = await loadOpenApi({ text: SPEC, name: 'mock-test.yaml' });
  server = await startMock(doc, '127.0.0.1', 0, { validate: requestValidator(doc) });
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

const json = { 'content-type': 'application/json' };

test('examples first: media example, the first of examples, a named example by $ref', async () => {
  const mine = await request(port, '/pets/mine');
  assert.equal(mine.status, 200);
  assert.equal(mine.headers['content-type'], 'application/json');
  assert.deepEqual(mine.json(), [{ id: 42, name: 'Mine', kind: 'dog' }]);

  const created = await request(port, '/pets', { method: 'POST', headers: json, body: '{"name":"Tom","kind":"cat"}' });
  assert.equal(created.status, 201, 'the lowest 2xx response');
  assert.deepEqual(created.json(), { id: 1, name: 'Tom', kind: 'cat' });
});

test('generated from the schema: deterministic; formats, bounds, enums, required properties, minItems, schema examples and defaults', async () => {
  const a = await request(port, '/pets/7');
  const b = await request(port, '/pets/7');
  assert.equal(a.status, 200);
  assert.equal(a.body, b.body, 'the same answer every time');
  const pet = a.json();
  assert.equal(pet.id, 5, 'minimum');
  assert.equal(pet.name, 'Rex', 'the property example');
  assert.equal(pet.kind, 'dog', 'the first enum value');
  assert.ok(!Number.isNaN(Date.parse(pet.born)) && /T.*Z$/.test(pet.born), `date-time: ${pet.born}`);
  assert.match(pet.owner, /^[^@\s]+@[^@\s]+\.[a-z]+$/, 'email');
  assert.match(pet.tag, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'uuid');
  assert.ok(pet.weight >= 0.5 && pet.weight <= 80, 'within the bounds');
  assert.equal(pet.nickname, 'Buddy', 'the default');

  const list = await request(port, '/pets');
  assert.equal(list.json().length, 2, 'minItems');
  assert.equal(list.headers['x-total-count'], '7', 'response headers from their schema');
  assert.equal(list.headers['x-request-tag'], 'demo', 'or their example');
  assert.equal(list.headers['x-debug'], undefined, 'optional headers without an example are left out');
});

test('Accept: text/plain picks that media type; an unacceptable Accept → 406', async () => {
  const text = await request(port, '/pets/7', { headers: { accept: 'text/plain' } });
  assert.equal(text.status, 200);
  assert.equal(text.headers['content-type'], 'text/plain');
  assert.equal(text.body, 'a pet');
  const none = await request(port, '/pets/7', { headers: { accept: 'application/xml' } });
  assert.equal(none.status, 406);
  assert.match(none.json().detail, /application\/json, text\/plain/);
});

test('Prefer: code=, example=, dynamic=true', async () => {
  const notFound = await request(port, '/pets', { headers: { prefer: 'code=404' } });
  assert.equal(notFound.status, 404);
  assert.equal(notFound.headers['content-type'], 'application/problem+json');
  assert.deepEqual(notFound.json(), { title: 'No pets', status: 404 });

  const conflict = await request(port, '/pets', { method: 'POST', headers: { ...json, prefer: 'code=409' }, body: '{"name":"a","kind":"cat"}' });
  assert.equal(conflict.status, 409);
  assert.equal(conflict.body, '', 'a response without content');

  const dog = await request(port, '/pets', { method: 'POST', headers: { ...json, prefer: 'example=dog' }, body: '{"name":"a","kind":"dog"}' });
  assert.deepEqual(dog.json(), { id: 2, name: 'Rex', kind: 'dog' });

  const unknownCode = await request(port, '/pets', { headers: { prefer: 'code=418' } });
  assert.equal(unknownCode.status, 400);
  assert.match(unknownCode.json().detail, /code=418: GET \/pets has no such response \(it has 200, 404\)/);
  const unknownExample = await request(port, '/pets', { method: 'POST', headers: { ...json, prefer: 'example=bird' }, body: '{"name":"a","kind":"dog"}' });
  assert.equal(unknownExample.status, 400);
  assert.match(unknownExample.json().detail, /example=bird: no such example \(cat, dog\)/);

  const d1 = (await request(port, '/pets/7', { headers: { prefer: 'dynamic=true' } })).json();
  const d2 = (await request(port, '/pets/7', { headers: { prefer: 'dynamic=true' } })).json();
  assert.notDeepEqual(d1, d2, 'random values each time');
  for (const pet of [d1, d2]) {
    assert.ok(Number.isInteger(pet.id) && pet.id >= 5);
    assert.ok(['dog', 'cat'].includes(pet.kind));
    assert.match(pet.tag, /^[0-9a-f-]{36}$/);
  }
});

test('requests are validated like the oas-validation plugin does: 400 for parameters, 422 for the body, every violation listed', async () => {
  const limit = await request(port, '/pets?limit=500');
  assert.equal(limit.status, 400);
  assert.equal(limit.headers['content-type'], 'application/problem+json');
  assert.deepEqual(limit.json().violations, [{ in: 'query', name: 'limit', pointer: '', message: 'must be <= 100' }]);

  const id = await request(port, '/pets/abc');
  assert.equal(id.status, 400);
  assert.deepEqual(id.json().violations, [{ in: 'path', name: 'petId', pointer: '', message: 'must be integer' }]);

  const body = await request(port, '/pets', { method: 'POST', headers: json, body: '{"kind":"bird","color":"red"}' });
  assert.equal(body.status, 422);
  const problem = body.json();
  assert.equal(problem.title, 'Unprocessable Entity');
  assert.deepEqual(
    problem.violations.map((v: { pointer: string; message: string }) => `${v.pointer} ${v.message}`).sort(),
    ['/color is not allowed (additionalProperties is false)', '/kind must be one of "cat", "dog"', '/name is required'],
  );
  assert.match(problem.detail, /^the request does not match the OpenAPI document \(3 violations\): body /);

  const noBody = await request(port, '/pets', { method: 'POST' });
  assert.equal(noBody.status, 422);
  assert.deepEqual(noBody.json().violations, [{ in: 'body', pointer: '', message: 'request body is required' }]);
  const text = await request(port, '/pets', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(text.status, 400);
  assert.equal(text.json().violations[0].in, 'content-type');
});

test('unknown path → 404; known path, other method → 405 with Allow; the servers\' base path is accepted too; HEAD', async () => {
  const missing = await request(port, '/owners');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['content-type'], 'application/problem+json');
  const wrong = await request(port, '/pets', { method: 'PUT' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.allow, 'GET, POST');
  assert.equal((await request(port, '/pets/7', { method: 'PATCH' })).headers.allow, 'GET, DELETE');

  const based = await request(port, '/v1/pets/mine');
  assert.equal(based.status, 200, 'https://api.example.com/v1 → /v1 is the base path');
  assert.deepEqual(based.json(), [{ id: 42, name: 'Mine', kind: 'dog' }]);
  assert.equal((await request(port, '/v2/pets')).status, 404);

  const head = await request(port, '/pets/mine', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], String(Buffer.byteLength('[{"id":42,"name":"Mine","kind":"dog"}]')));
});

test('palisade mock SPEC --listen: banner, a line per request, Ctrl-C exits 0; taken port 1, unreadable file 2', async () => {
  const dir = new TempDir();
  try {
    const spec = dir.write('api.yaml', SPEC);
    const p = await freePort();
    const mock = spawnPalisade(['mock', spec, '--listen', `127.0.0.1:${p}`]);
    try {
      await mock.waitForPort(p);
      const r = await request(p, '/pets?limit=0');
      assert.equal(r.status, 400);
      assert.equal((await request(p, '/pets/mine')).status, 200);
      const taken = await runPalisade(['mock', spec, '--listen', `127.0.0.1:${p}`]);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
      mock.signal('SIGINT');
      assert.deepEqual(await mock.waitForExit(), { code: 0, signal: null });
      assert.match(mock.stderr, new RegExp(`palisade mock: Mock test: 5 operations on http://127\\.0\\.0\\.1:${p}, requests validated`));
      assert.match(mock.stderr, /GET \/pets\?limit=0 → 400 \(query limit: must be >= 1\)/);
      assert.match(mock.stderr, /GET \/pets\/mine → 200 \(GET \/pets\/mine, example\)/);
    } finally {
      await mock.kill();
    }
    const missing = await runPalisade(['mock', dir.file('nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.yaml/);
    const bad = await runPalisade(['mock', spec, '--listen', 'nowhere']);
    assert.equal(bad.code, 2, 'a malformed --listen is a usage error');
  } finally {
    dir.remove();
  }
});
