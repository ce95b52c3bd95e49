/**
 * Config of the request-size-limiting plugin: Kong's fields, names and
 * defaults (kong/plugins/request-size-limiting/schema.lua).
 */
import { Type, type Static } from '@sinclair/typebox';
import { payloadSizeFields } from '../../pdk/index.ts';

export const RequestSizeLimitingSchema = Type.Object(
  {
    ...payloadSizeFields('request body', 'Larger bodies get 413.'),
    require_content_length: Type.Boolean({
      default: false,
      description: 'Refuse (411) requests without a Content-Length header, unless they use chunked transfer encoding.',
    }),
  },
  { additionalProperties: false, description: 'Block requests whose body is larger than a limit.' },
);

export type RequestSizeLimitingConfig = Static<typeof RequestSizeLimitingSchema>;
