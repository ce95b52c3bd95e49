/**
 * Spectral rulesets written as YAML or JSON files (the format `spectral lint
 * --ruleset` reads) turned into Spectral's in-memory definitions: `extends`
 * names become the bundled rulesets or other files, function names become
 * the core functions of @stoplight/spectral-functions (or the modules a
 * ruleset lists under `functions`, loaded from `functionsDir`), format names
 * become @stoplight/spectral-formats. Every Palisade lint run starts from the
 * built-in rulesets (`spectral:oas` and the OWASP API Security Top 10), and a
 * project ruleset adds to them: new rules, other severities, `off`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import spectralCore, { type RulesetDefinition } from '@stoplight/spectral-core';
import * as functions from '@stoplight/spectral-functions';
import * as formats from '@stoplight/spectral-formats';
import { oas, asyncapi, arazzo } from '@stoplight/spectral-rulesets';
import owasp from '@stoplight/spectral-owasp-ruleset';

const { Ruleset } = spectralCore;
type Ruleset = InstanceType<typeof Ruleset>;
type Definition = Record<string, unknown>;

/** The ruleset a project ruleset file is looked for under, in the current directory. */
export const PROJECT_RULESET = '.palisade-rules.yaml';

/** Rulesets a ruleset file can name in `extends` (Spectral's names, plus `owasp` for short). */
export const BUNDLED_RULESETS: Record<string, RulesetDefinition> = {
  'spectral:oas': oas as RulesetDefinition,
  'spectral:asyncapi': asyncapi as RulesetDefinition,
  'spectral:arazzo': arazzo as RulesetDefinition,
  '@stoplight/spectral-owasp-ruleset': owasp as unknown as RulesetDefinition,
  owasp: owasp as unknown as RulesetDefinition,
};

/** What every run extends before the project's own file: the OpenAPI rules and the OWASP API Security Top 10 (2023). */
export const DEFAULT_EXTENDS: [string, 'recommended'][] = [
  ['spectral:oas', 'recommended'],
  ['@stoplight/spectral-owasp-ruleset', 'recommended'],
];

/** Functions usable by name in a YAML/JSON ruleset's `then.function`. */
export const CORE_FUNCTIONS: Record<string, unknown> = Object.fromEntries(
  Object.entries(functions).filter(([name, fn]) => typeof fn === 'function' && name !== 'default'),
);

/** Format names as Spectral's YAML rulesets write them (and the export names of @stoplight/spectral-formats). */
const FORMAT_NAMES: Record<string, unknown> = {
  ...Object.fromEntries(Object.entries(formats).filter(([, f]) => typeof f === 'function')),
  'oas3.0': formats.oas3_0,
  'oas3.1': formats.oas3_1,
  'oas3.2': formats.oas3_2,
  'json-schema': formats.jsonSchema,
  'json-schema-loose': formats.jsonSchemaLoose,
  'json-schema-draft4': formats.jsonSchemaDraft4,
  'json-schema-draft6': formats.jsonSchemaDraft6,
  'json-schema-draft7': formats.jsonSchemaDraft7,
  'json-schema-2019-09': formats.jsonSchemaDraft2019_09,
  'json-schema-2020-12': formats.jsonSchemaDraft2020_12,
  'arazzo1.0': formats.arazzo1_0,
};

export class RulesetError extends Error {
  override name = 'RulesetError';
}

/** Read and translate one ruleset file (and the files it extends). */
async function readRulesetFile(file: string, seen: Set<string>): Promise<Definition> {
  if (seen.has(file)) throw new RulesetError(`${file}: extends itself (through ${[...seen].join(' → ')})`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RulesetError(`cannot read the ruleset ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = extname(file) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new RulesetError(`${file}: not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new RulesetError(`${file}: a ruleset is a mapping (extends, rules, …)`);
  const def = await translate(raw as Definition, file, new Set([...seen, file]));
  // Every ruleset file starts from the built-in rulesets, so that its rules can change inherited ones.
  return { ...def, extends: [...builtinExtends(), ...((def.extends as unknown[] | undefined) ?? [])] };
}

function builtinExtends(): unknown[] {
  return DEFAULT_EXTENDS.map(([name, severity]) => [BUNDLED_RULESETS[name], severity]);
}

async function translate(raw: Definition, file: string, seen: Set<string>): Promise<Definition> {
  const dir = dirname(file);
  const custom = await customFunctions(raw, file);
  const out: Definition = { ...raw };
  delete out.functions;
  delete out.functionsDir;
  if (raw.extends !== undefined) out.extends = await translateExtends(raw.extends, dir, file, seen);
  if (raw.formats !== undefined) out.formats = translateFormats(raw.formats, file);
  if (raw.rules !== undefined) out.rules = translateRules(raw.rules, custom, file);
  if (Array.isArray(raw.overrides)) {
    out.overrides = await Promise.all(
      raw.overrides.map(async (o: Definition) => (o && typeof o === 'object' ? await translate(o, file, seen) : o)),
    );
  }
  if (raw.aliases && typeof raw.aliases === 'object') {
    out.aliases = Object.fromEntries(
      Object.entries(raw.aliases as Definition).map(([k, v]) => {
        if (!v || typeof v !== 'object' || Array.isArray(v) || !Array.isArray((v as Definition).targets)) return [k, v];
        const targets = ((v as Definition).targets as Definition[]).map((t) => ({ ...t, formats: translateFormats(t.formats, file) }));
        return [k, { ...(v as Definition), targets }];
      }),
    );
  }
  return out;
}

async function translateExtends(ext: unknown, dir: string, file: string, seen: Set<string>): Promise<unknown> {
  const one = async (entry: unknown): Promise<unknown> => {
    if (Array.isArray(entry)) return [await one(entry[0]), entry[1]];
    if (typeof entry !== 'string') throw new RulesetError(`${file}: extends: expected a ruleset name or file, or [name, recommended|all|off]`);
    const bundled = BUNDLED_RULESETS[entry];
    if (bundled) return bundled;
    if (/^https?:\/\//.test(entry)) throw new RulesetError(`${file}: extends ${entry}: remote rulesets are not fetched; save the file and name its path`);
    if (/^[@a-z]/i.test(entry) && !entry.includes('/') && !/\.(ya?ml|json)$/.test(entry)) {
      throw new RulesetError(`${file}: extends ${entry}: unknown ruleset (bundled: ${Object.keys(BUNDLED_RULESETS).join(', ')}; or a file path)`);
    }
    return readRulesetFile(isAbsolute(entry) ? entry : resolve(dir, entry), seen);
  };
  return Array.isArray(ext) && !(ext.length === 2 && typeof ext[1] === 'string' && ['recommended', 'all', 'off'].includes(ext[1]))
    ? Promise.all(ext.map(one))
    : [await one(ext)];
}

function translateFormats(list: unknown, file: string): unknown {
  if (!Array.isArray(list)) return list;
  return list.map((name) => {
    const f = typeof name === 'string' ? FORMAT_NAMES[name] : name;
    if (!f) throw new RulesetError(`${file}: unknown format ${JSON.stringify(name)} (e.g. oas2, oas3, oas3.0, oas3.1, asyncapi2)`);
    return f;
  });
}

function translateRules(rules: unknown, custom: Record<string, unknown>, file: string): unknown {
  if (!rules || typeof rules !== 'object') return rules;
  return Object.fromEntries(
    Object.entries(rules as Definition).map(([name, rule]) => {
      if (!rule || typeof rule !== 'object') return [name, rule]; // a severity for an inherited rule: off, warn, true…
      const r = { ...(rule as Definition) };
      if (r.formats !== undefined) r.formats = translateFormats(r.formats, file);
      if (r.then !== undefined) {
        const fn = (then: Definition) => {
          if (!then || typeof then !== 'object' || typeof then.function !== 'string') return then;
          const f = custom[then.function] ?? CORE_FUNCTIONS[then.function];
          if (!f) {
            throw new RulesetError(
              `${file}: rule ${name}: unknown function ${JSON.stringify(then.function)}; core functions: ${Object.keys(CORE_FUNCTIONS).join(', ')}`,
            );
          }
          return { ...then, function: f };
        };
        r.then = Array.isArray(r.then) ? r.then.map(fn) : fn(r.then as Definition);
      }
      return [name, r];
    }),
  );
}

/** `functions: [name]` with `functionsDir` (default `functions`): JavaScript modules beside the ruleset, as in Spectral. */
async function customFunctions(raw: Definition, file: string): Promise<Record<string, unknown>> {
  if (raw.functions === undefined) return {};
  if (!Array.isArray(raw.functions) || raw.functions.some((n) => typeof n !== 'string')) {
    throw new RulesetError(`${file}: functions: expected a list of function names`);
  }
  const dir = resolve(dirname(file), typeof raw.functionsDir === 'string' ? raw.functionsDir : 'functions');
  const out: Record<string, unknown> = {};
  for (const name of raw.functions as string[]) {
    const path = resolve(dir, /\.[cm]?js$/.test(name) ? name : `${name}.js`);
    try {
      const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
      out[name] = mod.default ?? mod;
    } catch (err) {
      throw new RulesetError(`${file}: cannot load function ${name} from ${path}: ${(err as Error).message}`);
    }
  }
  return out;
}

/**
 * The ruleset of a lint run: the built-in rulesets, extended by the project
 * ruleset file when there is one (its rules can add, change severity, or turn
 * off inherited rules).
 */
export async function loadRuleset(projectFile: string | null): Promise<Ruleset> {
  const source = projectFile === null ? undefined : resolve(projectFile);
  const def = source === undefined ? { extends: builtinExtends() } : await readRulesetFile(source, new Set());
  try {
    return new Ruleset(def, { severity: 'recommended', source });
  } catch (err) {
    const e = err as Error & { errors?: Error[] };
    const details = e.errors?.map((x) => x.message).join('; ') ?? e.message;
    throw new RulesetError(`${projectFile ?? 'built-in ruleset'}: invalid ruleset: ${details}`);
  }
}
