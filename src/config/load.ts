/**
 * Loading = parse (YAML or JSON) → validate against the schema → validate each
 * plugin's config against its own schema → cross-entity checks. Every error names
 * its JSON pointer and the line:column in the file. Nothing here touches the
 * running gateway: a failed load changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isNode, isPair, isScalar, visit, type Document } from 'yaml';
import type { ErrorObject } from 'ajv';
import { ConfigSchema, type ConsumerConfig, type PalisadeConfig, type PluginConfig } from './schema.ts';
import { compileSchema } from './ajv.ts';
import { checkSemantics } from './semantics.ts';
import { allPlugins, getPlugin, KONG_ONLY_PLUGINS, pluginNames } from '../plugins/registry.ts';

export interface ConfigError {
  /** JSON pointer of the offending value, e.g. /services/0/routes/1/paths/0. */
  path: string;
  line: number;
  column: number;
  message: string;
}

export class ConfigInvalidError extends Error {
  readonly file: string;
  readonly errors: ConfigError[];
  constructor(file: string, errors: ConfigError[]) {
    super(`${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n` + errors.map((e) => formatError(file, e)).join('\n'));
    this.name = 'ConfigInvalidError';
    this.file = file;
    this.errors = errors;
  }
}

export function formatError(file: string, e: ConfigError): string {
  return `${file}:${e.line}:${e.column}: ${e.path || '/'}: ${e.message}`;
}

const validateConfig = compileSchema(ConfigSchema);

/** Where each pointer of a parsed config sits in its file (kept beside the config, not in it). */
const sources = new WeakMap<object, { file: string; at: (pointer: string, key?: string) => { line: number; column: number } }>();

/** A config error found after parsing (e.g. while compiling a plugin), positioned in the file when known. */
export function configError(cfg: PalisadeConfig, pointer: string, message: string): ConfigInvalidError {
  const src = sources.get(cfg);
  const pos = src ? src.at(pointer) : { line: 0, column: 0 };
  return new ConfigInvalidError(src?.file ?? '<config>', [{ path: pointer, ...pos, message }]);
}

/** Where a JSON pointer sits in the source: the deepest existing node on its path. */
function locate(doc: Document, lc: LineCounter, pointer: string, key?: string): { line: number; column: number } {
  const segments = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: unknown = doc.contents;
  for (const seg of segments) {
    if (!isNode(node)) break;
    const next = (node as { get?: (k: unknown, keep: boolean) => unknown }).get?.(/^\d+$/.test(seg) && !isMap(node) ? Number(seg) : seg, true);
    if (next === undefined) break;
    node = next;
  }
  let offset = isNode(node) && node.range ? node.range[0] : 0;
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
    if (pair && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
  }
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Ajv errors → readable messages; anyOf noise collapsed into its parent error. */
function schemaErrors(errors: ErrorObject[], at: (pointer: string, key?: string) => { line: number; column: number }, prefix = ''): ConfigError[] {
  const anyOf = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath + '/');
  const out: ConfigError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (anyOf.some((p) => e.schemaPath.startsWith(p))) continue;
    let path = prefix + e.instancePath;
    let message: string;
    let key: string | undefined;
    switch (e.keyword) {
      case 'additionalProperties':
        key = String(e.params.additionalProperty);
        message = `unknown field '${key}'`;
        path = `${path}/${key}`;
        break;
      case 'required':
        message = `required field '${e.params.missingProperty}' is missing`;
        break;
      case 'enum':
        message = `must be one of: ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'anyOf':
        message = 'must be a name, or an object with id or name';
        break;
      default:
        message = e.message ?? 'is invalid';
    }
    const dedupe = path + message;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    const pos = key !== undefined ? at(prefix + e.instancePath, key) : at(path);
    out.push({ path, ...pos, message });
  }
  return out;
}

/** Every plugin entity in the file with its JSON pointer. */
export function* pluginEntities(cfg: PalisadeConfig): Generator<[PluginConfig, string]> {
  for (const [i, p] of cfg.plugins.entries()) yield [p, `/plugins/${i}`];
  for (const [i, s] of cfg.services.entries()) {
    for (const [j, p] of s.plugins.entries()) yield [p, `/services/${i}/plugins/${j}`];
    for (const [k, r] of s.routes.entries()) for (const [j, p] of r.plugins.entries()) yield [p, `/services/${i}/routes/${k}/plugins/${j}`];
  }
  for (const [k, r] of cfg.routes.entries()) for (const [j, p] of r.plugins.entries()) yield [p, `/routes/${k}/plugins/${j}`];
  for (const [k, c] of cfg.consumers.entries()) for (const [j, p] of c.plugins.entries()) yield [p, `/consumers/${k}/plugins/${j}`];
}

function checkPlugins(cfg: PalisadeConfig, at: (pointer: string, key?: string) => { line: number; column: number }): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const [p, ptr] of pluginEntities(cfg)) {
    const def = getPlugin(p.name);
    if (!def) {
      const message = KONG_ONLY_PLUGINS.has(p.name)
        ? `plugin '${p.name}' is a Kong plugin that Palisade does not implement; available: ${pluginNames().join(', ')}`
        : `unknown plugin '${p.name}'; available: ${pluginNames().join(', ')}`;
      errors.push({ path: `${ptr}/name`, ...at(`${ptr}/name`), message });
      continue;
    }
    p.config ??= {};
    const validate = compileSchema(def.schema);
    if (!validate(p.config)) {
      errors.push(...schemaErrors(validate.errors ?? [], at, `${ptr}/config`));
      continue;
    }
    const custom = def.validate?.(p.config as never);
    if (custom) errors.push({ path: `${ptr}/config`, ...at(`${ptr}/config`), message: custom });
  }
  return errors;
}

/** Errors in file order, as an editor lists them. */
function byPosition(errors: ConfigError[]): ConfigError[] {
  return errors.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Not Latin-1: a string with one of these stays as it is. */
const WIDE = /[^\x00-\xff]/;

/**
 * The parsed document made ready to use. Kong semantics: a field set to null
 * (decK dumps write `headers: null`, Kong's db_export `tags: ~`) is unset and
 * gets its default (array elements are kept). And every string is a string of
 * its own. A long string of the document (13
 * characters or more) is otherwise a slice of the file's text, so a single
 * character outside Latin-1 anywhere in the file (a dash in a comment) makes
 * it two-byte, and with it every string the gateway builds from it per
 * request (span names, log lines, upstream paths), each then copied and
 * converted when written.
 */
function tidy(value: unknown): unknown {
  if (typeof value === 'string') return value.length < 13 || WIDE.test(value) ? value : Buffer.from(value, 'latin1').toString('latin1');
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = tidy(value[i]);
  } else if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      if (obj[k] === null) delete obj[k];
      else obj[k] = tidy(obj[k]);
    }
  }
  return value;
}

/** Each plugin's cross-field rules for the credentials consumers carry. */
function checkCredentials(cfg: PalisadeConfig, at: (pointer: string, key?: string) => { line: number; column: number }): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const def of allPlugins()) {
    const c = def.credential;
    if (!c?.validate) continue;
    for (const [i, consumer] of cfg.consumers.entries()) {
      for (const [j, cred] of (((consumer as ConsumerConfig)[c.field] as unknown[] | undefined) ?? []).entries()) {
        const message = c.validate(cred as never);
        const ptr = `/consumers/${i}/${c.field}/${j}`;
        if (message) errors.push({ path: ptr, ...at(ptr), message });
      }
    }
  }
  return errors;
}

/** Parse and validate config text. Throws ConfigInvalidError listing every problem. */
export function parseConfig(text: string, file = '<config>'): PalisadeConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigInvalidError(
      file,
      doc.errors.map((e) => {
        // linePos is only filled with prettyErrors; pos (offsets) always is.
        const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
        let message = e.message.split('\n')[0]!;
        if (e.code === 'DUPLICATE_KEY') {
          const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:\n]*?)\s*:/.exec(text.slice(e.pos[0]))?.[1];
          if (key) message = `duplicate key ${key.startsWith('"') || key.startsWith("'") ? key : `'${key}'`}: ${message}`;
        }
        return { path: '', line: pos.line, column: pos.col, message };
      }),
    );
  }
  const at = (pointer: string, key?: string) => locate(doc, lc, pointer, key);
  let data: unknown;
  try {
    data = tidy(doc.toJS({ maxAliasCount: 100 }));
  } catch (err) {
    // An alias to an anchor that does not exist, or too many aliases (a "billion laughs" file).
    let offset = 0;
    visit(doc, {
      Alias(_, node) {
        if (node.resolve(doc) !== undefined) return undefined;
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const pos = lc.linePos(offset);
    throw new ConfigInvalidError(file, [{ path: '', line: pos.line, column: pos.col, message: (err as Error).message }]);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigInvalidError(file, [{ path: '', line: 1, column: 1, message: 'the config must be a mapping with _format_version, services, routes, …' }]);
  }
  if (!validateConfig(data)) throw new ConfigInvalidError(file, byPosition(schemaErrors(validateConfig.errors ?? [], at)));
  const cfg = data as PalisadeConfig;
  const errors = [...checkPlugins(cfg, at), ...checkCredentials(cfg, at), ...checkSemantics(cfg).map((e) => ({ ...e, ...at(e.path, e.key) }))];
  if (errors.length > 0) throw new ConfigInvalidError(file, byPosition(errors.map(({ path, line, column, message }) => ({ path, line, column, message }))));
  sources.set(cfg, { file, at });
  return cfg;
}

/** A config file's text; a file that cannot be read is a ConfigInvalidError. */
export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigInvalidError(file, [{ path: '', line: 0, column: 0, message: code === 'ENOENT' ? 'file not found' : `cannot read: ${code}` }]);
  }
}

export async function loadConfigFile(file: string): Promise<PalisadeConfig> {
  return parseConfig(await readConfigText(file), file);
}
