/**
 * mtls-auth's certificate checks, done by the plugin itself with node:crypto
 * X509Certificate (not left to the listener, whose CA list may differ):
 * chain building from the client certificate through the intermediates it
 * sent to one of the configured CA certificates (each link: issuer name and
 * key identifiers, CA flag, signature, validity dates), the clientAuth
 * extended key usage, and revocation against the configured CRLs.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { normalizeSerial, parseCrl, type Crl } from './crl.ts';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';
const MAX_DEPTH = 8;

export type RevocationMode = 'IGNORE_CA_ERROR' | 'SKIP' | 'STRICT';

/** Split a PEM bundle into certificates; throws on anything that is not one. */
export function pemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (blocks === null) throw new Error('no PEM certificate');
  return blocks.map((b) => new X509Certificate(b));
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TrustConfig {
  ca_certificates: string[];
  crls: string[];
  allow_partial_chain: boolean;
  revocation_check_mode: RevocationMode;
}

export interface Verified {
  /** The client certificate first, then each issuer up to the configured CA the chain ends at. */
  readonly chain: readonly X509Certificate[];
  /** Epoch ms after which this result must not be reused (the earliest notAfter, a CRL's nextUpdate in STRICT). */
  readonly expires: number;
}

/** Compiled once per plugin instance: the trust anchors and their CRLs. */
export class TrustStore {
  readonly cas: readonly X509Certificate[];
  readonly #crls = new Map<X509Certificate, Crl>();
  readonly #partial: boolean;
  readonly #mode: RevocationMode;

  /** Throws an Error naming the offending field on a bad certificate or CRL. */
  constructor(c: TrustConfig) {
    const cas: X509Certificate[] = [];
    for (const [i, pem] of c.ca_certificates.entries()) {
      if (UUID.test(pem.trim())) throw new Error(`ca_certificates[${i}]: Kong CA certificate ids are not supported, give the PEM certificate itself`);
      try {
        cas.push(...pemCertificates(pem));
      } catch (err) {
        throw new Error(`ca_certificates[${i}] is not a PEM certificate (${(err as Error).message})`);
      }
    }
    this.cas = cas;
    for (const [i, text] of c.crls.entries()) {
      let crl: Crl;
      try {
        crl = parseCrl(text, cas);
      } catch (err) {
        throw new Error(`crls[${i}]: ${(err as Error).message}`);
      }
      const prev = this.#crls.get(crl.issuer);
      if (prev === undefined || crl.thisUpdate > prev.thisUpdate) this.#crls.set(crl.issuer, crl);
    }
    this.#partial = c.allow_partial_chain;
    this.#mode = c.revocation_check_mode;
  }

  /** CRLs whose nextUpdate has passed (for a warning at start). */
  staleCrls(now: number): X509Certificate[] {
    return [...this.#crls.values()].filter((c) => c.nextUpdate !== null && c.nextUpdate < now).map((c) => c.issuer);
  }

  /** Verify the client certificate (with the intermediates it sent); a reason string when it fails. */
  verify(peer: PeerCertificate, now: number): Verified | string {
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(peer.raw);
    } catch {
      return 'unparsable client certificate';
    }
    const presented = presentedChain(peer);
    if (!validAt(leaf, now)) return 'certificate expired or not yet valid';
    const eku = leaf.keyUsage;
    if (eku !== undefined && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) return 'certificate not meant for client authentication';
    const chain: X509Certificate[] = [leaf];
    let expires = leaf.validToDate.getTime();
    let current = leaf;
    for (let depth = 0; ; depth++) {
      if (depth >= MAX_DEPTH) return 'certificate chain too long';
      const anchor = this.cas.find((ca) => issued(current, ca));
      if (anchor !== undefined) {
        if (!validAt(anchor, now)) return 'CA certificate expired';
        chain.push(anchor);
        expires = Math.min(expires, anchor.validToDate.getTime());
        // A self-signed CA ends the chain; a configured intermediate only with allow_partial_chain.
        if (this.#partial || issued(anchor, anchor)) break;
        current = anchor;
        continue;
      }
      const next = presented.find((p) => p.ca && !chain.includes(p) && issued(current, p));
      if (next === undefined) return 'unable to get issuer certificate';
      if (!validAt(next, now)) return 'intermediate certificate expired';
      chain.push(next);
      expires = Math.min(expires, next.validToDate.getTime());
      current = next;
    }
    if (this.#mode !== 'SKIP') {
      for (let i = 0; i + 1 < chain.length; i++) {
        const crl = this.#crls.get(chain[i + 1]!);
        if (crl === undefined) {
          if (this.#mode === 'STRICT') return 'no CRL for the issuer (revocation_check_mode STRICT)';
          continue;
        }
        if (crl.revoked.has(normalizeSerial(chain[i]!.serialNumber))) return 'certificate revoked';
        if (crl.nextUpdate !== null && this.#mode === 'STRICT') {
          if (crl.nextUpdate < now) return 'CRL expired (revocation_check_mode STRICT)';
          expires = Math.min(expires, crl.nextUpdate);
        }
      }
    }
    return { chain, expires };
  }
}

/** `issuer` issued `cert`: names and key identifiers match (X509_check_issued) and the signature verifies. */
function issued(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validAt(c: X509Certificate, now: number): boolean {
  return c.validFromDate.getTime() <= now && now <= c.validToDate.getTime();
}

/** The certificates the client sent after its own (node links them through issuerCertificate). */
function presentedChain(peer: PeerCertificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>([peer.fingerprint256]);
  let p = (peer as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  while (p !== undefined && p !== null && p.raw !== undefined && !seen.has(p.fingerprint256) && out.length < MAX_DEPTH) {
    seen.add(p.fingerprint256);
    try {
      out.push(new X509Certificate(p.raw));
    } catch {
      break;
    }
    p = (p as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return out;
}

/** RFC 4514 unescaping of one attribute value as node prints it (backslash + character, or + two hex digits). */
function unescapeValue(v: string): string {
  if (!v.includes('\\')) return v;
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\' && i + 1 < v.length) {
      const hex = v.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      i++;
    }
    bytes.push(...Buffer.from(v[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

export interface Identity {
  /** Subject DN in RFC 4514 order (most specific first), like nginx's $ssl_client_s_dn. */
  readonly dn: string;
  /** The most specific CN, or null. */
  readonly cn: string | null;
  /** Subject names to match, in order: SAN DNS, email, URI and IP entries, then the CN (Kong). */
  readonly names: readonly string[];
}

/** Names of a certificate (node prints the subject one RDN per line, RFC 2253-escaped). */
export function identityOf(cert: X509Certificate): Identity {
  const rdns = cert.subject.split('\n').filter((l) => l !== '');
  const dn = rdns.slice().reverse().map((r) => r.split(' + ').join('+')).join(',');
  let cn: string | null = null;
  for (const rdn of rdns) for (const ava of rdn.split(' + ')) if (ava.startsWith('CN=')) cn = unescapeValue(ava.slice(3));
  const names = sanValues(cert.subjectAltName ?? '');
  if (cn !== null) names.push(cn);
  return { dn, cn, names };
}

const SAN_TYPES = new Set(['DNS', 'email', 'URI', 'IP Address']);

/** Parse node's subjectAltName ("DNS:a, email:b, URI:\"c,d\"" — values with special characters JSON-quoted). */
export function sanValues(san: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        break;
      }
      next = j + 1;
    } else {
      const comma = san.indexOf(', ', colon + 1);
      next = comma < 0 ? san.length : comma;
      value = san.slice(colon + 1, next);
    }
    if (SAN_TYPES.has(type) && value !== '') out.push(value);
    i = san.startsWith(', ', next) ? next + 2 : next;
  }
  return out;
}

/** A CA reference of a credential: PEM → SHA-256 fingerprint, or the fingerprint itself, normalized (upper-case, colon-separated). */
export function caFingerprint(ref: string): string {
  const t = ref.trim();
  if (t.includes('-----BEGIN')) return pemCertificates(t)[0]!.fingerprint256;
  const hex = t.replace(/^sha256:/i, '').replace(/:/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('not a PEM certificate or a SHA-256 fingerprint');
  return hex.toUpperCase().match(/../g)!.join(':');
}
