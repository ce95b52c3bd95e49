/**
 * Config of the xml-threat-protection plugin: Kong Enterprise's fields,
 * names, defaults and bounds (xml-threat-protection/schema.lua). Sizes are in
 * bytes (UTF-8), counts per element.
 */
import { Type, type Static } from '@sinclair/typebox';
import { MEDIA_TYPE_MASK } from '../../pdk/index.ts';

const KB = 1024;
const MB = KB * KB;

const size = (def: number, description: string) => Type.Integer({ default: def, minimum: 1, description });
const types = (def: string[], description: string) => Type.Array(Type.String({ pattern: MEDIA_TYPE_MASK }), { default: def, uniqueItems: true, description });

export const XmlThreatProtectionSchema = Type.Object(
  {
    checked_content_types: types(['application/xml'], 'Content-Type values whose payloads are validated (type/subtype, * for either part, */*+xml for a suffix).'),
    allowed_content_types: types([], 'Content-Type values whose payloads are let through without validation. A body of any other type (or without Content-Type) is refused with 400.'),
    allow_dtd: Type.Boolean({
      default: false,
      description: 'Kept for Kong compatibility, must stay false: Palisade refuses every DOCTYPE (XXE, entity expansion), and refuses true at load.',
    }),
    namespace_aware: Type.Boolean({
      default: true,
      description: 'Parse namespaces: prefixes and namespace declarations are checked by prefix, namespaceuri and max_namespaces. When false they count as plain names and attributes.',
    }),
    max_depth: size(50, 'Maximum depth of tags. Text, comments and the like are not another level.'),
    max_children: size(100, 'Maximum number of children of an element (elements, text, comments, processing instructions, CDATA); adjacent text and CDATA count as one.'),
    max_attributes: size(100, 'Maximum number of attributes on a tag (namespace declarations too when namespace_aware is false).'),
    max_namespaces: size(20, 'Maximum number of namespaces declared on a tag (namespace_aware).'),
    document: size(10 * MB, 'Maximum size of the entire document: a larger declared Content-Length is refused at once, a chunked body once it grows past it.'),
    buffer: size(1 * MB, 'Maximum size of the unparsed buffer: what the parser holds between two events (a tag with all its attributes, a text, a comment), in characters.'),
    comment: size(1 * KB, 'Maximum size of comments.'),
    localname: size(1 * KB, 'Maximum size of the local name of tags and attributes (the whole name when namespace_aware is false).'),
    prefix: size(1 * KB, 'Maximum size of a namespace prefix of tags, attributes and declarations (namespace_aware).'),
    namespaceuri: size(1 * KB, 'Maximum size of a namespace URI (namespace_aware).'),
    attribute: size(1 * MB, 'Maximum size of an attribute value.'),
    text: size(1 * MB, 'Maximum text inside a tag, counted over adjacent text and CDATA combined.'),
    pitarget: size(1 * KB, 'Maximum size of processing instruction targets.'),
    pidata: size(1 * KB, 'Maximum size of processing instruction data.'),
    entityname: size(1 * KB, 'Kong: maximum size of entity names in an EntityDecl. Accepted, unused: Palisade refuses every entity declaration.'),
    entity: size(1 * KB, 'Kong: maximum size of entity values in an EntityDecl. Accepted, unused: Palisade refuses every entity declaration.'),
    entityproperty: size(1 * KB, 'Kong: maximum size of systemId, publicId or notationName in an EntityDecl. Accepted, unused: Palisade refuses every entity declaration.'),
    bla_max_amplification: Type.Number({
      default: 100,
      exclusiveMinimum: 1,
      description: 'Kong: billion-laughs amplification limit. Accepted, unused: Palisade never expands entities.',
    }),
    bla_threshold: Type.Integer({
      default: 8 * MB,
      exclusiveMinimum: KB,
      description: 'Kong: billion-laughs protection threshold. Accepted, unused: Palisade never expands entities.',
    }),
  },
  { additionalProperties: false, description: 'Refuse XML bodies that are too large, too deep or too wide, and every DTD; checked while they arrive.' },
);

export type XmlThreatProtectionConfig = Static<typeof XmlThreatProtectionSchema>;

export function validate(config: XmlThreatProtectionConfig): string | null {
  if (config.allow_dtd) return 'allow_dtd: Palisade refuses every DTD (external entities and entity expansion cannot be made safe); remove it or set it to false';
  return null;
}
