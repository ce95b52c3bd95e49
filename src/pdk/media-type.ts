/**
 * Media-type masks, as Kong's plugins match Content-Type against lists
 * (xml-threat-protection's checked_content_types): `type/subtype` where
 * either part may be `*`; Palisade also accepts a structured-syntax suffix
 * (`application/*+json` matches application/vnd.api+json). Parameters
 * (`; charset=…`) are ignored, comparison is case-insensitive.
 */

/** JSON Schema pattern of a mask (for plugin schemas). */
export const MEDIA_TYPE_MASK = '^[^\\s/;]+/[^\\s/;]+$';

interface Mask {
  readonly type: string;
  readonly subtype: string;
  /** "+json" for "*+json", else null. */
  readonly suffix: string | null;
}

/** Compiles masks once; the returned test takes a Content-Type header value (undefined = none: no match). */
export function mediaTypeMatcher(masks: readonly string[]): (contentType: string | undefined) => boolean {
  const compiled: Mask[] = masks.map((m) => {
    const lower = m.toLowerCase();
    const slash = lower.indexOf('/');
    const subtype = lower.slice(slash + 1);
    return { type: lower.slice(0, slash), subtype, suffix: subtype.startsWith('*+') ? subtype.slice(1) : null };
  });
  return (value) => {
    if (value === undefined || compiled.length === 0) return false;
    const semi = value.indexOf(';');
    const mediaType = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
    const slash = mediaType.indexOf('/');
    if (slash <= 0 || slash === mediaType.length - 1) return false;
    const type = mediaType.slice(0, slash);
    const subtype = mediaType.slice(slash + 1);
    for (const m of compiled) {
      if (m.type !== '*' && m.type !== type) continue;
      if (m.subtype === '*' || m.subtype === subtype || (m.suffix !== null && subtype.endsWith(m.suffix))) return true;
    }
    return false;
  };
}
