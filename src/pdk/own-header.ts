/**
 * Headers objects keyed by lower-case name: `__proto__` is a header name there,
 * never the object's prototype. Reading `headers[name]` for it would return
 * Object.prototype (so a request header of that name would always look
 * present), and assigning it would set the prototype instead. An upstream's
 * `__proto__` response header is kept by undici as an own property; node:http
 * drops a client's, so on the request side it is simply absent.
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
