/**
 * Config of the file-log plugin: Kong's fields, names and defaults
 * (kong/plugins/file-log/schema.lua), plus Palisade's `redact`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CustomFieldsByLuaField, RedactField } from '../../pdk/index.ts';

export const FileLogSchema = Type.Object(
  {
    path: Type.String({ pattern: '^[^*&%`]+$', description: 'File the log records are appended to, one JSON object per line (created when missing; its directory must exist).' }),
    reopen: Type.Boolean({
      default: false,
      description: 'Open the file again for every write batch (Kong: for every request) instead of keeping it open. Either way a file renamed or removed by log rotation is noticed within a second and a new one is started.',
    }),
    custom_fields_by_lua: CustomFieldsByLuaField,
    redact: RedactField,
  },
  { additionalProperties: false, description: 'Append the log record of every request to a file as JSON lines.' },
);

export type FileLogConfig = Static<typeof FileLogSchema>;
