/**
 * Config of the response-size-limiting plugin: the fields of the community
 * kong-response-size-limiting plugin (allowed_payload_size in megabytes) with
 * request-size-limiting's size_unit.
 */
import { Type, type Static } from '@sinclair/typebox';
import { payloadSizeFields } from '../../pdk/index.ts';

export const ResponseSizeLimitingSchema = Type.Object(
  {
    ...payloadSizeFields('upstream response body', 'Larger bodies get 502 (declared length) or a closed connection (streamed).'),
  },
  { additionalProperties: false, description: 'Refuse or cut upstream responses whose body is larger than a limit.' },
);

export type ResponseSizeLimitingConfig = Static<typeof ResponseSizeLimitingSchema>;
