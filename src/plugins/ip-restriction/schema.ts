/**
 * Config of the ip-restriction plugin: Kong's fields, names and defaults
 * (kong/plugins/ip-restriction/schema.lua and handler.lua, Kong 3.x).
 */
import { Type, type Static } from '@sinclair/typebox';

const IpList = (what: 'allow' | 'deny') =>
  Type.Optional(
    Type.Array(
      Type.String({ minLength: 1, description: 'An IPv4 or IPv6 address (192.0.2.7, 2001:db8::7) or a CIDR range (10.0.0.0/8, 2001:db8::/32).' }),
      {
        description:
          what === 'allow'
            ? 'List of IPs or CIDR ranges to allow: any other client IP is refused. One of `config.allow` or `config.deny` must be specified.'
            : 'List of IPs or CIDR ranges to deny; checked before `allow` (an address in both is refused). One of `config.allow` or `config.deny` must be specified.',
      },
    ),
  );

export const IpRestrictionSchema = Type.Object(
  {
    allow: IpList('allow'),
    deny: IpList('deny'),
    status: Type.Integer({ minimum: 100, maximum: 599, default: 403, description: 'The HTTP status of the requests that will be rejected by the plugin.' }),
    message: Type.Optional(
      Type.String({ minLength: 1, description: 'The message to send as a response body to rejected requests (default: "IP address not allowed: <client IP>", as in Kong).' }),
    ),
  },
  { additionalProperties: false, description: 'Allow or deny clients by IP address or CIDR range (IPv4 and IPv6).' },
);

export type IpRestrictionConfig = Static<typeof IpRestrictionSchema>;
