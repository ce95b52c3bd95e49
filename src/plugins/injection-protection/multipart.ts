/**
 * A multipart body (RFC 2046 §5.1, RFC 7578) taken apart over its buffered
 * bytes: every part between the first delimiter and the close delimiter,
 * with its header fields and its content (a view of the body, not a copy).
 *
 * Written for inspection, not for an application: it must see at least what
 * any server's parser could read, so it is lenient where parsers differ and
 * strict where a difference could hide a part. A delimiter line may end in
 * CRLF or a bare LF (PHP and others split on either); every part is returned
 * whatever its Content-Disposition (busboy skips parts without one); every
 * `name`, `filename` and `filename*` parameter is kept (a parser that ignores
 * `filename*` reads `filename`, and the other way round) and no directory is
 * stripped from a file name. What is not well-formed — no boundary, a
 * delimiter followed by anything but `--`/a line end, a header line that is
 * not `token: value`, no close delimiter — is reported: the caller inspects
 * the parts found before it and then treats the body as uninspectable.
 */

export interface Part {
  /** Header fields in order, names in lower case (folded lines joined). */
  readonly headers: readonly (readonly [string, string])[];
  readonly content: Buffer;
}

export interface Multipart {
  readonly parts: readonly Part[];
  /** Why the body is not well-formed multipart, or null. */
  readonly error: string | null;
}

const BOUNDARY = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))/gi;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/** The boundary parameter of a multipart Content-Type, or why there is no usable one (RFC 2046: 1 to 70 characters). */
export function boundaryOf(contentType: string): string | { error: string } {
  const found = new Set<string>();
  for (const m of contentType.matchAll(BOUNDARY)) found.add(m[1] ?? m[2]!);
  if (found.size === 0) return { error: 'multipart without a boundary' };
  if (found.size > 1) return { error: 'multipart with two boundaries' };
  const boundary = [...found][0]!;
  if (boundary.length === 0 || boundary.length > 200) return { error: 'multipart boundary of an invalid length' };
  return boundary;
}

/** The next `--boundary` at the start of a line (or of the body) from `from`, or -1. */
function delimiterAt(body: Buffer, delimiter: Buffer, from: number): number {
  for (let i = body.indexOf(delimiter, from); i >= 0; i = body.indexOf(delimiter, i + 1)) {
    if (i === 0 || body[i - 1] === LF) return i;
  }
  return -1;
}

/** Header lines from `at` to the empty line; the offset after it, or the error. */
function readHeaders(body: Buffer, at: number, headers: [string, string][]): number | string {
  let p = at;
  for (;;) {
    const eol = body.indexOf(LF, p);
    if (eol < 0) return 'a multipart part header does not end';
    const line = body.toString('latin1', p, eol > p && body[eol - 1] === CR ? eol - 1 : eol);
    p = eol + 1;
    if (line === '') return p;
    const last = headers[headers.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      headers[headers.length - 1] = [last[0], `${last[1]} ${line.trim()}`];
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (!TOKEN.test(name)) return 'a multipart part header is malformed';
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
}

/** The parts of `body` (already buffered and bounded by max_body_size). Linear: one indexOf pass for the delimiters. */
export function parseMultipart(body: Buffer, boundary: string): Multipart {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Part[] = [];
  let at = delimiterAt(body, delimiter, 0);
  if (at < 0) return { parts, error: 'the multipart boundary is not in the body' };
  for (;;) {
    let p = at + delimiter.length;
    if (body[p] === DASH && body[p + 1] === DASH) return { parts, error: null };
    while (body[p] === 0x20 || body[p] === 0x09) p++;
    if (body[p] === CR) p++;
    if (body[p] !== LF) return { parts, error: p >= body.length ? 'the multipart body has no close delimiter' : 'a multipart delimiter line is malformed' };
    const headers: [string, string][] = [];
    const start = readHeaders(body, p + 1, headers);
    if (typeof start === 'string') return { parts, error: start };
    const next = delimiterAt(body, delimiter, start);
    // The line break before a delimiter belongs to it.
    let end = next < 0 ? body.length : next - 1;
    if (next > 0 && end > start && body[end - 1] === CR) end--;
    parts.push({ headers, content: body.subarray(start, Math.max(start, end)) });
    if (next < 0) return { parts, error: 'the multipart body has no close delimiter' };
    at = next;
  }
}

export interface Disposition {
  /** Every name parameter. */
  readonly names: string[];
  /** Every filename and (decoded) filename* parameter. */
  readonly filenames: string[];
  /** The other parameters' values. */
  readonly others: string[];
}

const PARAM = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*))/g;

/** RFC 8187 ext-value: charset'language'percent-encoded bytes. */
function extValue(v: string): string {
  const m = /^([\w!#$%&+^`{}~-]*)'[^']*'(.*)$/.exec(v);
  if (m === null) return v;
  const bytes = Buffer.from(m[2]!.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  return bytes.toString(/^iso-8859-1$|^latin1$/i.test(m[1]!) ? 'latin1' : 'utf8');
}

/** The parameters of Content-Disposition header values. */
export function disposition(values: readonly string[]): Disposition {
  const d: Disposition = { names: [], filenames: [], others: [] };
  for (const value of values) {
    for (const m of value.matchAll(PARAM)) {
      const key = m[1]!.toLowerCase();
      const v = m[2] !== undefined ? m[2].replace(/\\(["\\])/g, '$1') : m[3]!.trim();
      if (key === 'name') d.names.push(v);
      else if (key === 'filename') d.filenames.push(v);
      else if (key === 'filename*') d.filenames.push(extValue(v));
      else d.others.push(v);
    }
  }
  return d;
}
