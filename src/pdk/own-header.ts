/**
 * Headers objects keyed by lower-case name: `__proto__` is a header name there
 * (undici keeps it as an own property; a client or upstream can send it), never
 * the object's prototype. Reading `headers[name]` for it would return
 * Object.prototype, and assigning it would set the prototype instead.
 */

/** The header `name` of a headers object (own properties only for `__proto__`). */
export function headerOf<V>(headers: Record<string, V>, name: string): V | undefined {
  return name === '__proto__' && !Object.hasOwn(headers, name) ? undefined : headers[name];
}

/** Sets header `name` of a headers object (`__proto__` as an own property). */
export function setHeaderOf<V>(headers: Record<string, V>, name: string, value: NoInfer<V>): void {
  if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  else headers[name] = value;
}
