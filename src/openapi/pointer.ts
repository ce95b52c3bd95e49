/**
 * JSON Pointers (RFC 6901) over a parsed document: encode, decode, look up.
 */

/** Escape one reference token ("~" → "~0", "/" → "~1"). */
export function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** A pointer from tokens: ['paths', '/pets', 'get'] → "/paths/~1pets/get". */
export function toPointer(tokens: readonly (string | number)[]): string {
  let out = '';
  for (const t of tokens) out += '/' + escapeToken(String(t));
  return out;
}

/** Append tokens to a pointer. */
export function join(pointer: string, ...tokens: (string | number)[]): string {
  return pointer + toPointer(tokens);
}

/** The tokens of a pointer ("" = the whole document). */
export function parsePointer(pointer: string): string[] {
  if (pointer === '' || pointer === '#') return [];
  const p = pointer.startsWith('#') ? decodeURIComponent(pointer.slice(1)) : pointer;
  if (!p.startsWith('/')) throw new Error(`'${pointer}' is not a JSON pointer`);
  return p.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at a pointer, or undefined when a token is missing. */
export function getAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const token of parsePointer(pointer)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when the value is a Reference Object ({ $ref: string }). */
export function isRef(value: unknown): value is { $ref: string } {
  return isObject(value) && typeof value.$ref === 'string';
}
