/**
 * Masked secrets in a file given to `config diff` / `config sync`: where a
 * masked dump put `[REDACTED]` (a value under a secret field name, a plugin
 * config's header value, or the password of a URL — src/admin/redact.ts), the
 * value means "keep what the gateway has now". The
 * entity is found by id or name as the diff matches entities
 * (src/config/diff.ts) — a credential whose name is its masked key, by position
 * while that is certain — and the current value is written into the text in
 * place of the placeholder, on the same line (a JSON string is a YAML scalar),
 * so errors keep their line:column. A placeholder with nothing to keep (a new entity, a field the
 * gateway does not have) is an error at its line:column: a mask is never
 * taken literally, so a dump can never turn "[REDACTED]" into a password.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { flatten, match, type Entity } from '../config/diff.ts';
import { ConfigInvalidError, parseConfig, type ConfigError } from '../config/load.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { isSecretPath, MASK, urlPassword } from './redact.ts';

interface Placeholder {
  pointer: string[];
  start: number;
  end: number;
  value: string;
}

/** Scalars holding a mask where a dump would have put one. */
function placeholders(node: unknown, pointer: string[], out: Placeholder[]): Placeholder[] {
  if (isMap(node)) {
    for (const pair of node.items) if (isPair(pair) && isScalar(pair.key)) placeholders(pair.value, [...pointer, String(pair.key.value)], out);
  } else if (isSeq(node)) {
    node.items.forEach((n, i) => placeholders(n, [...pointer, String(i)], out));
  } else if (isScalar(node) && typeof node.value === 'string' && node.range) {
    if ((node.value === MASK && isSecretPath(pointer)) || node.value.includes(`:${MASK}@`)) {
      out.push({ pointer, start: node.range[0], end: node.range[1], value: node.value });
    }
  }
  return out;
}

function get(obj: unknown, path: string[]): unknown {
  let v = obj;
  for (const seg of path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  return v;
}

/** Credentials of one consumer and kind, in file order (from their positional slot `consumer|field#index`). */
function groups(entities: Entity[]): Map<string, Entity[]> {
  const out = new Map<string, Entity[]>();
  for (const e of entities) {
    if (e.kind !== 'credential') continue;
    const g = e.slot!.slice(0, e.slot!.lastIndexOf('#'));
    out.set(g, [...(out.get(g) ?? []), e]);
  }
  return out;
}

/**
 * Which current entity a desired one certainly is: the same id, or the same
 * name. A credential without either (its key is masked) is taken by position
 * only while nothing before it was removed, reordered or changed: after a
 * removal, the key at its position would be another credential's — the one
 * being revoked, say.
 */
class Partners {
  readonly #paired = new Map<Entity, Entity>();
  readonly #desired: Map<string, Entity[]>;
  readonly #current: Map<string, Entity[]>;

  constructor(current: Entity[], desired: Entity[]) {
    for (const kind of new Set(desired.map((e) => e.kind))) {
      for (const [c, d] of match(current.filter((e) => e.kind === kind), desired.filter((e) => e.kind === kind)).pairs) {
        if ((d.id !== undefined && d.id === c.id) || (d.key !== null && d.key === c.key)) this.#paired.set(d, c);
      }
    }
    this.#desired = groups(desired);
    this.#current = groups(current);
  }

  of(d: Entity): Entity | string {
    const c = this.#paired.get(d);
    if (c) return c;
    if (d.kind !== 'credential' || d.id !== undefined) return d.key === null && d.id === undefined ? `${d.label} has no name or id to find it by` : `${d.label} is new`;
    const g = d.slot!.slice(0, d.slot!.lastIndexOf('#'));
    const want = this.#desired.get(g)!;
    const have = this.#current.get(g) ?? [];
    const at = want.indexOf(d);
    if (at >= have.length) return `${d.label} is new`;
    const moved = want.length < have.length || have.some((c, i) => want[i]!.key !== null && want[i]!.key !== c.key);
    if (moved) return `${d.label} cannot be told apart: entries of that list were removed, moved or changed, so its position names no current one (give the credentials ids, or dump with --include-secrets)`;
    return have[at]!;
  }
}

/** The current value a placeholder stands for, or why there is none. */
function keep(p: Placeholder, byPointer: Map<string, Entity>, partners: Partners | null): string | { error: string } {
  let owner: Entity | undefined; // the innermost entity holding the placeholder
  for (let n = p.pointer.length - 1; n > 0 && !owner; n--) owner = byPointer.get('/' + p.pointer.slice(0, n).join('/'));
  const current = owner && partners ? partners.of(owner) : `${owner?.label ?? 'this place'} is new`;
  if (typeof current === 'string') return { error: `'${MASK}' keeps the gateway's current value, but ${current}: write the real value` };
  const value = get(current.obj, p.pointer.slice(owner!.pointer.split('/').length - 1));
  if (typeof value !== 'string') return { error: `'${MASK}' keeps the gateway's current value, but ${current.label} has none here: write the real value` };
  if (p.value === MASK) return value;
  const password = urlPassword(value);
  if (password === null) return { error: `'${MASK}' keeps the current URL password, but the gateway's ${current.label} has none here: write the real value` };
  return p.value.replace(`:${MASK}@`, `:${password}@`);
}

/**
 * Parse config text as a file reload does, after filling masked secrets from
 * `current` (null: nothing to keep). Returns the config and the text to persist.
 * Throws ConfigInvalidError (line:column) like parseConfig.
 */
export function parseKeepingMasked(text: string, current: PalisadeConfig | null, file: string): { config: PalisadeConfig; text: string } {
  if (!text.includes(MASK)) return { config: parseConfig(text, file), text };
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) return { config: parseConfig(text, file), text }; // parseConfig reports them
  const found = placeholders(doc.contents as Node, [], []);
  if (found.length === 0) return { config: parseConfig(text, file), text };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch {
    return { config: parseConfig(text, file), text }; // a broken alias: parseConfig reports it with its position
  }
  const desired = flatten(raw);
  const byPointer = new Map(desired.map((e) => [e.pointer, e]));
  const partners = current === null ? null : new Partners(flatten(current), desired);
  const errors: ConfigError[] = [];
  const pieces: string[] = [];
  let from = 0;
  for (const p of found.sort((a, b) => a.start - b.start)) {
    const v = keep(p, byPointer, partners);
    if (typeof v === 'string') {
      pieces.push(text.slice(from, p.start), JSON.stringify(v));
      from = p.end;
    } else {
      const pos = lc.linePos(p.start);
      errors.push({ path: '/' + p.pointer.join('/'), line: pos.line, column: pos.col, message: v.error });
    }
  }
  pieces.push(text.slice(from));
  const out = pieces.join('');
  if (errors.length > 0) throw new ConfigInvalidError(file, errors);
  return { config: parseConfig(out, file), text: out };
}
