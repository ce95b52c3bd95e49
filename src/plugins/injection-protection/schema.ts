/**
 * Config of the injection-protection plugin: Kong Enterprise's fields, names
 * and defaults (injection_types, locations, custom_injections,
 * enforcement_mode, error_status_code, error_message), plus Palisade's
 * injection types (xss, path_traversal, command, ldap, nosql, ssti), the
 * `cookies` location and the body and header settings.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';

export const KONG_TYPES = ['sql', 'sql_low_sensitivity', 'js', 'ssi', 'java_exception', 'xpath_abbreviated', 'xpath_extended'] as const;
export const PALISADE_TYPES = ['xss', 'path_traversal', 'command', 'ldap', 'nosql', 'ssti'] as const;
export const INJECTION_TYPES = [...KONG_TYPES, ...PALISADE_TYPES];
export const LOCATIONS = ['path', 'query', 'path_and_query', 'headers', 'cookies', 'body'];

export const InjectionProtectionSchema = Type.Object(
  {
    injection_types: Type.Array(
      Enum([...INJECTION_TYPES], {
        description:
          'An injection family: sql (libinjection), sql_low_sensitivity (libinjection, fingerprints of 3+ tokens only), js and xss ' +
          '(libinjection XSS), ssi, java_exception, xpath_abbreviated, xpath_extended (Kong) and path_traversal, command (OS commands), ' +
          'ldap, nosql (MongoDB operators and server-side JavaScript), ssti (template expressions) (Palisade).',
      }),
      { default: ['sql'], uniqueItems: true, description: 'The injection families to look for (Kong default: sql).' },
    ),
    locations: Type.Array(
      Enum(LOCATIONS, {
        description:
          'path (raw request path, per segment), query (parameter names and values), path_and_query (both), headers (every header ' +
          'value except Cookie and skip_headers), cookies (each cookie value), body (JSON keys and strings, form and multipart fields, ' +
          'file names and text files, XML text and attribute values, text bodies and bodies without a type; binary types are not read).',
      }),
      { default: ['path_and_query'], minItems: 1, uniqueItems: true, description: 'Where to look (Kong default: path_and_query).' },
    ),
    custom_injections: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, description: 'A unique name for this injection, reported as its type.' }),
            regex: Type.String({ minLength: 1, description: 'The regex (JavaScript syntax) to match against each decoded value.' }),
          },
          { additionalProperties: false },
        ),
        { description: 'Custom regexes to check for, in the same locations and on the same decoded values as the built-in types.' },
      ),
    ),
    enforcement_mode: Enum(['block', 'log_only'], {
      default: 'block',
      description: 'block: refuse the request with error_status_code; log_only: log a warning and let it through.',
    }),
    error_status_code: Type.Integer({ default: 400, minimum: 400, maximum: 499, description: 'The response status code when an injection is found.' }),
    error_message: Type.String({ default: 'Bad Request', description: 'The response message when an injection is found.' }),
    max_body_size: Type.Integer({
      default: 131072,
      minimum: 1,
      description:
        'Palisade: largest body (bytes, after decompression) read and inspected when the body location is enabled, multipart ' +
        'uploads included (binary types are not read); it bounds the memory and CPU one request can cost (128 KiB by default).',
    }),
    oversized_body: Enum(['block', 'allow'], {
      default: 'block',
      description: 'Palisade: a body larger than max_body_size is refused with 413 (block) or passed uninspected (allow).',
    }),
    uninspectable_body: Enum(['block', 'allow'], {
      default: 'block',
      description:
        'Palisade: a body that cannot be read with confidence (UTF-32, NUL bytes, an unknown charset, an unknown or corrupt ' +
        'Content-Encoding, malformed multipart, XML that is not well-formed) is refused with 415 (block) or passed uninspected (allow).',
    }),
    skip_headers: Type.Array(Type.String({ minLength: 1 }), {
      default: ['authorization', 'proxy-authorization'],
      description: 'Palisade: header names (case-insensitive) not inspected by the headers location (credentials are never inspected by default).',
    }),
  },
  { additionalProperties: false, description: 'Detect SQL, XSS, path traversal, command, LDAP, NoSQL and template injection in requests.' },
);

export type InjectionProtectionConfig = Static<typeof InjectionProtectionSchema>;
