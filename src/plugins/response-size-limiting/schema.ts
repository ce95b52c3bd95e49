/**
 * Config of the response-size-limiting plugin: the fields of the community
 * kong-response-size-limiting plugin (allowed_payload_size in megabytes) with
 * request-size-limiting's size_unit.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';

export const ResponseSizeLimitingSchema = Type.Object(
  {
    allowed_payload_size: Type.Integer({
      default: 128,
      minimum: 0,
      description: 'Largest upstream response body allowed, in size_unit (default 128 megabytes).',
    }),
    size_unit: Enum(['megabytes', 'kilobytes', 'bytes'], {
      default: 'megabytes',
      description: 'Unit of allowed_payload_size: megabytes (2^20 bytes), kilobytes (2^10 bytes) or bytes.',
    }),
  },
  { additionalProperties: false, description: 'Refuse or cut upstream responses whose body is larger than a limit.' },
);

export type ResponseSizeLimitingConfig = Static<typeof ResponseSizeLimitingSchema>;
