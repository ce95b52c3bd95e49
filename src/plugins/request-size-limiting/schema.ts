/**
 * Config of the request-size-limiting plugin: Kong's fields, names and
 * defaults (kong/plugins/request-size-limiting/schema.lua).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';


export const RequestSizeLimitingSchema = Type.Object(
  {
    allowed_payload_size: Type.Integer({
      default: 128,
      minimum: 0,
      description: 'Largest request body allowed, in size_unit (default 128 megabytes). Larger bodies get 413.',
    }),
    size_unit: Enum(['megabytes', 'kilobytes', 'bytes'], {
      default: 'megabytes',
      description: 'Unit of allowed_payload_size: megabytes (2^20 bytes), kilobytes (2^10 bytes) or bytes.',
    }),
    require_content_length: Type.Boolean({
      default: false,
      description: 'Refuse (411) requests without a Content-Length header, unless they use chunked transfer encoding.',
    }),
  },
  { additionalProperties: false, description: 'Block requests whose body is larger than a limit.' },
);

export type RequestSizeLimitingConfig = Static<typeof RequestSizeLimitingSchema>;
