/**
 * RFC 9421 §2: component values and the signature base. Pure functions over a
 * MessageView so that the base can be checked byte for byte against the RFC's
 * examples. Every deviation (unknown derived component, missing field,
 * unsupported parameter, duplicate identifier) throws ComponentError: the
 * signature then fails to verify (fail closed).
 *
 * Supported: @method, @target-uri, @authority, @scheme, @request-target,
 * @path, @query, @query-param;name="…", @status (responses only), header
 * fields with `sf`, `key` and `bs`. Not supported (rejected): `req`, `tr`.
 */
import {
  parseDictionary,
  parseItem,
  parseList,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeList,
  serializeMember,
  SfError,
  type InnerList,
  type Item,
} from './structured-fields.ts';

export class ComponentError extends Error {}

/** What the base is built from: a request (or, for tests, a response). */
export interface MessageView {
  readonly method: string;
  /** The request target as received (origin form "/p?q", or absolute form). */
  readonly target: string;
  /** Lower-case scheme of the target URI. */
  readonly scheme: string;
  /** Normalised authority: lower-case host, default port omitted. */
  readonly authority: string;
  /** Set for responses only. */
  readonly status?: number;
  /** The values of every line of a header field (lower-case name), in order; empty when absent. */
  fieldLines(name: string): readonly string[];
}

const DERIVED = new Set(['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', '@query-param', '@status']);
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Fields whose structured type Palisade knows (for `sf`); others are tried as List, then Dictionary, then Item. */
const SF_TYPES: Record<string, 'dict' | 'list' | 'item'> = {
  'content-digest': 'dict',
  'repr-digest': 'dict',
  'want-content-digest': 'dict',
  'want-repr-digest': 'dict',
  'signature': 'dict',
  'signature-input': 'dict',
  'accept-signature': 'dict',
  'priority': 'dict',
  'cache-status': 'list',
  'proxy-status': 'list',
  'client-cert': 'item',
  'client-cert-chain': 'list',
};

/** Component names a config may require (derived names and lower-case field names). */
export function isComponentName(name: string): boolean {
  return DERIVED.has(name) || FIELD_NAME.test(name);
}

/** application/x-www-form-urlencoded percent-encode set, UTF-8, space as %20 (RFC 9421 §2.2.8). */
export function formEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const keep = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f;
    out += keep ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Path and query of the target (raw, undecoded). */
function splitTarget(target: string): { path: string; query: string | null } {
  let rest = target;
  if (!rest.startsWith('/')) {
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
    if (m === null) throw new ComponentError('request target has no path');
    rest = rest.slice(m[0].length);
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return { path: path === '' ? '/' : path, query: q < 0 ? null : rest.slice(q + 1) };
}

function derivedValue(msg: MessageView, name: string, item: Item): string {
  const isResponse = msg.status !== undefined;
  if (name === '@status') {
    if (!isResponse) throw new ComponentError('@status is not allowed in a request');
    return String(msg.status);
  }
  if (isResponse) throw new ComponentError(`${name} needs the request (req is not supported)`);
  switch (name) {
    case '@method':
      return msg.method;
    case '@scheme':
      return msg.scheme;
    case '@authority':
      return msg.authority;
    case '@request-target':
      return msg.target;
    case '@target-uri':
      return msg.target.startsWith('/') ? `${msg.scheme}://${msg.authority}${msg.target}` : msg.target;
    case '@path':
      return splitTarget(msg.target).path;
    case '@query': {
      const q = splitTarget(msg.target).query;
      return `?${q ?? ''}`;
    }
    case '@query-param': {
      const n = item.params.get('name');
      if (n === undefined || n.t !== 'str') throw new ComponentError('@query-param needs a name parameter');
      const q = splitTarget(msg.target).query ?? '';
      let found: string | null = null;
      for (const [k, v] of new URLSearchParams(q)) {
        if (formEncode(k) !== n.v) continue;
        if (found !== null) throw new ComponentError(`query parameter '${n.v}' occurs more than once`);
        found = formEncode(v);
      }
      if (found === null) throw new ComponentError(`query parameter '${n.v}' is missing`);
      return found;
    }
  }
  throw new ComponentError(`unknown derived component ${name}`);
}

function structured(name: string, raw: string): string {
  const type = SF_TYPES[name];
  try {
    if (type === 'dict') return serializeDictionary(parseDictionary(raw));
    if (type === 'list') return serializeList(parseList(raw));
    if (type === 'item') return serializeItem(parseItem(raw));
  } catch (err) {
    if (err instanceof SfError) throw new ComponentError(`field ${name} is not a valid structured field`);
    throw err;
  }
  for (const attempt of [() => serializeList(parseList(raw)), () => serializeDictionary(parseDictionary(raw)), () => serializeItem(parseItem(raw))]) {
    try {
      return attempt();
    } catch (err) {
      if (!(err instanceof SfError)) throw err;
    }
  }
  throw new ComponentError(`field ${name} is not a valid structured field`);
}

function fieldValue(msg: MessageView, name: string, item: Item): string {
  for (const k of item.params.keys()) {
    if (k !== 'sf' && k !== 'key' && k !== 'bs') throw new ComponentError(`component parameter '${k}' is not supported`);
  }
  const lines = msg.fieldLines(name);
  if (lines.length === 0) throw new ComponentError(`covered field ${name} is missing`);
  // §2.1: each line stripped of surrounding whitespace, obs-fold replaced by a space.
  const values = lines.map((l) => l.replace(/\r?\n[ \t]+/g, ' ').trim());
  const bs = item.params.get('bs');
  if (bs !== undefined) {
    if (bs.t !== 'bool' || !bs.v) throw new ComponentError('bs parameter must be true');
    if (item.params.size > 1) throw new ComponentError('bs cannot be combined with sf or key');
    return values.map((v) => `:${Buffer.from(v, 'latin1').toString('base64')}:`).join(', ');
  }
  const raw = values.join(', ');
  const key = item.params.get('key');
  if (key !== undefined) {
    if (key.t !== 'str') throw new ComponentError('key parameter must be a string');
    let member;
    try {
      member = parseDictionary(raw).get(key.v);
    } catch (err) {
      if (err instanceof SfError) throw new ComponentError(`field ${name} is not a valid dictionary`);
      throw err;
    }
    if (member === undefined) throw new ComponentError(`dictionary key ${key.v} is missing from ${name}`);
    return serializeMember(member);
  }
  const sf = item.params.get('sf');
  if (sf !== undefined) {
    if (sf.t !== 'bool' || !sf.v) throw new ComponentError('sf parameter must be true');
    return structured(name, raw);
  }
  return raw;
}

/** Equality of component identifiers ignores the order of their parameters (§2). */
function identityKey(item: Item): string {
  const params = [...item.params.entries()].map(([k, v]) => serializeItem({ kind: 'item', value: { t: 'bool', v: true }, params: new Map([[k, v]]) })).sort();
  return `${(item.value as { v: string }).v}${params.join('')}`;
}

/** The component value for one identifier. */
export function componentValue(msg: MessageView, item: Item): string {
  if (item.value.t !== 'str') throw new ComponentError('component identifiers must be strings');
  const name = item.value.v;
  let value: string;
  if (name.startsWith('@')) {
    if (!DERIVED.has(name)) throw new ComponentError(`unknown derived component ${name}`);
    for (const k of item.params.keys()) {
      if (!(name === '@query-param' && k === 'name')) throw new ComponentError(`component parameter '${k}' is not supported on ${name}`);
    }
    value = derivedValue(msg, name, item);
  } else {
    if (!FIELD_NAME.test(name)) throw new ComponentError(`invalid component name ${JSON.stringify(name)}`);
    value = fieldValue(msg, name, item);
  }
  if (value.includes('\n') || value.includes('\r')) throw new ComponentError(`component ${name} contains a newline`);
  return value;
}

/**
 * The signature base (§2.5) for the covered components and parameters of
 * one signature, as the bytes that are signed.
 */
export function signatureBase(msg: MessageView, signatureParams: InnerList): string {
  const seen = new Set<string>();
  let base = '';
  for (const item of signatureParams.items) {
    if (item.value.t !== 'str') throw new ComponentError('component identifiers must be strings');
    if (item.value.v === '@signature-params') throw new ComponentError('@signature-params cannot be covered');
    const id = identityKey(item);
    if (seen.has(id)) throw new ComponentError(`component ${item.value.v} is covered twice`);
    seen.add(id);
    base += `${serializeItem(item)}: ${componentValue(msg, item)}\n`;
  }
  base += `"@signature-params": ${serializeInnerList(signatureParams)}`;
  return base;
}
