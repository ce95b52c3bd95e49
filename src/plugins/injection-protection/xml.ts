/**
 * The values of an XML document, the way an application reads them: each
 * element's own text (its text and CDATA children joined, so a comment or a
 * child element cannot split a payload in two), every attribute value,
 * comments, processing instructions and the quoted literals of a DOCTYPE
 * (SYSTEM identifiers, entity values). Tags themselves are markup, not
 * values: the XSS detector never sees `<soap:Envelope …>`.
 *
 * Markup is judged only where it is active content a browser would run: in an
 * SVG or XHTML document (an element named svg or html, or the SVG/XHTML
 * namespace) — or anywhere, for a text that says it is XML without a type
 * that says so (it may end up in a page) —, a `script` element or an `on…`
 * event handler attribute is XSS.
 *
 * saxes (conformant, never reads a DTD nor expands a declared entity) parses;
 * a document that is not well-formed — including one that references an
 * entity it declares in a DOCTYPE, the XXE pattern — is reported as such.
 */
import { SaxesParser, type SaxesTagPlain } from 'saxes';

export interface Malformed {
  readonly malformed: string;
}

/** A value's finding (an injection type), or null. */
export type Visit = (value: string) => string | null;

const ACTIVE_NS = new Set(['http://www.w3.org/2000/svg', 'http://www.w3.org/1999/xhtml']);
const EVENT_HANDLER = /^on[a-z]{3,}$/i;
const LITERAL = /"([^"]*)"|'([^']*)'/g;
const BLANK = /^\s*$/;

/** Unwinds saxes at the first finding. */
class Found extends Error {
  readonly type: string;
  constructor(type: string) {
    super(type);
    this.type = type;
  }
}

const localName = (name: string) => name.slice(name.indexOf(':') + 1).toLowerCase();

function isActive(tag: SaxesTagPlain): boolean {
  const local = localName(tag.name);
  if (local === 'svg' || local === 'html') return true;
  for (const name in tag.attributes) {
    if ((name === 'xmlns' || name.startsWith('xmlns:')) && ACTIVE_NS.has(tag.attributes[name]!.trim())) return true;
  }
  return false;
}

/**
 * Walks the document, giving each value to `visit`; the first finding, null
 * when clean, or why the text is not a well-formed document. `xssType`: the
 * type reported for active markup (null: XSS is not looked for); `active`:
 * every element is active content.
 */
export function walkXml(text: string, visit: Visit, xssType: string | null, active = false): string | null | Malformed {
  const parser = new SaxesParser({ xmlns: false, position: false });
  const check = (value: string) => {
    if (BLANK.test(value)) return;
    const type = visit(value);
    if (type !== null) throw new Found(type);
  };
  /** Own text of each open element, and whether it is active content. */
  const texts: string[] = [];
  const activeAt: boolean[] = [];
  parser.on('opentag', (tag) => {
    const on = active || (activeAt.length > 0 && activeAt[activeAt.length - 1]!) || isActive(tag);
    texts.push('');
    activeAt.push(on);
    if (on && xssType !== null && localName(tag.name) === 'script') throw new Found(xssType);
    for (const name in tag.attributes) {
      const value = tag.attributes[name]!;
      if (on && xssType !== null && EVENT_HANDLER.test(localName(name)) && !BLANK.test(value)) throw new Found(xssType);
      check(value);
    }
  });
  const append = (t: string) => {
    if (texts.length > 0) texts[texts.length - 1] += t;
  };
  parser.on('text', append);
  parser.on('cdata', append);
  parser.on('closetag', () => {
    activeAt.pop();
    check(texts.pop()!);
  });
  parser.on('comment', check);
  parser.on('processinginstruction', (pi) => check(pi.body));
  parser.on('doctype', (doctype) => {
    for (const m of doctype.matchAll(LITERAL)) check(m[1] ?? m[2]!);
  });
  try {
    parser.write(text).close();
    return null;
  } catch (err) {
    if (err instanceof Found) return err.type;
    return { malformed: `XML not well-formed (${(err as Error).message.replace(/[^\w .,:-]/g, '').slice(0, 60).trim()})` };
  }
}

/** `<?xml … encoding="…"?>`, read in ASCII (a UTF-16 or UTF-32 document is found by its bytes first). */
const DECLARATION = /^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.:-]*)["']/;

/** The encoding an XML declaration names, or null. */
export function declaredEncoding(body: Buffer): string | null {
  const m = DECLARATION.exec(body.subarray(0, 256).toString('latin1'));
  return m === null ? null : m[1]!;
}
