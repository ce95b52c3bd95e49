/**
 * Config of the request-termination plugin: Kong's fields, names, defaults
 * and cross-field rules (kong/plugins/request-termination/schema.lua).
 */
import { Type, type Static } from '@sinclair/typebox';

export const RequestTerminationSchema = Type.Object(
  {
    status_code: Type.Integer({
      default: 503,
      minimum: 100,
      maximum: 599,
      description: 'The response code to send. Must be an integer between 100 and 599.',
    }),
    message: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The message to send, if using the default response generator ({"message": …}). Unset: Kong\'s default message for 401, 404, 405, 500, 502 and 503.',
      }),
    ),
    content_type: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Content type of the raw response configured with `body` (default application/json; charset=utf-8).',
      }),
    ),
    body: Type.Optional(
      Type.String({ minLength: 1, description: 'The raw response body to send. This is mutually exclusive with the `message` field.' }),
    ),
    echo: Type.Boolean({
      default: false,
      description:
        'Echo a copy of the request back to the client, for debugging. Combine with `trigger` to debug live systems without disturbing real traffic.',
    }),
    trigger: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]+$',
        description:
          'When set, the plugin acts only on requests that carry a header or a query argument of this name; other requests pass. Unset: every request is terminated.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Terminate requests with a fixed response: maintenance, blocking, debugging.' },
);

export type RequestTerminationConfig = Static<typeof RequestTerminationSchema>;

/** Kong's custom_validator, same messages. */
export function validateRequestTermination(config: RequestTerminationConfig): string | null {
  const present = (v: string | undefined) => v !== undefined && v.length > 0;
  if (present(config.message) && (present(config.content_type) || present(config.body))) {
    return 'message cannot be used with content_type or body';
  }
  if (present(config.content_type) && !present(config.body)) return 'content_type requires a body';
  if (config.echo && (present(config.content_type) || present(config.body))) {
    return 'echo cannot be used with content_type and body';
  }
  return null;
}
