/**
 * Config of the json-threat-protection plugin: Kong Enterprise's fields,
 * names, defaults and bounds (json-threat-protection/schema.lua, 3.14), plus
 * Palisade's max_number_length and json_content_types.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum, MEDIA_TYPE_MASK } from '../../pdk/index.ts';

const MAX_INT = 2 ** 31;

const limit = (def: number, description: string) =>
  Type.Integer({ default: def, minimum: -1, maximum: MAX_INT, description: `${description} -1 means unlimited; 0 is refused.` });

export const JsonThreatProtectionSchema = Type.Object(
  {
    max_body_size: limit(8192, 'Max size of the request body, in bytes: a larger declared Content-Length is refused at once, a chunked body as soon as it grows past it.'),
    max_container_depth: limit(-1, 'Max nested depth of objects and arrays (the top-level container is depth 1).'),
    max_object_entry_count: limit(-1, 'Max number of entries in an object.'),
    max_object_entry_name_length: limit(-1, 'Max string length of an object entry name, in Unicode characters (an escape is one).'),
    max_array_element_count: limit(-1, 'Max number of elements in an array.'),
    max_string_value_length: limit(-1, 'Max length of a string value, in Unicode characters (an escape is one).'),
    max_number_length: limit(-1, 'Palisade: max length of a number literal in characters (sign, digits, point and exponent): bounds precision and exponent size.'),
    allow_duplicate_object_entry_name: Type.Boolean({
      default: true,
      description: 'Allow duplicate entry names in an object ("a" and "\\u0061" are the same name). false refuses them.',
    }),
    allow_non_json_requests: Type.Boolean({
      default: false,
      description: 'Let requests whose Content-Type is not one of json_content_types through unchecked. false (Kong): every POST, PUT and PATCH body must be valid JSON within the limits, whatever its Content-Type.',
    }),
    json_content_types: Type.Array(Type.String({ pattern: MEDIA_TYPE_MASK }), {
      default: ['application/json', 'application/*+json'],
      description: 'Palisade: the media types that make a request a JSON request for allow_non_json_requests (type/subtype, * for either part, */*+json for a suffix; parameters ignored).',
    }),
    enforcement_mode: Enum(['block', 'log_only'], {
      default: 'block',
      description: 'block: refuse violating requests. log_only: log a warning and proxy them (invalid JSON and non-UTF-8 bodies are refused in both modes, as in Kong).',
    }),
    error_status_code: Type.Integer({ default: 400, minimum: 400, maximum: 499, description: 'The response status code when validation fails.' }),
    error_message: Type.String({ default: 'Bad Request', description: 'The response message when validation fails.' }),
  },
  { additionalProperties: false, description: 'Refuse JSON bodies that are too large, too deep or too wide, checked while they arrive.' },
);

export type JsonThreatProtectionConfig = Static<typeof JsonThreatProtectionSchema>;

const LIMITS = [
  'max_body_size',
  'max_container_depth',
  'max_object_entry_count',
  'max_object_entry_name_length',
  'max_array_element_count',
  'max_string_value_length',
  'max_number_length',
] as const;

/** Kong's entity check: a limit is -1 (unlimited) or positive. */
export function validate(config: JsonThreatProtectionConfig): string | null {
  const zero = LIMITS.filter((name) => config[name] === 0);
  return zero.length > 0 ? `${zero.join(', ')} shouldn't be 0.` : null;
}
