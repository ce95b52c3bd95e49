/**
 * What a value may mean once decoded: attackers hide payloads under extra
 * encodings (double URL encoding, %uXXXX, HTML entities, \u003c escapes) that
 * the application or a browser undoes later. `decodedForms` returns the value
 * and each further decoding of it, so the detectors see every layer.
 */

const MAX_ROUNDS = 3;

const NAMED_ENTITIES: Record<string, string> = {
  lt: '<', gt: '>', quot: '"', apos: "'", amp: '&', sol: '/', bsol: '\\', colon: ':', semi: ';', lpar: '(', rpar: ')',
  lbrack: '[', rbrack: ']', lsqb: '[', rsqb: ']', lcub: '{', rcub: '}', lbrace: '{', rbrace: '}', equals: '=', excl: '!',
  quest: '?', num: '#', percnt: '%', dollar: '$', ast: '*', plus: '+', comma: ',', period: '.', grave: '`', vert: '|',
  verbar: '|', tab: '\t', newline: '\n', nbsp: '\u00a0', hyphen: '-', dash: '-', lowbar: '_', commat: '@', Hat: '^',
};

const HAS_PERCENT = /%(?:[0-9a-f]{2}|u[0-9a-f]{4})/i;
const HAS_ENTITY = /&(?:#[0-9]+|#x[0-9a-f]+|[a-z]+);?/i;
const HAS_ESCAPE = /\\(?:u[0-9a-f]{4}|u\{[0-9a-f]{1,6}\}|x[0-9a-f]{2})/i;

/** %XX (UTF-8, overlong %C0/%C1 forms folded as old IIS did), %uXXXX; '+' is a space when `plus` (form encoding). */
export function urlDecode(s: string, plus: boolean): string {
  if (!s.includes('%') && !(plus && s.includes('+'))) return s;
  const bytes: number[] = [];
  let out = '';
  const flush = () => {
    if (bytes.length) out += Buffer.from(bytes).toString('utf8');
    bytes.length = 0;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      const u = /^u([0-9a-f]{4})/i.exec(s.slice(i + 1, i + 6));
      if (u) {
        flush();
        out += String.fromCharCode(parseInt(u[1]!, 16));
        i += 5;
        continue;
      }
      const hex = s.slice(i + 1, i + 3);
      if (/^[0-9a-f]{2}$/i.test(hex)) {
        const b = parseInt(hex, 16);
        const next = /^%([89ab][0-9a-f])/i.exec(s.slice(i + 3, i + 6));
        if ((b === 0xc0 || b === 0xc1) && next) {
          // overlong encoding of an ASCII character (%c0%ae = '.', %c0%af = '/')
          bytes.push(((b & 0x1f) << 6) | (parseInt(next[1]!, 16) & 0x3f));
          i += 5;
        } else {
          bytes.push(b);
          i += 2;
        }
        continue;
      }
    }
    flush();
    out += plus && c === '+' ? ' ' : c;
  }
  flush();
  return out;
}

function entityDecode(s: string): string {
  return s.replace(/&(?:#([0-9]{1,7})|#x([0-9a-f]{1,6})|([a-z]{2,8}));?/gi, (m, dec?: string, hex?: string, name?: string) => {
    if (name !== undefined) return NAMED_ENTITIES[name] ?? NAMED_ENTITIES[name.toLowerCase()] ?? m;
    const code = dec !== undefined ? parseInt(dec, 10) : parseInt(hex!, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

function escapeDecode(s: string): string {
  return s.replace(/\\(?:u([0-9a-f]{4})|u\{([0-9a-f]{1,6})\}|x([0-9a-f]{2}))/gi, (m, u4?: string, ub?: string, x2?: string) => {
    const code = parseInt(u4 ?? ub ?? x2!, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

/** Look-alikes that servers map to ASCII ("best fit"): division slash, fraction slash, fullwidth / \\ . < > ' ". */
const LOOKALIKES: Record<string, string> = {
  '\u2215': '/', '\u2044': '/', '\u29f8': '/', '\uff0f': '/', '\uff3c': '\\', '\u29f5': '\\', '\uff0e': '.', '\uff1c': '<',
  '\uff1e': '>', '\uff07': "'", '\uff02': '"', '\u02bc': "'",
};
const HAS_LOOKALIKE = /[\u2215\u2044\u29f8\uff0f\uff3c\u29f5\uff0e\uff1c\uff1e\uff07\uff02\u02bc]/g;

/** One round: every encoding layer present is undone. */
function decodeOnce(s: string): string {
  let d = s;
  if (HAS_PERCENT.test(d)) d = urlDecode(d, true);
  if (d.includes('\\') && HAS_ESCAPE.test(d)) d = escapeDecode(d);
  if (d.includes('&') && HAS_ENTITY.test(d)) d = entityDecode(d);
  d = d.replace(HAS_LOOKALIKE, (c) => LOOKALIKES[c]!);
  return d;
}

/** Could this value hide an encoded layer? (cheap pre-check: most values have none of these characters) */
const MAY_ENCODE = /[%&\\\u2215\u2044\u29f8\uff0f\uff3c\u29f5\uff0e\uff1c\uff1e\uff07\uff02\u02bc]/;

/** A form that still holds %XX escapes and has a more decoded form after it (the tokenizers skip it). */
export function isIntermediate(forms: readonly string[], i: number): boolean {
  return i < forms.length - 1 && HAS_PERCENT.test(forms[i]!);
}

/**
 * Old Internet Explorer read a page declared US-ASCII by dropping the high
 * bit of each byte: "¼script¾" was "<script>". Only a value holding both of
 * those characters gets this form.
 */
function sevenBit(s: string): string {
  return s.replace(/[\u0080-\u00ff]/g, (c) => String.fromCharCode(c.charCodeAt(0) & 0x7f));
}

/** The value, then each further decoding (at most 3 more), each form different from every one before it. */
export function decodedForms(value: string): string[] {
  const forms = [value];
  if (value.includes('\u00bc') && value.includes('\u00be')) forms.push(sevenBit(value));
  if (!MAY_ENCODE.test(value)) return forms;
  let cur = value;
  for (let i = 0; i < MAX_ROUNDS; i++) {
    const next = decodeOnce(cur);
    if (forms.includes(next)) break;
    forms.push(next);
    cur = next;
    if (!MAY_ENCODE.test(cur)) break;
  }
  return forms;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** One code unit per UTF-8 byte: how libinjection (a C library) reads its input. */
export function toBytes(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}
