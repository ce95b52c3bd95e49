/**
 * Entity-level diff of two configs, the way decK shows one: services, routes,
 * upstreams, targets, consumers, their credentials, consumer groups, plugins,
 * certificates and the top-level settings sections (server, admin, audit:
 * every object section of the schema) are flattened into entities
 * (nested routes and plugins are entities of their own, whether nested or
 * declared at top level), matched, and compared field by field.
 *
 * Matching, per kind: by `id` when both sides have it, then by name (routes,
 * services, upstreams, consumer groups: `name`; consumers: `username`, else
 * `custom_id`; targets: upstream + `target`; credentials: consumer + kind +
 * their natural key — key-auth `key`, basic-auth and hmac-auth `username`, jwt
 * `key`, acl `group`, mtls-auth `subject_name`; plugins: name + scope +
 * `instance_name`; certificates: the certificate itself), and last by position
 * for what has no usable name (unnamed routes, credentials whose key is
 * masked). Both configs are compared as loaded (defaults filled), so writing a
 * default out or leaving it implicit is no change.
 *
 * The result never holds a secret: values are masked like GET /config
 * (src/admin/redact.ts), and labels never use a secret field.
 */
import { createHash } from 'node:crypto';
import { isSecretKey, MASK, redactConfig } from '../admin/redact.ts';
import { allPlugins } from '../plugins/registry.ts';
import { ConfigSchema } from './schema.ts';
import { refName } from './semantics.ts';

/** The top-level settings sections (server, admin, audit, …): the schema's object-valued fields, decK's `_` metadata aside. */
export const SETTINGS_SECTIONS: readonly string[] = Object.entries(ConfigSchema.properties)
  .filter(([name, schema]) => !name.startsWith('_') && (schema as { type?: unknown }).type === 'object')
  .map(([name]) => name);

export type EntityKind = 'settings' | 'certificate' | 'consumer_group' | 'consumer' | 'credential' | 'upstream' | 'target' | 'service' | 'route' | 'plugin';
const KINDS: EntityKind[] = ['settings', 'certificate', 'consumer_group', 'consumer', 'credential', 'upstream', 'target', 'service', 'route', 'plugin'];

/** One flattened entity of a config. */
export interface Entity {
  kind: EntityKind;
  /** For people; never built from a secret field. */
  label: string;
  id?: string;
  /** Name-like identity (null: none usable). */
  key: string | null;
  /** Positional identity, the last resort (unnamed routes, credentials with a masked or missing key). */
  slot?: string;
  /** JSON pointer of the entity in its config. */
  pointer: string;
  /** The entity as written (nested entities included). */
  obj: Record<string, unknown>;
  /** What is compared: the entity without its nested entities, references normalised. */
  value: Record<string, unknown>;
}

export interface FieldChange {
  /** Dotted path inside the entity, e.g. config.minute. */
  path: string;
  /** Absent: not set. Masked when secret. */
  before?: unknown;
  after?: unknown;
}

export interface EntityChange {
  action: 'add' | 'change' | 'remove' | 'reorder';
  kind: EntityKind;
  name: string;
  /** change: the fields that differ; reorder: the order before and after. */
  fields?: FieldChange[];
  /** add / remove: the entity, secrets masked. */
  entity?: unknown;
}

export interface ConfigDiff {
  same: boolean;
  summary: { add: number; change: number; remove: number };
  changes: EntityChange[];
}

/** The field of a credential that names it, per credential kind. */
const NATURAL_KEY: Record<string, string[]> = {
  keyauth_credentials: ['key', 'key_hash'],
  basicauth_credentials: ['username'],
  hmacauth_credentials: ['username'],
  jwt_secrets: ['key'],
  acls: ['group'],
  mtls_auth_credentials: ['subject_name'],
};

type Obj = Record<string, unknown>;
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter((x): x is Obj => x !== null && typeof x === 'object') : []);
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
function omit(o: Obj, keys: string[]): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) if (!keys.includes(k)) out[k] = v;
  return out;
}

function credentialFields(): string[] {
  return allPlugins().flatMap((p) => (p.credential ? [p.credential.field] : []));
}

/**
 * Every entity of a config, loaded or raw (defaults missing, shapes unchecked:
 * used on a file before validation), in file order.
 */
export function flatten(cfg: unknown): Entity[] {
  const c = (cfg ?? {}) as Obj;
  const out: Entity[] = [];
  const add = (e: Omit<Entity, 'id'> & { id?: unknown }) => out.push({ ...e, id: str(e.id) });
  for (const section of SETTINGS_SECTIONS) {
    const o = (c[section] ?? {}) as Obj;
    add({ kind: 'settings', label: `${section} settings`, key: section, pointer: `/${section}`, obj: o, value: o });
  }
  for (const [i, cert] of list(c.certificates).entries()) {
    const snis = (Array.isArray(cert.snis) ? (cert.snis as unknown[]) : []).map((s) => (isObj(s) ? s.name : s));
    const fp = createHash('sha256').update(String(cert.cert ?? '').trim()).digest('hex');
    add({ kind: 'certificate', label: `certificate ${snis.length ? snis.join(', ') : `sha256:${fp.slice(0, 16)}`}`, id: cert.id, key: fp, pointer: `/certificates/${i}`, obj: cert, value: cert });
  }
  for (const [i, g] of list(c.consumer_groups).entries()) {
    add({ kind: 'consumer_group', label: `consumer_group ${g.name ?? g.id}`, id: g.id, key: str(g.name) ?? null, pointer: `/consumer_groups/${i}`, obj: g, value: g });
  }
  const credFields = credentialFields();
  const plugins: [Obj, string, { service?: string; route?: string; consumer?: string }][] = [];
  for (const [i, u] of list(c.consumers).entries()) {
    const ptr = `/consumers/${i}`;
    const name = str(u.username) ?? str(u.custom_id) ?? str(u.id) ?? `#${i + 1}`;
    const key = u.username !== undefined ? `username:${u.username}` : u.custom_id !== undefined ? `custom_id:${u.custom_id}` : null;
    add({ kind: 'consumer', label: `consumer ${name}`, id: u.id, key, pointer: ptr, obj: u, value: omit(u, ['plugins', ...credFields]) });
    for (const field of credFields) {
      for (const [j, cred] of list(u[field]).entries()) {
        const naturalField = (NATURAL_KEY[field] ?? []).find((f) => typeof cred[f] === 'string');
        const natural = naturalField ? String(cred[naturalField]) : undefined;
        const usable = natural !== undefined && !natural.includes(MASK);
        const shown = usable && !isSecretKey(naturalField!) ? natural : `#${j + 1}`;
        add({
          kind: 'credential', label: `${field} ${shown} (consumer ${name})`, id: cred.id,
          key: usable ? `${name}|${field}|${naturalField}=${natural}` : null, slot: `${name}|${field}#${j}`,
          pointer: `${ptr}/${field}/${j}`, obj: cred, value: cred,
        });
      }
    }
    for (const [j, p] of list(u.plugins).entries()) plugins.push([p, `${ptr}/plugins/${j}`, { consumer: name }]);
  }
  for (const [i, u] of list(c.upstreams).entries()) {
    const ptr = `/upstreams/${i}`;
    add({ kind: 'upstream', label: `upstream ${u.name}`, id: u.id, key: str(u.name) ?? null, pointer: ptr, obj: u, value: omit(u, ['targets']) });
    for (const [j, t] of list(u.targets).entries()) {
      add({ kind: 'target', label: `target ${t.target} (upstream ${u.name})`, id: t.id, key: `${u.name}|${t.target}`, pointer: `${ptr}/targets/${j}`, obj: t, value: t });
    }
  }
  const route = (r: Obj, ptr: string, service: string | undefined, fallback: string) => {
    const match = JSON.stringify([r.paths, r.hosts, r.methods, r.headers, r.snis]);
    const where = [service && `service ${service}`, Array.isArray(r.paths) && `paths ${r.paths.join(' ')}`, Array.isArray(r.hosts) && `hosts ${r.hosts.join(' ')}`].filter(Boolean).join(', ');
    const name = str(r.name);
    add({
      kind: 'route', label: name ? `route ${name}${service ? ` (service ${service})` : ''}` : `route (${where})`, id: r.id,
      key: name ?? `~${service}|${match}`, slot: name ? undefined : fallback, pointer: ptr, obj: r, value: { ...omit(r, ['plugins', 'service']), service },
    });
    for (const [j, p] of list(r.plugins).entries()) plugins.push([p, `${ptr}/plugins/${j}`, { route: name ?? str(r.id) ?? fallback }]);
  };
  for (const [i, s] of list(c.services).entries()) {
    const ptr = `/services/${i}`;
    const name = str(s.name) ?? str(s.id) ?? `#${i}`;
    add({ kind: 'service', label: `service ${name}`, id: s.id, key: str(s.name) ?? null, slot: s.name === undefined ? `#${i}` : undefined, pointer: ptr, obj: s, value: omit(s, ['routes', 'plugins']) });
    for (const [k, r] of list(s.routes).entries()) route(r, `${ptr}/routes/${k}`, name, `${name}#${k}`);
    for (const [j, p] of list(s.plugins).entries()) plugins.push([p, `${ptr}/plugins/${j}`, { service: name }]);
  }
  for (const [k, r] of list(c.routes).entries()) route(r, `/routes/${k}`, refName(r.service), `#${k}`);
  for (const [j, p] of list(c.plugins).entries()) plugins.push([p, `/plugins/${j}`, {}]);
  for (const [p, ptr, nested] of plugins) {
    const scope = { service: refName(p.service) ?? nested.service, route: refName(p.route) ?? nested.route, consumer: refName(p.consumer) ?? nested.consumer };
    const where = Object.entries(scope).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`).join(', ') || 'global';
    const instance = str(p.instance_name);
    add({
      kind: 'plugin', label: `plugin ${p.name}${instance ? ` "${instance}"` : ''} (${where})`, id: p.id,
      key: `${p.name}|${scope.service ?? ''}|${scope.route ?? ''}|${scope.consumer ?? ''}|${instance ?? ''}`, pointer: ptr, obj: p, value: { ...omit(p, ['service', 'route', 'consumer']), ...scope },
    });
  }
  return out;
}

/** Pairs of (current, desired) entities of one kind: by id, then by name, then by position. */
export function match(current: Entity[], desired: Entity[]): { pairs: [Entity, Entity][]; added: Entity[]; removed: Entity[] } {
  const left = new Set(current);
  const paired = new Map<Entity, Entity>();
  const pass = (id: (e: Entity) => string | null | undefined) => {
    const index = new Map<string, Entity>();
    for (const e of left) {
      const k = id(e);
      if (k != null && !index.has(k)) index.set(k, e);
    }
    for (const d of desired) {
      const k = id(d);
      if (paired.has(d) || k == null) continue;
      const e = index.get(k);
      if (e && left.has(e)) {
        paired.set(d, e);
        left.delete(e);
      }
    }
  };
  pass((e) => (e.id === undefined ? null : `${e.kind}|${e.id}`));
  pass((e) => (e.key === null ? null : `${e.kind}|${e.key}`));
  pass((e) => (e.slot === undefined ? null : `${e.kind}|${e.slot}`));
  return {
    pairs: desired.filter((d) => paired.has(d)).map((d) => [paired.get(d)!, d]),
    added: desired.filter((d) => !paired.has(d)),
    removed: current.filter((e) => left.has(e)),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** JSON pointer segments of an entity (masking rules depend on the place: a plugin's config headers). */
const segments = (pointer: string) => pointer.split('/').slice(1);

/** Field-level differences (objects descended into, arrays compared whole), secrets masked; `at`: the entity's place. */
function fieldChanges(a: unknown, b: unknown, at: string[], path: string[] = []): FieldChange[] {
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => fieldChanges(a[k], b[k], at, [...path, k]));
  }
  if (same(a, b)) return [];
  const change: FieldChange = { path: path.join('.') };
  if (a !== undefined) change.before = redactConfig(a, [...at, ...path]);
  if (b !== undefined) change.after = redactConfig(b, [...at, ...path]);
  return [change];
}

/** Whether entities of this kind that both sides have keep their relative order. */
function reorder(kind: EntityKind, pairs: [Entity, Entity][], current: Entity[]): EntityChange | null {
  const index = new Map(current.map((e, i) => [e, i]));
  const at = (e: Entity) => index.get(e)!;
  if (pairs.every(([c], i) => i === 0 || at(pairs[i - 1]![0]) < at(c))) return null;
  const before = [...pairs].sort((x, y) => at(x[0]) - at(y[0])).map(([, d]) => d.label);
  return { action: 'reorder', kind, name: `${kind}s`, fields: [{ path: 'order', before, after: pairs.map(([, d]) => d.label) }] };
}

/** What changes when `desired` replaces `current`. */
export function diffConfigs(current: unknown, desired: unknown): ConfigDiff {
  const cur = flatten(current);
  const des = flatten(desired);
  const changes: EntityChange[] = [];
  for (const kind of KINDS) {
    const c = cur.filter((e) => e.kind === kind);
    const { pairs, added, removed } = match(c, des.filter((e) => e.kind === kind));
    for (const d of added) changes.push({ action: 'add', kind, name: d.label, entity: redactConfig(d.value, segments(d.pointer)) });
    for (const [e, d] of pairs) {
      const fields = fieldChanges(e.value, d.value, segments(d.pointer));
      if (fields.length > 0) changes.push({ action: 'change', kind, name: d.label, fields });
    }
    for (const e of removed) changes.push({ action: 'remove', kind, name: e.label, entity: redactConfig(e.value, segments(e.pointer)) });
    // Route order breaks ties between equally specific routes; the first certificate is the default one.
    const moved = kind === 'route' || kind === 'certificate' ? reorder(kind, pairs, c) : null;
    if (moved) changes.push(moved);
  }
  const count = (a: EntityChange['action']) => changes.filter((x) => x.action === a).length;
  return { same: changes.length === 0, summary: { add: count('add'), change: count('change') + count('reorder'), remove: count('remove') }, changes };
}
