import { Ajv, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';

/** One Ajv for all config schemas: every error reported, defaults filled in place. */
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false });
const cache = new WeakMap<TSchema, ValidateFunction>();

export function compileSchema(schema: TSchema): ValidateFunction {
  let fn = cache.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    cache.set(schema, fn);
  }
  return fn;
}
