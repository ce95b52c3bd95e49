/**
 * Structural detectors for the smaller injection families: each looks for
 * the syntax an interpreter would act on (an LDAP filter being closed and
 * reopened, a MongoDB operator, a template expression that computes or
 * reaches into the runtime), not for words.
 */

import { someTemplateBody } from './template.ts';

const anyForm = (re: RegExp) => (forms: readonly string[]) => forms.some((f) => re.test(f));

/**
 * LDAP filter injection: closing a filter and opening another ")(uid=*",
 * ")(|(", "(&(objectClass=*)", a wildcard filter "(cn=*)", a value that
 * starts by closing the filter ("*)(", "admin)("), or closes it and cuts
 * the rest off with a NUL ("admin))%00").
 */
const LDAP = new RegExp(
  [
    String.raw`\)\s*\(\s*[|&!]`,
    String.raw`\(\s*[|&!]\s*\(\s*[\w.;-]+\s*[~<>]?=`,
    String.raw`\)\s*\(\s*[\w.;-]+\s*[~<>]?=`,
    String.raw`\(\s*[\w.;-]+\s*=\s*\*\s*\)`,
    String.raw`^[^()]*\*\s*\)\s*[()|&]`,
    String.raw`^\s*\*\s*\(\s*\)\s*\|\s*&`,
    // a filter closed, then a NUL byte to cut off the rest of it ("admin))%00")
    String.raw`\)\s*\x00`,
  ].join('|'),
);
export const ldapInValue = anyForm(LDAP);

/** MongoDB query and update operators that change what a query matches or runs. */
const MONGO_OPS =
  'ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|expr|or|and|nor|not|elemMatch|all|size|type|mod|text|function|accumulator|jsonSchema|lookup|set|unset|rename|inc|push|pull|addToSet';
const MONGO_OP_NAME = new RegExp(String.raw`^\$(?:${MONGO_OPS})$`);
/** a[$ne]=1, user[password][$regex]=^a (qs/PHP bracket syntax), or a bare $where name. */
const MONGO_OP_IN_NAME = new RegExp(String.raw`(?:^|\[)\$(?:${MONGO_OPS})(?:\]|$)`);
/** {"$ne": null} inside a string value (a JSON document smuggled into a field). */
const MONGO_OP_IN_VALUE = new RegExp(String.raw`[{,]\s*["']?\$(?:${MONGO_OPS})["']?\s*:`);
/** Server-side JavaScript: $where, a tautology "' || '1'=='1", "; return true", this.password.match(, db.users.find(. */
const MONGO_JS = new RegExp(
  [
    String.raw`\$where\b`,
    // a tautology after closing the string: ' || '1'=='1, " && 1==1
    String.raw`['"]\s*(?:\|\||&&)\s*(['"]?)(\w+)\1\s*===?\s*['"]?\2(?!\w)`,
    String.raw`['"]\s*;\s*return\s+(?:true|false|1|this\b|['"])`,
    String.raw`(?:^|['"]\s*(?:\|\||&&|;)\s*)this\.\w+\s*(?:[!=]==?|\.match\s*\()`,
    String.raw`\bdb\.(?:\w+\.)?(?:find|findOne|drop|insert|remove|update|getCollection|dropDatabase)\s*\(`,
    String.raw`['";]\s*sleep\s*\(\s*\d+\s*\)`,
  ].join('|'),
);

/** A JSON object key, or a query/form parameter name. */
export function nosqlInName(forms: readonly string[]): boolean {
  return forms.some((f) => f.includes('$') && (MONGO_OP_NAME.test(f) || MONGO_OP_IN_NAME.test(f)));
}

export function nosqlInValue(forms: readonly string[]): boolean {
  return forms.some((f) => MONGO_JS.test(f) || (f.includes('$') && MONGO_OP_IN_VALUE.test(f)));
}

/**
 * Server-side template injection: a template expression ({{ }}, ${ }, #{ },
 * *{ }, @( ), <%= %>, {% %}, [[ ]], {php}) whose content computes on
 * literals (7*7), walks Python/Java internals (__class__, T(java.lang…)) or
 * names an object templates use to reach the runtime. Plain placeholders
 * ({{name}}, ${HOME}, #{user.id}) are ordinary text.
 */
const DANGEROUS_EXPR = new RegExp(
  [
    String.raw`\d+\s*[*+/%]\s*['"]?\d+`,
    String.raw`__\w+__`,
    String.raw`\b(?:config|self|request|settings|lipsum|cycler|joiner|namespace|url_for|get_flashed_messages|_self|_context)\b\s*[.[(|]`,
    String.raw`\b(?:config|self|settings|lipsum|cycler|joiner)\s*$`,
    String.raw`\bT\s*\(\s*java\.`,
    String.raw`\bjava\.(?:lang|io|net|util)\.`,
    String.raw`\b(?:getRuntime|ProcessBuilder|getClass|forName|getClassLoader|newInstance|getMethod|invoke|exec|popen|spawn|subprocess|system|eval|require|import|constructor|mainModule|child_process|Runtime|ObjectConstructor|Execute)\b`,
    String.raw`\bprocess\s*\.\s*(?:mainModule|binding|exit)\b`,
    String.raw`\|\s*(?:attr|filter|map|reduce|sort|e|escape)\s*\(\s*['"](?:system|exec|passthru|__)`,
    String.raw`\.(?:__proto__|prototype)\b`,
    String.raw`\$(?:class|smarty)\b`,
  ].join('|'),
);
/** Template directives that are dangerous on their own. */
const DIRECTIVE = /<#(?:assign|import|include|ftl|setting)\b|\?new\s*\(\s*\)|#set\s*\(\s*\$|#(?:evaluate|include|parse)\s*\(|\$\w+\.(?:getClass|class\.forName)\b|\{\{\s*_self\b|\{php\}|\{\/?literal\}\s*\{|freemarker\.template\.utility/i;

const dangerous = (body: string) => DANGEROUS_EXPR.test(body);

function sstiInForm(f: string): boolean {
  return DIRECTIVE.test(f) || someTemplateBody(f, dangerous);
}

const MAY_TEMPLATE = /[{%<#[(]/;

export function sstiInValue(forms: readonly string[]): boolean {
  return forms.some((f) => MAY_TEMPLATE.test(f) && sstiInForm(f));
}

/** Server-side includes (Kong's `ssi`): <!--#exec cmd="…" -->, <!--#include virtual="…" -->. */
export const ssiInValue = anyForm(/<!--\s*#\s*(?:include|exec|echo|config|printenv|set|if|elif|fsize|flastmod)\b/i);

/** A Java exception message (Kong's `java_exception`): error details echoed back into a request. */
export const javaExceptionInValue = anyForm(/Exception in thread\b|\bat (?:java|javax|sun|org\.apache|com\.sun)\.[\w$.]+\([\w$]+\.java:\d+\)/);

/** XPath axis steps (Kong's `xpath_extended`): ancestor::, following-sibling::, … */
export const xpathExtendedInValue = anyForm(
  /\b(?:ancestor|ancestor-or-self|descendant|descendant-or-self|following|following-sibling|preceding|preceding-sibling|parent|child|attribute|self|namespace)\s*::\s*(?:[\w*]|node\s*\(|text\s*\()/,
);

/** Abbreviated XPath injected into a predicate (Kong's `xpath_abbreviated`): '] | //user[', //*[, count(//…), name()='… */
export const xpathAbbreviatedInValue = anyForm(
  new RegExp(
    [
      String.raw`['"]\s*\]\s*(?:\||\/|\[)`,
      String.raw`\|\s*\/\/[\w*@]`,
      String.raw`(?:^|[\s'"(|])\/\/[\w*]+\s*\[`,
      String.raw`\/\/\*`,
      String.raw`\b(?:count|string-length|substring|name|local-name|contains|starts-with|normalize-space|translate|concat|string)\s*\(\s*(?:\/|\.\.?\/|@|name\s*\(|\*)`,
      String.raw`['"]\s*or\s+(?:name|local-name|count|string-length|substring|contains)\s*\(`,
    ].join('|'),
  ),
);
