/**
 * What libinjection is known to miss, added by Palisade as narrow structural
 * rules (each one needs SQL or HTML syntax, never a lone keyword):
 *
 * - stacked SQL statements after a closing quote, number or parenthesis
 *   ("'; DROP TABLE users", "1; SHUTDOWN--", "'; SELECT * FROM users; --");
 * - INTO OUTFILE / DUMPFILE;
 * - a script element split or nested to dodge a tokenizer ("<scr<script>ipt>", "</script>");
 * - an event handler attribute in a tag written with '/' separators ("<img/src=x/onerror=…>");
 * - a javascript:/vbscript: URL given as a whole value ("javascript:alert(1)", not "javascript: the good parts").
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

export function sqlExtra(forms: readonly string[]): boolean {
  return forms.some((f) => f.includes(';') ? STACKED.test(f) || OUTFILE.test(f) : OUTFILE.test(f));
}

const SCRIPT_TAG = /<\s*\/?\s*script\b/i;
const EVENT_IN_TAG = /<[a-z][^<>]*?[\s/"'](?:on[a-z]{3,})\s*=/i;
const SCRIPT_URL = /^[\s\0-\x1f]*(?:java|vb)script\s*:\s*[\w$]+\s*[(\[`=.]/i;

export function xssExtra(forms: readonly string[]): boolean {
  return forms.some((f) => (f.includes('<') && (SCRIPT_TAG.test(f) || EVENT_IN_TAG.test(f))) || SCRIPT_URL.test(f));
}
