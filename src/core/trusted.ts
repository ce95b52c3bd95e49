/** Trusted proxies: whose X-Forwarded-* and X-Request-Id headers are believed. */
import { isIPv4, isIPv6 } from 'node:net';
import { IpSet } from '../pdk/ip-set.ts';

export class TrustedIps {
  readonly #set: IpSet;
  readonly #any: boolean;
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.#any = entries.includes('0.0.0.0/0') && entries.includes('::/0');
    this.empty = entries.length === 0;
    this.#set = new IpSet(entries); // validated with the config (entryError)
  }

  has(ip: string): boolean {
    if (this.empty) return false;
    if (this.#any) return true;
    return this.#set.has(ip);
  }
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
