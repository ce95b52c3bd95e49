/**
 * Config of the correlation-id plugin: Kong's fields, names and defaults
 * (kong/plugins/correlation-id/schema.lua).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';


export const CorrelationIdSchema = Type.Object(
  {
    header_name: Type.String({
      default: 'Kong-Request-ID',
      minLength: 1,
      pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
      description: 'HTTP header carrying the correlation id (to the upstream, and back to the client with echo_downstream).',
    }),
    generator: Enum(['uuid', 'uuid#counter', 'tracker'], {
      default: 'uuid#counter',
      description:
        'How an id is generated when the request has none: uuid (random v4 UUID per request), uuid#counter ' +
        '(a UUID per worker followed by #counter), tracker (server address, port, pid, connection, request number, time).',
    }),
    echo_downstream: Type.Boolean({
      default: false,
      description: 'Also send the correlation id back to the client in the response.',
    }),
  },
  { additionalProperties: false, description: 'Correlate requests and responses with a unique id carried in a header.' },
);

export type CorrelationIdConfig = Static<typeof CorrelationIdSchema>;
