/**
 * The detectors, one per injection type, compiled once from the config. Each
 * gets a value's decoded forms (decode.ts) and says whether one of them is
 * an injection; parameter names and JSON keys go through `name` (the value
 * test unless the family has its own, as nosql has for operator keys).
 */
import { isIntermediate, toBytes } from './decode.ts';
import { SqliState, isSqli } from './libinjection/sqli.ts';
import { isXss } from './libinjection/xss.ts';
import { commandInValue } from './rules/command.ts';
import { sqlExtra, xssExtra } from './rules/extra.ts';
import {
  javaExceptionInValue, ldapInValue, nosqlInName, nosqlInValue, ssiInValue, sstiInValue, xpathAbbreviatedInValue,
  xpathExtendedInValue,
} from './rules/patterns.ts';
import { traversalInValue } from './rules/traversal.ts';
import type { InjectionProtectionConfig } from './schema.ts';

export type Forms = readonly string[];

export interface Detector {
  /** Reported as the injection type (the configured name). */
  readonly type: string;
  value(forms: Forms): boolean;
  name(forms: Forms): boolean;
}

const sqliState = new SqliState();

/** Characters SQL injection cannot do without (quotes, comments, operators, digits); 85,769 of libinjection's 85,773 test attacks have one. */
const SQL_SIGNAL = /['"`;=()<>|&@#*/,%\\\d-]/;
const WORDS = /\s[a-z]/i;

/**
 * Palisade's filter on libinjection's verdict, for prose: text without any
 * SQL character is SQL only with UNION ("Only call a function once." folds
 * to a listed fingerprint); and a quoted operator between two sentences
 * ('use the "-" character') is not the string-operator-string attack
 * (aa'+'1), whose strings are single words.
 */
function plausibleSql(fp: string, value: string): boolean {
  if (!SQL_SIGNAL.test(value) && !fp.includes('U')) return false;
  if (fp === 'sos' || fp === 's&s') {
    const tv = sqliState.tokenvec;
    if (WORDS.test(tv[0]!.val) || WORDS.test(tv[2]!.val)) return false;
  }
  return true;
}

/** libinjection's SQLi test (and the stacked-query rules); `minTokens` > 0 ignores short fingerprints (sql_low_sensitivity). */
function sqli(minTokens: number) {
  return (forms: Forms) => {
    if (sqlExtra(forms, minTokens === 0)) return true;
    for (let i = 0; i < forms.length; i++) {
      if (isIntermediate(forms, i)) continue;
      const fp = isSqli(sqliState, toBytes(forms[i]!));
      if (fp !== null && fp.length >= minTokens && plausibleSql(fp, forms[i]!)) return true;
    }
    return false;
  };
}

function xss(forms: Forms): boolean {
  if (xssExtra(forms)) return true;
  // libinjection's XSS test needs a tag ('<') or an attribute value ('='): skip the tokenizer otherwise.
  for (let i = 0; i < forms.length; i++) {
    const f = forms[i]!;
    if ((f.includes('<') || f.includes('=')) && !isIntermediate(forms, i) && isXss(toBytes(f))) return true;
  }
  return false;
}

type Test = (forms: Forms) => boolean;

/** Each type's value test, the name test when it differs, and the family it belongs to (one detector per family). */
const BUILTIN: Record<string, { family: string; value: Test; name?: Test }> = {
  sql: { family: 'sql', value: sqli(0) },
  sql_low_sensitivity: { family: 'sql', value: sqli(3) },
  js: { family: 'xss', value: xss },
  xss: { family: 'xss', value: xss },
  ssi: { family: 'ssi', value: ssiInValue },
  java_exception: { family: 'java_exception', value: javaExceptionInValue },
  xpath_abbreviated: { family: 'xpath_abbreviated', value: xpathAbbreviatedInValue },
  xpath_extended: { family: 'xpath_extended', value: xpathExtendedInValue },
  path_traversal: { family: 'path_traversal', value: traversalInValue },
  command: { family: 'command', value: commandInValue },
  ldap: { family: 'ldap', value: ldapInValue },
  nosql: { family: 'nosql', value: nosqlInValue, name: (forms) => nosqlInName(forms) || nosqlInValue(forms) },
  ssti: { family: 'ssti', value: sstiInValue },
};

/** The detectors for a config, in the order of injection_types (one per family); throws on an invalid custom regex. */
export function compileDetectors(config: InjectionProtectionConfig): Detector[] {
  const byFamily = new Map<string, Detector>();
  for (const type of config.injection_types) {
    const b = BUILTIN[type]!;
    const existing = byFamily.get(b.family);
    // sql wins over sql_low_sensitivity; js and xss are the same detector.
    if (existing && !(type === 'sql' && existing.type === 'sql_low_sensitivity')) continue;
    byFamily.set(b.family, { type, value: b.value, name: b.name ?? b.value });
  }
  const detectors = [...byFamily.values()];
  const names = new Set<string>();
  for (const [i, c] of (config.custom_injections ?? []).entries()) {
    if (names.has(c.name)) throw new Error(`custom_injections[${i}].name: '${c.name}' is used twice`);
    names.add(c.name);
    let re: RegExp;
    try {
      re = new RegExp(c.regex);
    } catch (err) {
      throw new Error(`custom_injections[${i}].regex: ${(err as Error).message}`);
    }
    const test = (forms: Forms) => forms.some((f) => re.test(f));
    detectors.push({ type: c.name, value: test, name: test });
  }
  return detectors;
}

/** The first detector that finds an injection in a value (or a name), or null. */
export function detect(detectors: readonly Detector[], forms: Forms, isName: boolean): string | null {
  for (const d of detectors) if (isName ? d.name(forms) : d.value(forms)) return d.type;
  return null;
}
