/**
 * Finding a key name in a query string or a request body, with Kong's
 * semantics (ngx.decode_args, kong.request.get_body): a value is a string, a
 * repeated name is DUPLICATE ("Duplicate API key found"), a name without
 * '=' is BARE (Lua `true`: neither a key nor a duplicate). And removing it
 * again for hide_credentials, leaving the rest byte for byte.
 */

/** The name occurs more than once (Kong: a Lua table). */
export const DUPLICATE = 1;
/** `name` without `=` (Kong: the boolean true). */
export const BARE = 2;
export type ArgValue = string | typeof DUPLICATE | typeof BARE | undefined;

/** Percent-decoding with '+' as space; malformed escapes are left as they are (ngx.unescape_uri). */
export function unescape(s: string): string {
  const plus = s.includes('+') ? s.replaceAll('+', ' ') : s;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

function keyIs(raw: string, start: number, end: number, name: string): boolean {
  if (end - start === name.length && raw.startsWith(name, start)) return true;
  // Only an escaped name can still match.
  const key = raw.slice(start, end);
  return (key.includes('%') || key.includes('+')) && unescape(key) === name;
}

/** The value of `name` in an application/x-www-form-urlencoded string (a query string or a form body). */
export function argValue(raw: string, name: string): ArgValue {
  let found: ArgValue;
  let start = 0;
  const len = raw.length;
  while (start < len) {
    let end = raw.indexOf('&', start);
    if (end < 0) end = len;
    if (end > start) {
      let eq = raw.indexOf('=', start);
      if (eq < 0 || eq > end) eq = end;
      if (keyIs(raw, start, eq, name)) {
        if (found !== undefined) return DUPLICATE;
        found = eq === end ? BARE : unescape(raw.slice(eq + 1, end));
      }
    }
    start = end + 1;
  }
  return found;
}

/** The same string without any `name` argument (Kong's clear_query_arg). */
export function withoutArg(raw: string, name: string): string {
  const kept: string[] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (keyIs(part, 0, eq < 0 ? part.length : eq, name)) continue;
    kept.push(part);
  }
  return kept.join('&');
}

/** A parsed body: where a key name is looked up, and how it is removed again. */
export interface BodyArgs {
  get(name: string): ArgValue;
  /** The body without `name`, or null when nothing changes. */
  without(name: string): Buffer | null;
}

const EMPTY_BODY: BodyArgs = { get: () => undefined, without: () => null };

export type BodyKind = 'form' | 'json' | 'multipart' | null;

/** The body kinds Kong's get_body understands, by Content-Type prefix. */
export function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined) return null;
  const ct = contentType.trimStart().toLowerCase();
  if (ct.startsWith('application/x-www-form-urlencoded')) return 'form';
  if (ct.startsWith('application/json')) return 'json';
  if (ct.startsWith('multipart/form-data')) return 'multipart';
  return null;
}

/** Parse a body of a known kind; a body that does not parse holds no key (Kong: EMPTY). */
export function parseBody(kind: BodyKind, body: Buffer, contentType: string): BodyArgs {
  if (kind === 'form') {
    const text = body.toString('utf8');
    return {
      get: (name) => argValue(text, name),
      without: (name) => {
        const next = withoutArg(text, name);
        return next === text ? null : Buffer.from(next);
      },
    };
  }
  if (kind === 'json') return parseJson(body);
  if (kind === 'multipart') return parseMultipart(body, contentType);
  return EMPTY_BODY;
}

function parseJson(body: Buffer): BodyArgs {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return EMPTY_BODY;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return EMPTY_BODY;
  const obj = doc as Record<string, unknown>;
  return {
    get(name) {
      if (!Object.hasOwn(obj, name)) return undefined;
      const v = obj[name];
      if (typeof v === 'string') return v;
      // Kong: an object or array is a Lua table, reported as a duplicate; numbers, booleans and null are skipped.
      return v !== null && typeof v === 'object' ? DUPLICATE : BARE;
    },
    without(name) {
      if (!Object.hasOwn(obj, name)) return null;
      delete obj[name];
      return Buffer.from(JSON.stringify(obj));
    },
  };
}

interface Part {
  name: string | null;
  /** Offset of the part (after the delimiter line) and of its end (before the next CRLF--boundary). */
  start: number;
  end: number;
  value: string;
}

function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]!) : null;
}

/** multipart/form-data (RFC 7578): parts by name; the raw bytes of the others are kept when one is removed. */
function parseMultipart(body: Buffer, contentType: string): BodyArgs {
  const boundary = boundaryOf(contentType);
  if (boundary === null) return EMPTY_BODY;
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) return EMPTY_BODY;
  const preambleEnd = pos;
  let closed = false;
  while (pos >= 0) {
    let cursor = pos + delimiter.length;
    if (body[cursor] === 0x2d && body[cursor + 1] === 0x2d) {
      closed = true;
      break;
    }
    const lineEnd = body.indexOf('\r\n', cursor);
    if (lineEnd < 0) break;
    cursor = lineEnd + 2;
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), cursor);
    if (next < 0) break;
    const headEnd = body.indexOf('\r\n\r\n', cursor);
    let name: string | null = null;
    let value = '';
    if (headEnd >= 0 && headEnd <= next) {
      const head = body.toString('utf8', cursor, headEnd);
      const disp = /^content-disposition:[^\r\n]*?;\s*name="([^"]*)"/im.exec(head) ?? /^content-disposition:[^\r\n]*?;\s*name=([^;\s]+)/im.exec(head);
      name = disp ? disp[1]! : null;
      value = body.toString('utf8', headEnd + 4, next);
    }
    parts.push({ name, start: pos, end: next, value });
    pos = next + 2;
  }
  if (!closed) return EMPTY_BODY;
  return {
    get(name) {
      let found: ArgValue;
      for (const p of parts) {
        if (p.name !== name) continue;
        if (found !== undefined) return DUPLICATE;
        found = p.value;
      }
      return found;
    },
    without(name) {
      if (!parts.some((p) => p.name === name)) return null;
      const out: Buffer[] = [body.subarray(0, preambleEnd)];
      for (const p of parts) if (p.name !== name) out.push(body.subarray(p.start, p.end), Buffer.from('\r\n'));
      // The closing delimiter and any epilogue.
      out.push(body.subarray(body.lastIndexOf(delimiter)));
      return Buffer.concat(out);
    },
  };
}
