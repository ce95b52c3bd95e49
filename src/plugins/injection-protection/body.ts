/**
 * From the bytes of a request body (its Content-Encoding already undone by
 * the PDK's decodeBody, stopping at max_body_size) to the text(s) an
 * application could read in them: the character encoding found the way JSON parsers
 * find it — a byte-order mark, the RFC 4627 §3 pattern of NULs in the first
 * four bytes, the charset parameter — and decoded. Whatever cannot be read
 * with confidence (UTF-32, NUL bytes, an unknown charset or coding, corrupt
 * compressed data) is reported as such rather than inspected as noise: the
 * plugin refuses it (uninspectable_body: block) or lets it through.
 */
export type BodyText =
  /** `texts`: each reading of the body to inspect (usually one); `utf8`: the UTF-8 bytes of the first, when available. */
  | { readonly kind: 'text'; readonly texts: readonly string[]; readonly utf8: Buffer | null }
  | { readonly kind: 'uninspectable'; readonly reason: string }
  | { readonly kind: 'oversized' };

/** Why a body has no text to inspect. */
export type Unreadable = Exclude<BodyText, { kind: 'text' }>;

const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;

/** UTF-16/UTF-32 from a byte-order mark, else from where the NULs of ASCII characters fall (RFC 4627 §3). */
function sniff(b: Buffer): { encoding: string; bom: number } | null {
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  if (b0 === 0xef && b1 === 0xbb && b2 === 0xbf) return { encoding: 'utf-8', bom: 3 };
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return { encoding: 'utf-32be', bom: 4 };
  if (b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) return { encoding: 'utf-32le', bom: 4 };
  if (b0 === 0xfe && b1 === 0xff) return { encoding: 'utf-16be', bom: 2 };
  if (b0 === 0xff && b1 === 0xfe) return { encoding: 'utf-16le', bom: 2 };
  if (b.length < 2) return null;
  if (b0 === 0 && b1 === 0 && b.length >= 4 && b3 !== 0) return { encoding: 'utf-32be', bom: 0 };
  if (b0 !== 0 && b1 === 0 && b.length >= 4 && b2 === 0 && b3 === 0) return { encoding: 'utf-32le', bom: 0 };
  if (b0 === 0 && b1 !== 0) return { encoding: 'utf-16be', bom: 0 };
  if (b0 !== 0 && b1 === 0) return { encoding: 'utf-16le', bom: 0 };
  return null;
}

/** The WHATWG name of a charset label, or null when TextDecoder does not know it (UTF-7, UTF-32, made-up names). */
function canonical(label: string): string | null {
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return null;
  }
}

const decode = (b: Buffer, encoding: string) => new TextDecoder(encoding).decode(b);

/** A client's token, fit to be named in a log line and an answer. */
export const token = (s: string) => s.replace(/[^\w.:+-]/g, '').slice(0, 40);


/** The texts of (uncompressed) bytes whose media type is `contentType`: charset from the bytes, else the label, else UTF-8. */
export function decodeText(body: Buffer, contentType: string): BodyText {
  const m = CHARSET.exec(contentType);
  const label = m === null ? null : (m[1] ?? m[2] ?? '').trim().toLowerCase();
  const declared = label === null || label === '' ? null : canonical(label);
  if (label !== null && label !== '' && declared === null) {
    return { kind: 'uninspectable', reason: /^utf-?32/.test(label) ? 'UTF-32' : `charset ${token(label)}` };
  }
  const found = sniff(body);
  if (found !== null && found.encoding.startsWith('utf-32')) return { kind: 'uninspectable', reason: 'UTF-32' };

  let texts: string[];
  let utf8: Buffer | null = null;
  // Bytes win over the label, as JSON parsers that sniff do (a UTF-8 reader would see NULs and give up).
  const encoding = found?.encoding ?? declared ?? 'utf-8';
  const content = found !== null && found.bom > 0 ? body.subarray(found.bom) : body;
  if (encoding === 'utf-8') {
    utf8 = content;
    texts = [content.toString('utf8')];
  } else if (encoding === 'utf-16le' && found === null && label !== 'utf-16le') {
    // "utf-16" without a BOM or a NUL pattern: little-endian for browsers, big-endian for RFC 2781 and Java.
    texts = [decode(content, 'utf-16le'), decode(content, 'utf-16be')];
  } else if (encoding === 'utf-16le' || encoding === 'utf-16be') {
    texts = [decode(content, encoding)];
  } else {
    // A legacy charset: what an application that honours it reads, and each byte as itself for one that does not.
    texts = [decode(content, encoding)];
    const bytes = content.toString('latin1');
    if (bytes !== texts[0]) texts.push(bytes);
  }
  if (utf8 !== null ? utf8.includes(0) : texts.some((t) => t.includes('\u0000'))) return { kind: 'uninspectable', reason: 'NUL bytes' };
  return { kind: 'text', texts, utf8 };
}
