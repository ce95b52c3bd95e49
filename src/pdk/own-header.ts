/**
 * Headers objects keyed by lower-case name: `__proto__` and `constructor` are
 * header names there, never what the object inherits. Reading `headers[name]`
 * for them would return Object.prototype or Object (so a header of that name
 * would always look present), and assigning `__proto__` would set the
 * prototype instead. An upstream's
 * `__proto__` response header is kept by undici as an own property; node:http
 * drops a client's, so on the request side it is simply absent.
 */

/** The header `name` of a headers object: its own property, never an inherited one. */
export function headerOf<V>(headers: Record<string, V>, name: string): V | undefined {
  return Object.hasOwn(headers, name) ? headers[name] : undefined;
}

/** Sets header `name` of a headers object (`__proto__` as an own property). */
export function setHeaderOf<V>(headers: Record<string, V>, name: string, value: NoInfer<V>): void {
  if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  else headers[name] = value;
}
