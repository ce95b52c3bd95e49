/**
 * A request body's inspection by what its Content-Type says it holds
 * (media.ts), once its Content-Encoding is undone and its charset decoded
 * (body.ts):
 *
 * - JSON: every entry name and string; a form: every field name and value;
 * - multipart: every part's header values, field names, file names, field
 *   values, and the content of file parts whose type is text (text/*, JSON,
 *   XML, …) — binary parts are skipped (multipart.ts);
 * - XML: text, attribute values, comments, processing instructions, DOCTYPE
 *   literals, never the tags (xml.ts); not well-formed is uninspectable;
 * - text and bodies of no or an unknown type: JSON when it looks like JSON,
 *   XML when it declares itself, a form's fields when it looks like a form
 *   (and a pair whose name is no field name as one value), else the whole
 *   text as one value. An unknown type that does not read as text is taken
 *   for binary.
 *
 * The answer: the injection type found, null (clean or not inspected), or
 * why the body cannot be inspected.
 */
import { decodeText, type Unreadable } from './body.ts';
import { urlDecode } from './decode.ts';
import type { Inspector, Visitors } from './inspect.ts';
import { mediaKind, mimeOf, type MediaKind } from './media.ts';
import { boundaryOf, disposition, parseMultipart, type Part } from './multipart.ts';
import { declaredEncoding, walkXml } from './xml.ts';

export type Outcome = string | null | Unreadable;

/** How a text is taken apart: the body-level reading of text types is `loose`; a multipart part's text is one `value`. */
type Mode = 'json' | 'form' | 'xml' | 'loose' | 'value';

const HAS_CHARSET = /;\s*charset\s*=/i;
/** A body of name=value pairs and nothing else (no whitespace: a form is URL-encoded). */
const FORM_LIKE = /^[^\s=&]+=[^\s&]*(?:&[^\s=&]*(?:=[^\s&]*)?)*$/;
const JSON_LIKE = /^\s*[[{]/;
const XML_LIKE = /^\s*<\?xml[\s?]/;

/** An XML declaration's encoding counts as a charset parameter when the Content-Type has none (RFC 7303 §3.2). */
function xmlContentType(contentType: string, bytes: Buffer): string {
  if (HAS_CHARSET.test(contentType)) return contentType;
  const encoding = declaredEncoding(bytes);
  return encoding === null ? contentType : `${contentType}; charset=${encoding}`;
}

interface Reading {
  readonly visit: Visitors;
  readonly xssType: string | null;
}

/** An XML text's values (xml.ts); not well-formed: uninspectable when `strict`, else the text as one value. */
function xml(r: Reading, text: string, strict: boolean, active: boolean): Outcome {
  const found = walkXml(text, r.visit.value, r.xssType, active);
  if (found === null || typeof found === 'string') return found;
  return strict ? { kind: 'uninspectable', reason: found.malformed } : r.visit.value(text);
}

/** What a form field's name is made of; anything else in a name means its '=' belonged to a payload (`<svg/onload=…>`). */
const ODD_NAME = /[^\w.\-[\]$:]/;

/** A text that looks like a form: its fields, and unsplit each pair whose name is not a field name. */
function formLike(r: Reading, text: string): Outcome {
  const found = r.visit.params(text);
  if (found !== null) return found;
  for (const pair of text.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || !ODD_NAME.test(urlDecode(pair.slice(0, eq), true))) continue;
    const type = r.visit.value(pair);
    if (type !== null) return type;
  }
  return null;
}

/** One decoded text, taken apart by `mode`. `strictXml`: XML that is not well-formed is uninspectable (else: one value). */
function inspectText(r: Reading, mode: Mode, text: string, utf8: () => Buffer, strictXml: boolean): Outcome {
  switch (mode) {
    case 'json':
      return r.visit.json(utf8());
    case 'form':
      return r.visit.params(text);
    case 'value':
      return r.visit.value(text);
    case 'xml':
      return xml(r, text, strictXml, false);
    case 'loose': {
      if (JSON_LIKE.test(text)) return r.visit.json(utf8());
      // Text that declares itself XML without a type that says so: its markup is judged as a page's would be.
      if (XML_LIKE.test(text)) return xml(r, text, false, true);
      const trimmed = text.trim();
      return FORM_LIKE.test(trimmed) ? formLike(r, trimmed) : r.visit.value(text);
    }
  }
}

/** Each reading of `bytes` (see decodeText) taken apart by `mode`; null when clean. */
function inspectBytes(r: Reading, mode: Mode, bytes: Buffer, contentType: string, strictXml: boolean): Outcome {
  const decoded = decodeText(bytes, mode === 'xml' ? xmlContentType(contentType, bytes) : contentType);
  if (decoded.kind !== 'text') return decoded;
  for (let i = 0; i < decoded.texts.length; i++) {
    const text = decoded.texts[i]!;
    const utf8 = () => (i === 0 && decoded.utf8 !== null ? decoded.utf8 : Buffer.from(text, 'utf8'));
    const found = inspectText(r, mode, text, utf8, strictXml);
    if (found !== null) return found;
  }
  return null;
}

const PART_MODE: Partial<Record<MediaKind, Mode>> = { json: 'json', form: 'form', xml: 'xml' };

/** A part's content as sent and, under a Content-Transfer-Encoding, as decoded. */
function contents(content: Buffer, transferEncoding: string | undefined): Buffer[] {
  if (transferEncoding === 'base64') return [content, Buffer.from(content.toString('latin1'), 'base64')];
  if (transferEncoding === 'quoted-printable') {
    const qp = content.toString('latin1').replace(/=\r?\n/g, '').replace(/=([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return [content, Buffer.from(qp, 'latin1')];
  }
  return [content];
}

/** One part: header values, names, file names, then the content (see the module comment). */
function inspectPart(r: Reading, part: Part, formData: boolean): Outcome {
  const dispositions: string[] = [];
  let contentType: string | undefined;
  let transferEncoding: string | undefined;
  for (const [name, value] of part.headers) {
    if (name === 'content-disposition') {
      dispositions.push(value);
      continue;
    }
    if (name === 'content-type') contentType ??= value;
    else if (name === 'content-transfer-encoding') transferEncoding ??= value.trim().toLowerCase();
    const found = r.visit.value(value);
    if (found !== null) return found;
  }
  const d = disposition(dispositions);
  for (const [values, test] of [[d.names, r.visit.name], [d.filenames, r.visit.filename], [d.others, r.visit.value]] as const) {
    for (const v of values) {
      const found = test(v);
      if (found !== null) return found;
    }
  }
  // RFC 7578 §4.4: a part without a Content-Type is text/plain. In a form, a part without a file name is a field whatever
  // its type (PHP, Werkzeug and others read it as one); any other part is a file, inspected only when its type is text.
  const field = d.filenames.length === 0 && (formData || contentType === undefined);
  const kind = contentType === undefined ? 'text' : mediaKind(contentType);
  if (!field && kind === 'binary') return null;
  for (const content of contents(part.content, transferEncoding)) {
    const found = inspectBytes(r, PART_MODE[kind] ?? 'value', content, contentType ?? 'text/plain', false);
    if (found === null) continue;
    if (typeof found === 'string') return found;
    // A field that cannot be read is the body's problem; a file that cannot be read as text is binary in disguise.
    if (field) return { kind: 'uninspectable', reason: `a multipart field: ${found.kind === 'uninspectable' ? found.reason : 'too large'}` };
  }
  return null;
}

function inspectMultipart(inspector: Inspector, body: Buffer, contentType: string): Outcome {
  const boundary = boundaryOf(contentType);
  if (typeof boundary !== 'string') return { kind: 'uninspectable', reason: boundary.error };
  const { parts, error } = parseMultipart(body, boundary);
  const formData = mimeOf(contentType) === 'multipart/form-data';
  // The parts read before a malformation are inspected first: an injection there is refused whatever uninspectable_body says.
  const found = inspector.walk((visit) => {
    const r = { visit, xssType: inspector.xssType };
    for (const part of parts) {
      const f = inspectPart(r, part, formData);
      if (f !== null) return f;
    }
    return null;
  });
  if (found !== null || error === null) return found;
  return { kind: 'uninspectable', reason: error };
}

const BODY_MODE: Record<Exclude<MediaKind, 'binary' | 'multipart'>, Mode> = { json: 'json', form: 'form', xml: 'xml', text: 'loose', unknown: 'loose' };

/**
 * A request body of media kind `kind` (not binary), its Content-Encoding undone.
 */
export function inspectBody(inspector: Inspector, kind: Exclude<MediaKind, 'binary'>, body: Buffer, contentType: string): Outcome {
  if (kind === 'multipart') return inspectMultipart(inspector, body, contentType);
  const found = inspector.walk((visit) => inspectBytes({ visit, xssType: inspector.xssType }, BODY_MODE[kind], body, contentType, true));
  // No type or one this plugin does not know, and not text: binary, not inspected.
  return kind === 'unknown' && found !== null && typeof found !== 'string' ? null : found;
}
