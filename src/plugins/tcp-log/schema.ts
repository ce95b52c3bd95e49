/**
 * Config of the tcp-log plugin: Kong's fields, names and defaults
 * (kong/plugins/tcp-log/schema.lua), plus Palisade's `ssl_verify` and `redact`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CustomFieldsByLuaField, RedactField } from '../../pdk/index.ts';

export const TcpLogSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'Host name or IP address of the log server.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port of the log server.' }),
    timeout: Type.Number({ minimum: 0, default: 10000, description: 'Milliseconds to connect and to write a batch before it counts as failed (and is retried).' }),
    keepalive: Type.Number({ minimum: 0, default: 60000, description: 'Milliseconds an idle connection is kept open.' }),
    tls: Type.Boolean({ default: false, description: 'Connect with TLS.' }),
    tls_sni: Type.Optional(Type.String({ description: 'Server name (SNI) sent in the TLS handshake, and checked against the certificate; default: host.' })),
    ssl_verify: Type.Boolean({ default: true, description: "Palisade: verify the server's TLS certificate." }),
    custom_fields_by_lua: CustomFieldsByLuaField,
    redact: RedactField,
  },
  { additionalProperties: false, description: 'Send the log record of every request to a TCP (or TLS) server as a JSON line.' },
);

export type TcpLogConfig = Static<typeof TcpLogSchema>;
