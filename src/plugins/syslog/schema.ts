/**
 * Config of the syslog plugin: Kong's fields, names and defaults
 * (kong/plugins/syslog/schema.lua). Kong writes to the local syslog daemon;
 * Palisade sends RFC 5424 messages to a syslog server over UDP or TCP (its
 * additions: host, port, protocol, timeout, keepalive, redact).
 */
import { Type, type Static } from '@sinclair/typebox';
import { CustomFieldsByLuaField, Enum, RedactField } from '../../pdk/index.ts';

export const SEVERITIES = ['debug', 'info', 'notice', 'warning', 'err', 'crit', 'alert', 'emerg'] as const;
export const FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;

const Severity = (what: string) => Enum([...SEVERITIES], { default: 'info', description: what });

export const SyslogSchema = Type.Object(
  {
    log_level: Severity('Only messages at this severity or more severe are sent (emerg is the most severe, debug the least).'),
    successful_severity: Severity('Severity of the message for a response with a status below 400.'),
    client_errors_severity: Severity('Severity of the message for a 4xx response.'),
    server_errors_severity: Severity('Severity of the message for a 5xx response.'),
    facility: Enum([...FACILITIES], { default: 'user', description: 'Syslog facility of the messages.' }),
    custom_fields_by_lua: CustomFieldsByLuaField,
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Palisade: syslog server to send to (Kong writes to the local syslog).' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 514, description: 'Palisade: port of the syslog server.' }),
    protocol: Enum(['udp', 'tcp'], { default: 'udp', description: 'Palisade: udp (RFC 5426, one message per datagram) or tcp (RFC 6587, newline-terminated messages).' }),
    timeout: Type.Number({ minimum: 0, default: 10000, description: 'Palisade: milliseconds to connect and write (tcp).' }),
    keepalive: Type.Number({ minimum: 0, default: 60000, description: 'Palisade: milliseconds an idle connection is kept open (tcp).' }),
    redact: RedactField,
  },
  { additionalProperties: false, description: "Send the log record of every request to a syslog server (RFC 5424), with a severity chosen by the response's status." },
);

export type SyslogConfig = Static<typeof SyslogSchema>;
