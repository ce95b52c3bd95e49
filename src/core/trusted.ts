/** Trusted proxies: whose X-Forwarded-* and X-Request-Id headers are believed. */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export class TrustedIps {
  readonly #list = new BlockList();
  readonly #any: boolean;
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.#any = entries.includes('0.0.0.0/0') && entries.includes('::/0');
    this.empty = entries.length === 0;
    for (const entry of entries) addEntry(this.#list, entry);
  }

  has(ip: string): boolean {
    if (this.empty) return false;
    if (this.#any) return true;
    return contains(this.#list, ip);
  }
}

/** Adds an IP or CIDR; throws with a readable message on a malformed entry. */
export function addEntry(list: BlockList, entry: string): void {
  const [addr, bits] = entry.split('/') as [string, string | undefined];
  const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : null;
  if (!type) throw new Error(`'${entry}' is not an IP address or CIDR`);
  if (bits === undefined) list.addAddress(addr, type);
  else {
    const n = Number(bits);
    if (!Number.isInteger(n) || n < 0 || n > (type === 'ipv4' ? 32 : 128)) throw new Error(`'${entry}' has an invalid prefix length`);
    list.addSubnet(addr, n, type);
  }
}

export function contains(list: BlockList, ip: string): boolean {
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) ip = ip.slice(7);
  return list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
}

/** Normalises the socket address (IPv4-mapped IPv6 → IPv4). */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/**
 * The real client IP of a request from a trusted peer (the caller checked):
 * X-Forwarded-For
 * is walked from the right and the first untrusted address is the client.
 */
export function realClientIp(peer: string, xff: string | undefined, trusted: TrustedIps): string {
  if (!xff) return peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hopAddress(hops[i]!.trim());
    // A hop that is not an address: the client cannot be known. Fail closed ('' matches no allow-list),
    // never fall back to the trusted proxy's own address.
    if (hop === null) return '';
    if (!trusted.has(hop) || i === 0) return hop;
  }
  return peer;
}

/** An X-Forwarded-For entry as an address: IPv4, IPv6, or either with a port (1.2.3.4:5678, [::1]:5678). */
function hopAddress(entry: string): string | null {
  let ip = normalizeIp(entry);
  if (isIPv4(ip) || isIPv6(ip)) return ip;
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry);
  const v6port = /^\[([0-9a-fA-F:.]+)\]:\d{1,5}$/.exec(entry);
  ip = normalizeIp(v4port?.[1] ?? v6port?.[1] ?? '');
  return isIPv4(ip) || isIPv6(ip) ? ip : null;
}
