/**
 * Streaming XML checks on top of saxes (a conformant, non-validating SAX
 * parser): bytes are decoded and fed chunk by chunk, every limit is judged on
 * the event that crosses it, and the first violation stops the scan.
 *
 * Entities: saxes knows only the five predefined entities and character
 * references; it never reads a DTD, never fetches anything and never expands
 * a declared entity (a reference to one is a well-formedness error). On top
 * of that any DOCTYPE is refused outright, so XXE (external entities) and
 * entity expansion bombs (billion laughs) cannot pass to the upstream parser.
 *
 * Memory: what saxes holds between two events (a long text, a tag with its
 * attributes, a comment) is bounded by `buffer`, checked after every slice of
 * at most SLICE characters.
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesAttributePlain, type SaxesTag } from 'saxes';

/** Kong's limits (sizes in UTF-8 bytes; counts per element). */
export interface XmlLimits {
  readonly namespaceAware: boolean;
  readonly maxDepth: number;
  readonly maxChildren: number;
  readonly maxAttributes: number;
  readonly maxNamespaces: number;
  readonly buffer: number;
  readonly comment: number;
  readonly localname: number;
  readonly prefix: number;
  readonly namespaceuri: number;
  readonly attribute: number;
  readonly text: number;
  readonly pitarget: number;
  readonly pidata: number;
}

export interface XmlViolation {
  readonly message: string;
}

/** Internal: unwinds saxes' write() at the first violation. */
class Stop extends Error {
  readonly violation: XmlViolation;
  constructor(message: string) {
    super(message);
    this.violation = { message };
  }
}

const SLICE = 16 * 1024;
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function stop(message: string): never {
  throw new Stop(message);
}

export class XmlScanner {
  readonly #limits: XmlLimits;
  readonly #parser: SaxesParser;
  readonly #charset: string | null;
  #decoder: TextDecoder | null = null;
  /** The first bytes, held until there are enough to look for a byte-order mark. */
  #head: Buffer | null = null;
  /** The encoding was decided by a UTF-16 byte-order mark. */
  #bom16 = false;
  /** Children of each open element, innermost last. */
  readonly #children: number[] = [];
  /** Attributes / namespace declarations of the tag being read. */
  #attributes = 0;
  #namespaces = 0;
  /** Bytes of the current run of adjacent text and CDATA (one child). */
  #textRun = -1;
  /** Parser position at the last event (the start of the unparsed buffer). */
  #mark = 0;

  /** `charset`: the Content-Type's charset parameter, if any (a BOM wins over it). */
  constructor(limits: XmlLimits, charset: string | null) {
    this.#limits = limits;
    this.#charset = charset;
    const p = limits.namespaceAware ? new SaxesParser({ xmlns: true }) : new SaxesParser({ xmlns: false });
    this.#parser = p as SaxesParser;
    this.#listen(p as SaxesParser);
  }

  /** Feed the next chunk of the body; the first violation, or null. Stop feeding after one. */
  write(chunk: Buffer): XmlViolation | null {
    return this.#run(() => {
      const text = this.#decode(chunk, false);
      for (let i = 0; i < text.length; i += SLICE) {
        this.#parser.write(text.length <= SLICE ? text : text.slice(i, i + SLICE));
        if (this.#parser.position - this.#mark > this.#limits.buffer) stop('unparsed buffer limit exceeded');
      }
    });
  }

  /** The body ended: null when it was one well-formed document within the limits. */
  end(): XmlViolation | null {
    return this.#run(() => {
      const head = this.#decoder === null && this.#head !== null ? this.#decode(Buffer.alloc(0), true) : '';
      const rest = head + (this.#decoder === null ? '' : this.#decoder.decode());
      if (rest !== '') this.#parser.write(rest);
      this.#parser.close();
    });
  }

  #run(step: () => void): XmlViolation | null {
    try {
      step();
      return null;
    } catch (err) {
      if (err instanceof Stop) return err.violation;
      // A malformed byte sequence (fatal TextDecoder).
      if ((err as { code?: string }).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') return { message: 'invalid character encoding' };
      throw err;
    }
  }

  /** `last`: the body ended (decide with what there is). */
  #decode(chunk: Buffer, last: boolean): string {
    if (this.#decoder === null) {
      // Enough bytes to tell a byte-order mark (a chunk may hold a single byte).
      const head = this.#head === null ? chunk : Buffer.concat([this.#head, chunk]);
      if (head.length < 4 && !last) {
        this.#head = head;
        return '';
      }
      this.#head = null;
      chunk = head;
      // A byte-order mark decides, then the charset parameter, then UTF-8 (XML 1.0 §4.3.3, appendix F).
      const bom = byteOrderMark(head);
      this.#bom16 = bom === 'utf-16be' || bom === 'utf-16le';
      try {
        this.#decoder = new TextDecoder(bom ?? this.#charset ?? 'utf-8', { fatal: true });
      } catch {
        stop(`unsupported charset: ${this.#charset}`);
      }
    }
    return this.#decoder.decode(chunk, { stream: !last });
  }

  #listen(p: SaxesParser): void {
    const lim = this.#limits;
    const mark = () => (this.#mark = p.position);
    p.on('error', (err) => stop(err.message));
    p.on('doctype', () => stop('DTD (DOCTYPE declaration) not allowed'));
    p.on('xmldecl', (decl) => {
      mark();
      // The document must be decoded as it says it is encoded (no encoding confusion with the upstream).
      if (decl.encoding !== undefined && !sameEncoding(decl.encoding, this.#decoder!.encoding, this.#bom16)) {
        stop(`declared encoding ${decl.encoding} differs from the body's (${this.#decoder!.encoding})`);
      }
    });
    p.on('opentagstart', (tag) => {
      mark();
      this.#child();
      if (this.#children.length >= lim.maxDepth) stop('max_depth exceeded');
      this.#children.push(0);
      this.#attributes = 0;
      this.#namespaces = 0;
      this.#name(tag.name);
    });
    p.on('attribute', (attr: SaxesAttributeNS | SaxesAttributePlain) => {
      mark();
      if (lim.namespaceAware && (attr.name === 'xmlns' || attr.name.startsWith('xmlns:'))) {
        if (++this.#namespaces > lim.maxNamespaces) stop('max_namespaces exceeded');
        if (attr.name.length > 6 && bytes(attr.name) - 6 > lim.prefix) stop('prefix limit exceeded');
        if (bytes(attr.value) > lim.namespaceuri) stop('namespaceuri limit exceeded');
        return;
      }
      if (++this.#attributes > lim.maxAttributes) stop('max_attributes exceeded');
      this.#name(attr.name);
      if (bytes(attr.value) > lim.attribute) stop('attribute limit exceeded');
    });
    p.on('opentag', mark);
    p.on('closetag', (_tag: SaxesTag) => {
      mark();
      this.#children.pop();
      this.#textRun = -1;
    });
    const text = (t: string) => {
      mark();
      if (this.#children.length === 0) return; // whitespace around the root element
      if (this.#textRun < 0) {
        this.#child();
        this.#textRun = 0;
      }
      this.#textRun += bytes(t);
      if (this.#textRun > lim.text) stop('text limit exceeded');
    };
    p.on('text', text);
    p.on('cdata', text);
    p.on('comment', (c) => {
      mark();
      this.#child();
      if (bytes(c) > lim.comment) stop('comment limit exceeded');
    });
    p.on('processinginstruction', (pi) => {
      mark();
      this.#child();
      if (bytes(pi.target ?? '') > lim.pitarget) stop('pitarget limit exceeded');
      if (bytes(pi.body) > lim.pidata) stop('pidata limit exceeded');
    });
  }

  /** A new child of the current element (none at the document level); ends a text run. */
  #child(): void {
    this.#textRun = -1;
    const top = this.#children.length - 1;
    if (top >= 0 && ++this.#children[top]! > this.#limits.maxChildren) stop('max_children exceeded');
  }

  /** Element and attribute names: prefix and local name when namespace-aware, else the whole name. */
  #name(name: string): void {
    const lim = this.#limits;
    const colon = lim.namespaceAware ? name.indexOf(':') : -1;
    if (colon >= 0 && bytes(name.slice(0, colon)) > lim.prefix) stop('prefix limit exceeded');
    if (bytes(colon >= 0 ? name.slice(colon + 1) : name) > lim.localname) stop('localname limit exceeded');
  }
}

function byteOrderMark(b: Buffer): string | null {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'utf-8';
  if (b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
  if (b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
  return null;
}

/**
 * Does the XML declaration name the encoding the body is decoded with?
 * "UTF-16" names both byte orders: the byte-order mark, which the XML spec
 * requires of UTF-16, says which (`bom16`).
 */
function sameEncoding(declared: string, used: string, bom16: boolean): boolean {
  if (bom16 && /^\s*utf-16\s*$/i.test(declared)) return true;
  try {
    return new TextDecoder(declared).encoding === used;
  } catch {
    return false;
  }
}
