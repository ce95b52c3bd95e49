/**
 * What libinjection is known to miss, added by Palisade as narrow structural
 * rules (each one needs SQL or HTML syntax, never a lone keyword):
 *
 * - stacked SQL statements after a closing quote, number or parenthesis
 *   ("'; DROP TABLE users", "1; SHUTDOWN--", "'; SELECT * FROM users; --");
 * - INTO OUTFILE / DUMPFILE;
 * - forms libinjection does not fingerprint: a word closed by a quote and a MySQL comment ("admin' #"),
 *   a number OR/AND a boolean ("1 or true"), PROCEDURE ANALYSE(), a system variable (@@version),
 *   a PostgreSQL cast after a literal ("1::int"), MySQL's error-based functions (updatexml(, extractvalue(,
 *   gtid_subset( …) and concat(0x…);
 * - a script element split or nested to dodge a tokenizer ("<scr<script>ipt>", "</script>");
 * - an event handler attribute in a tag written with '/' separators ("<img/src=x/onerror=…>"), or with
 *   punctuation before its '=' that old Gecko skipped ("<body onload!#$%=…>");
 * - a javascript:/vbscript:/livescript: URL given as a whole value ("javascript:alert(1)", not
 *   "javascript: the good parts"), or as a tag name ("<javascript:alert>"); tab, CR and LF inside the scheme
 *   are removed first, as browsers do ("jav&#9;ascript:");
 * - a data: URL of an active type (text/html, XHTML, JavaScript) as a whole value, or an SVG one whose
 *   content runs script;
 * - JavaScript that breaks out of a string literal and calls a sink ("\";alert(1);//", "'-alert(1)-'"), or
 *   reaches Function through a constructor ("Set.constructor`alert\x28…\x29`").
 */


const STACKED = new RegExp(
  String.raw`(?:^|['"\d)\]\x60])\s*;\s*(?:` +
    [
      String.raw`select\s+(?:\*|@@|null\b|\d+\s*(?:,|from\b|$)|(?:sleep|pg_sleep|benchmark|version|user|database|load_file|char|concat|count)\s*\(|[\w.]+\s*,\s*[\w.]+(?:\s*,\s*[\w.]+)*\s+from\b)`,
      String.raw`insert\s+into\b`,
      String.raw`update\s+[\w\x60"\[\].]+\s+set\b`,
      String.raw`delete\s+from\b`,
      String.raw`drop\s+(?:table|database|schema|user|view|procedure|function)\b`,
      String.raw`truncate\s+table\b`,
      String.raw`create\s+(?:table|database|user|procedure|function|trigger)\b`,
      String.raw`alter\s+(?:table|database|user)\b`,
      String.raw`exec(?:ute)?\s*(?:xp_|sp_|master\.|\()`,
      String.raw`declare\s+@`,
      String.raw`waitfor\s+delay\b`,
      String.raw`shutdown\s*(?:$|--|#|;|\/\*|with\b)`,
    ].join('|') +
    ')',
  'i',
);
const OUTFILE = /\binto\s+(?:out|dump)file\s+['"]/i;
/** Two-token forms, like the fingerprints sql_low_sensitivity ignores. */
const SHORT_SQL = new RegExp(
  [
    String.raw`^[\w.@+-]*['"]\s*(?:#|--|\/\*)`,
    String.raw`^\s*-?\d+\s*\)*\s+(?:or|and|xor)\s+(?:not\s+)?(?:true|false)\b`,
  ].join('|'),
  'i',
);
const SQL_FORMS = new RegExp(
  [
    String.raw`\bprocedure\s+analyse\s*\(`,
    String.raw`(?:^|[\s(,'"=])@@(?:version|datadir|hostname|basedir|tmpdir|servername|spid|language|global\.|session\.)`,
    String.raw`(?:['")]|(?<![\w.])\d+)::(?:int[248]?|integer|bigint|smallint|numeric|text|varchar|char|regclass|bool(?:ean)?|json|bytea|oid|name|float[48]?)(?![\w:])`,
    String.raw`\b(?:updatexml|extractvalue|gtid_subset|gtid_subtract|name_const)\s*\(`,
    String.raw`\bconcat(?:_ws)?\s*\(\s*0x[0-9a-f]+`,
  ].join('|'),
  'i',
);

/** `short`: also the two-token forms (sql, not sql_low_sensitivity). */
export function sqlExtra(forms: readonly string[], short: boolean): boolean {
  return forms.some((f) => (f.includes(';') && STACKED.test(f)) || OUTFILE.test(f) || SQL_FORMS.test(f) || (short && SHORT_SQL.test(f)));
}

const SCRIPT_TAG = /<\s*\/?\s*script\b|<\s*(?:java|vb|live)script\s*:/i;
const EVENT_IN_TAG = /<[a-z][^<>]*?[\s/"'](?:on[a-z]{3,})[\s!#$%&()*~+\-_.,:;?@[\]\\^|/\x60]*=/i;
const SCRIPT_URL = /^[\s\0-\x1f]*(?:java|vb|live)script\s*:\s*[\w$]+\s*[(\[`=.]/i;
/** What browsers remove from a URL before reading its scheme. */
const URL_IGNORED = /[\t\n\r]/g;
const DATA_URL = /^[\s\0-\x1f]*data\s*:\s*(?:(?:text\/html|application\/xhtml\+xml|(?:text|application)\/(?:x-)?(?:java|ecma|vb)script)\b|image\/svg\+xml\s*(?:;\s*(base64)\s*)?,(.*))/is;
const JS_SINK =
  String.raw`(?:alert|prompt|confirm|eval)\s*[(\x60]|` +
  String.raw`document\s*\.\s*(?:cookie|write|domain|location)\b|window\s*\.\s*(?:location|open|name)\b|(?:top|self|parent|window|this)\s*\[\s*['"\x60]`;
const JS_BREAKOUT = new RegExp(String.raw`['"\x60]\s*(?:[;,+\-*/|&)\]}]\s*){1,3}(?:${JS_SINK})|\bconstructor\s*(?:\(\s*)?[\x60'"][^\x60'"]{0,40}\b(?:alert|prompt|confirm|eval|fetch|import|document|window)\b`, 'i');

/** SVG that runs script: a script element, an event handler, a javascript: link. */
const ACTIVE_SVG = /<\s*script\b|[\s/"']on[a-z]{3,}\s*=|(?:java|vb)script\s*:/i;

/** A data: URL that runs script when opened (an SVG one: when its content does). */
function activeDataUrl(f: string): boolean {
  const m = DATA_URL.exec(f);
  if (m === null) return false;
  if (m[2] === undefined) return true;
  const content = m[1] !== undefined ? Buffer.from(m[2], 'base64').toString('latin1') : m[2];
  return ACTIVE_SVG.test(content);
}

function scriptUrl(f: string): boolean {
  const u = f.includes('\t') || f.includes('\n') || f.includes('\r') ? f.replace(URL_IGNORED, '') : f;
  return SCRIPT_URL.test(u) || (u.includes(':') && activeDataUrl(u));
}

export function xssExtra(forms: readonly string[]): boolean {
  return forms.some(
    (f) => (f.includes('<') && (SCRIPT_TAG.test(f) || EVENT_IN_TAG.test(f))) || scriptUrl(f) || JS_BREAKOUT.test(f),
  );
}
