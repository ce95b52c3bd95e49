/** Schema helpers shared by the config schema and plugin schemas. */
import { Type, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/** A closed set of values, as a JSON Schema enum (clear errors, unlike anyOf of consts). */
export function Enum<const V extends (string | number)[]>(values: V, options: SchemaOptions = {}): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ ...options, enum: values });
}

const UNIT_BYTES = { megabytes: 1048576, kilobytes: 1024, bytes: 1 } as const;

/**
 * Kong's `allowed_payload_size` + `size_unit` pair (request-size-limiting; response-size-limiting
 * reuses it): a size in megabytes by default. `what` says what the size limits, `beyond` what happens past it.
 */
export function payloadSizeFields(what: string, beyond: string) {
  return {
    allowed_payload_size: Type.Integer({
      default: 128,
      minimum: 0,
      description: `Largest ${what} allowed, in size_unit (default 128 megabytes). ${beyond}`,
    }),
    size_unit: Enum(['megabytes', 'kilobytes', 'bytes'], {
      default: 'megabytes',
      description: 'Unit of allowed_payload_size: megabytes (2^20 bytes), kilobytes (2^10 bytes) or bytes.',
    }),
  };
}

/** The limit of a payloadSizeFields pair, in bytes. */
export function payloadBytes(c: { allowed_payload_size: number; size_unit: keyof typeof UNIT_BYTES }): number {
  return c.allowed_payload_size * UNIT_BYTES[c.size_unit];
}
