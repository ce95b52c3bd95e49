/** The Palisade config the bench generates: one service, one route on "/", optional global plugins. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { BenchCredentials } from './credentials.ts';
import type { WrkRequest } from './wrk.ts';

export type PalisadeScenario = 'plain' | 'plain-nolog' | 'plugins' | 'key-auth' | 'jwt-hs256' | 'jwt-rs256' | 'jwt-es256' | 'jwt-es256-nocache' | 'key-auth+rl-local' | 'key-auth+rl-redis' | 'plain-post' | 'oas-validation' | 'observability' | 'prometheus' | 'opentelemetry' | 'http-log';

export const SCENARIO_DESCRIPTIONS: Record<PalisadeScenario, string> = {
  plain: 'no plugins',
  'plain-nolog': 'no plugins, access log off: what routing, forwarding headers and the pipeline cost over the floor',
  plugins: 'global cors + correlation-id + request-size-limiting',
  'key-auth': 'key-auth (one consumer, key in a header)',
  'jwt-hs256': 'jwt HS256 (verified-token cache on, the default)',
  'jwt-rs256': 'jwt RS256 (verified-token cache on)',
  'jwt-es256': 'jwt ES256 (verified-token cache on)',
  'jwt-es256-nocache': 'jwt ES256, token_cache_size 0: every request verifies the signature',
  'key-auth+rl-local': 'key-auth + rate-limiting (policy local, limit never reached)',
  'key-auth+rl-redis': 'key-auth + rate-limiting (policy redis on 127.0.0.1:6379, limit never reached)',
  'plain-post': 'no plugins, loaded with the oas-validation scenario\'s ~1 KB JSON POST (its baseline)',
  'oas-validation': 'oas-validation: a ~1 KB JSON POST validated against a small OpenAPI 3.1 document (GET / validated too)',
  observability: 'global prometheus (status, latency, bandwidth) + opentelemetry (100 % sampled, OTLP JSON to the upstream as a discarding sink) + http-log (batched to the same sink)',
  prometheus: 'the prometheus plugin of the observability scenario alone',
  opentelemetry: 'the opentelemetry plugin of the observability scenario alone',
  'http-log': 'the http-log plugin of the observability scenario alone',
};

/** The request of a scenario when it is not the shared GET / (wrk sends it with a script). */
export type ScenarioRequest = WrkRequest;

/** A ~1 KB order, valid against OAS_BENCH_SPEC. */
export const OAS_BENCH_BODY = JSON.stringify({
  orderId: 'ord-2024-000123',
  customer: { id: 42, email: 'jane.doe@example.com', name: 'Jane Doe', tier: 'gold' },
  items: Array.from({ length: 9 }, (_, i) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1, unitPrice: 9.99 + i, tags: ['fast', 'gift'] })),
  shipping: { street: '1 Main Street', city: 'Springfield', postcode: '12345', country: 'US', express: false },
  note: 'Leave at the front door, please. Thank you!',
  createdAt: '2024-05-01T12:34:56Z',
});

export const SCENARIO_REQUESTS: Partial<Record<PalisadeScenario, ScenarioRequest>> = {
  'plain-post': { method: 'POST', headers: { 'content-type': 'application/json' }, body: OAS_BENCH_BODY },
  'oas-validation': { method: 'POST', headers: { 'content-type': 'application/json' }, body: OAS_BENCH_BODY },
};

/** The document of the oas-validation scenario. */
export const OAS_BENCH_SPEC = JSON.stringify({
  openapi: '3.1.0',
  info: { title: 'bench orders', version: '1' },
  paths: {
    '/': {
      get: { parameters: [{ name: 'Origin', in: 'header', schema: { type: 'string', format: 'uri' } }], responses: { '200': { description: 'ok' } } },
      post: {
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } } },
        responses: { '200': { description: 'ok' } },
      },
    },
  },
  components: {
    schemas: {
      Order: {
        type: 'object',
        additionalProperties: false,
        required: ['orderId', 'customer', 'items', 'shipping', 'createdAt'],
        properties: {
          orderId: { type: 'string', pattern: '^ord-[0-9]{4}-[0-9]{6}$' },
          customer: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'email'],
            properties: { id: { type: 'integer', minimum: 1 }, email: { type: 'string', format: 'email' }, name: { type: 'string', maxLength: 100 }, tier: { enum: ['basic', 'silver', 'gold'] } },
          },
          items: { type: 'array', minItems: 1, maxItems: 50, items: { $ref: '#/components/schemas/Item' } },
          shipping: {
            type: 'object',
            additionalProperties: false,
            required: ['street', 'city', 'postcode', 'country'],
            properties: { street: { type: 'string' }, city: { type: 'string' }, postcode: { type: 'string', pattern: '^[0-9A-Z -]{3,10}$' }, country: { type: 'string', minLength: 2, maxLength: 2 }, express: { type: 'boolean' } },
          },
          note: { type: ['string', 'null'], maxLength: 500 },
          createdAt: { type: 'string', format: 'date-time' },
        },
      },
      Item: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'quantity', 'unitPrice'],
        properties: { sku: { type: 'string', pattern: '^SKU-[0-9]+$' }, quantity: { type: 'integer', minimum: 1, maximum: 1000 }, unitPrice: { type: 'number', exclusiveMinimum: 0 }, tags: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
      },
    },
  },
});

/** Route plugins and consumers of each scenario (YAML lines under the route / top level). */
function scenarioYaml(scenario: PalisadeScenario, c: BenchCredentials, upstreamPort: number): { route: string[]; top: string[] } {
  const q = (s: string): string => JSON.stringify(s);
  const jwtPlugin = (alg: string, cache = true) => [
    '        plugins:',
    '          - name: jwt',
    `            config: {header_names: ["x-jwt-${alg}"], claims_to_verify: [exp]${cache ? '' : ', token_cache_size: 0'}}`,
  ];
  const rl = (policy: string) => [
    '          - name: rate-limiting',
    `            config: {minute: 100000000, policy: ${policy}${policy === 'redis' ? ', redis: {host: "127.0.0.1", port: 6379}' : ''}}`,
  ];
  const keyAuth = ['        plugins:', '          - name: key-auth', '            config: {key_names: [apikey]}'];
  const consumers = [
    'consumers:',
    '  - username: bench',
    '    keyauth_credentials:',
    `      - key: ${q(c.apiKey)}`,
    '    jwt_secrets:',
    `      - {key: bench-hs256, algorithm: HS256, secret: ${q(c.hsSecret)}}`,
    `      - {key: bench-rs256, algorithm: RS256, rsa_public_key: ${q(c.rsaPublicPem)}}`,
    `      - {key: bench-es256, algorithm: ES256, rsa_public_key: ${q(c.ecPublicPem)}}`,
  ];
  switch (scenario) {
    case 'plain':
    case 'plain-nolog':
      return { route: [], top: [] };
    case 'plugins':
      return { route: [], top: ['plugins:', ...SCENARIO_PLUGINS] };
    case 'key-auth':
      return { route: keyAuth, top: consumers };
    case 'jwt-hs256':
    case 'jwt-rs256':
    case 'jwt-es256':
      return { route: jwtPlugin(scenario.slice(4)), top: consumers };
    case 'jwt-es256-nocache':
      return { route: jwtPlugin('es256', false), top: consumers };
    case 'key-auth+rl-local':
      return { route: [...keyAuth, ...rl('local')], top: consumers };
    case 'key-auth+rl-redis':
      return { route: [...keyAuth, ...rl('redis')], top: consumers };
    case 'observability':
    case 'prometheus':
    case 'opentelemetry':
    case 'http-log': {
      // The nginx upstream answers every request 200 and discards the body: it is also the OTLP and log sink.
      const sink = `http://127.0.0.1:${upstreamPort}`;
      const plugins: Record<string, string[]> = {
        prometheus: ['  - name: prometheus', '    config: {status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true}'],
        opentelemetry: ['  - name: opentelemetry', `    config: {traces_endpoint: ${q(`${sink}/v1/traces`)}, sampling_rate: 1}`],
        'http-log': ['  - name: http-log', `    config: {http_endpoint: ${q(`${sink}/log`)}, queue: {max_batch_size: 1000, max_coalescing_delay: 1}}`],
      };
      return { route: [], top: ['plugins:', ...(scenario === 'observability' ? Object.values(plugins).flat() : plugins[scenario]!)] };
    }
    case 'plain-post':
      return { route: [], top: [] };
    case 'oas-validation':
      return { route: ['        plugins:', '          - name: oas-validation', `            config: {api_spec: ${q(OAS_BENCH_SPEC)}, api_spec_encoded: false}`], top: [] };
  }
}

/** Global plugins of the `plugins` scenario (YAML flow style). */
export const SCENARIO_PLUGINS = [
  '  - name: cors\n    config: {origins: ["*"]}',
  '  - name: correlation-id\n    config: {}',
  '  - name: request-size-limiting\n    config: {allowed_payload_size: 10}',
];

export function palisadeConfig(dir: string, upstreamPort: number, scenario: PalisadeScenario, creds: BenchCredentials): string {
  const extra = scenarioYaml(scenario, creds, upstreamPort);
  const q = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML scalar
  const lines = [
    '# Generated by bench/run.ts — do not edit.',
    '_format_version: "3.0"',
    'server:',
    `  access_log: ${scenario === 'plain-nolog' ? 'off' : q(join(dir, 'palisade-access.log'))}`,
    'services:',
    '  - name: bench-upstream',
    `    url: ${q(`http://127.0.0.1:${upstreamPort}`)}`,
    '    routes:',
    '      - name: bench-root',
    '        paths: ["/"]',
    ...extra.route,
    ...extra.top,
  ];
  return lines.join('\n') + '\n';
}

export function writePalisadeConfig(dir: string, upstreamPort: number, scenario: PalisadeScenario, creds: BenchCredentials): string {
  const file = join(dir, `palisade-${scenario.replace(/[^a-z0-9-]/g, '_')}.yaml`);
  writeFileSync(file, palisadeConfig(dir, upstreamPort, scenario, creds));
  return file;
}
