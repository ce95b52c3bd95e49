/**
 * Config of the bot-detection plugin: Kong's fields, names and defaults
 * (kong/plugins/bot-detection/schema.lua, Kong 3.x), and Palisade's
 * `missing_user_agent`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';

const Patterns = (what: 'allowed' | 'denied') =>
  Type.Array(
    Type.String({
      minLength: 1,
      description: 'A regular expression (PCRE-style as in Kong, run as a JavaScript RegExp; a leading (?i) makes it case-insensitive), unanchored.',
    }),
    {
      default: [],
      description:
        what === 'allowed'
          ? 'An array of regular expressions that should be allowed. The regular expressions will be checked against the `User-Agent` header; a match lets the request through, before `deny` and the built-in rules.'
          : 'An array of regular expressions that should be denied. The regular expressions will be checked against the `User-Agent` header; a match is refused with 403, as a bot.',
    },
  );

export const BotDetectionSchema = Type.Object(
  {
    allow: Patterns('allowed'),
    deny: Patterns('denied'),
    missing_user_agent: Enum(['allow', 'deny'], {
      default: 'allow',
      description:
        "Palisade: a request without a User-Agent header, or with an empty one: 'allow' lets it through (Kong's behaviour), 'deny' refuses it with 403 like a bot (browsers and ordinary HTTP clients always send one).",
    }),
  },
  { additionalProperties: false, description: 'Refuse requests from bots and scanners by their User-Agent.' },
);

export type BotDetectionConfig = Static<typeof BotDetectionSchema>;
