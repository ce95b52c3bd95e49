/** Schema helpers shared by the config schema and plugin schemas. */
import { Type, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/** A closed set of values, as a JSON Schema enum (clear errors, unlike anyOf of consts). */
export function Enum<const V extends (string | number)[]>(values: V, options: SchemaOptions = {}): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...options, enum: values });
}
