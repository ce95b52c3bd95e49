/**
 * A set of IP addresses and CIDR ranges (IPv4 and IPv6) over node:net
 * BlockList, for ip-restriction and the gateway's trusted_ips: entries are checked strictly when the config is validated and
 * compiled once; a lookup is one native call. BlockList matches an
 * IPv4-mapped IPv6 address (::ffff:192.0.2.7) against IPv4 entries and an
 * IPv4 address against ::ffff:… entries, so both spellings of a client are
 * the same client.
 */
import { BlockList, isIP } from 'node:net';

const PREFIX = /^\d{1,3}$/;

/** Why `entry` is not an IP address or CIDR range, or null when it is one. */
export function entryError(entry: string): string | null {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  const family = addr.includes('%') ? 0 : isIP(addr);
  if (family === 0) return `'${entry}' is not an IP address or CIDR range`;
  if (slash < 0) return null;
  const bits = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!PREFIX.test(bits) || Number(bits) > max) return `'${entry}' has an invalid prefix length (0 to ${max})`;
  return null;
}

/** The first invalid entry of a list, as "<field>[<index>]: why", or null. */
export function listError(field: string, entries: readonly string[]): string | null {
  for (let i = 0; i < entries.length; i++) {
    const e = entryError(entries[i]!);
    if (e !== null) return `${field}[${i}]: ${e}`;
  }
  return null;
}

export class IpSet {
  readonly #list = new BlockList();

  /** Entries must be valid (listError); throws otherwise. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const slash = entry.indexOf('/');
      const addr = slash < 0 ? entry : entry.slice(0, slash);
      const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(entry.slice(slash + 1)), type);
    }
  }

  /** Whether the address (IPv4 or IPv6; anything else is in no set) is in the set. */
  has(ip: string): boolean {
    return this.#list.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  }
}
