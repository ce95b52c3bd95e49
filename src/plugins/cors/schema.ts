/**
 * Config of the cors plugin: Kong's fields, names and defaults (kong/plugins/cors/schema.lua).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';


/** Kong's method list, in Kong's order; also the default of `methods`. */
export const CORS_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

export const CorsSchema = Type.Object(
  {
    origins: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Allowed origins for Access-Control-Allow-Origin: exact values (scheme://host[:port]), PCRE-style regexes ' +
          '(anchored; matched against the host when the regex has no ":", else against scheme://host[:port]), or "*". ' +
          'Unset or ["*"] allows every origin.',
      }),
    ),
    headers: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Value of Access-Control-Allow-Headers on preflights; unset = reflect the Access-Control-Request-Headers the client sent.',
      }),
    ),
    exposed_headers: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Value of Access-Control-Expose-Headers on actual responses; unset = no custom headers are exposed.',
      }),
    ),
    methods: Type.Array(Enum([...CORS_METHODS]), {
      default: [...CORS_METHODS],
      description: 'Value of Access-Control-Allow-Methods on preflights.',
    }),
    max_age: Type.Optional(
      Type.Number({ description: 'Access-Control-Max-Age on preflights: how long (seconds) the browser may cache the preflight result.' }),
    ),
    credentials: Type.Boolean({
      default: false,
      description: 'Send Access-Control-Allow-Credentials: true (with "*" origins, the request Origin is echoed instead of "*").',
    }),
    private_network: Type.Boolean({
      default: false,
      description: 'Answer Access-Control-Allow-Private-Network: true to preflights that carry Access-Control-Request-Private-Network: true.',
    }),
    preflight_continue: Type.Boolean({
      default: false,
      description: 'Proxy preflight requests to the upstream instead of answering them at the gateway.',
    }),
    allow_origin_absent: Type.Boolean({
      default: true,
      description: 'Add CORS response headers also to requests without an Origin header; false skips them.',
    }),
  },
  { additionalProperties: false, description: 'Cross-origin resource sharing: answer preflights and add CORS headers to responses.' },
);

export type CorsConfig = Static<typeof CorsSchema>;
