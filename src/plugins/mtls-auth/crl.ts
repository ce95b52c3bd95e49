/**
 * X.509 CRLs (RFC 5280 §5) for mtls-auth: node:crypto has no CRL parser, so
 * this reads the DER itself — only what revocation needs: issuer, this/next
 * update, the revoked serial numbers, and the signature, verified against the
 * CA that issued the CRL.
 */
import { verify as verifySignature, X509Certificate } from 'node:crypto';

interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the content. */
  readonly content: number;
  /** Offset after the content. */
  readonly end: number;
}

function tlv(buf: Buffer, at: number, limit = buf.length): Tlv {
  if (at + 2 > limit) throw new Error('truncated DER');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let len = buf[at + 1]!;
  let content = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || content + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[content + i]!;
    content += n;
  }
  const end = content + len;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start: at, content, end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.content; at < parent.end; ) {
    const t = tlv(buf, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw new Error(`malformed ${what}`);
  return t;
}

function oid(buf: Buffer, t: Tlv): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = t.content; i < t.end; i++) {
    v = v * 128 + (buf[i]! & 0x7f);
    if ((buf[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function time(buf: Buffer, t: Tlv): number {
  const s = buf.toString('latin1', t.content, t.end);
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s) : null;
  if (m === null) throw new Error('malformed CRL time');
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** A serial number as node prints it (X509Certificate.serialNumber): upper-case hex, no leading zeros. */
export function normalizeSerial(hex: string): string {
  const s = hex.replace(/[^0-9a-fA-F]/g, '').toUpperCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** node:crypto digest for a signature algorithm OID (null digest = EdDSA). SHA-1 and RSA-PSS are refused. */
const SIGNATURE_DIGESTS = new Map<string, string | null>([
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.3.101.112', null],
  ['1.3.101.113', null],
]);

/** The subject Name of a certificate, as DER (to match a CRL's issuer byte for byte). */
export function subjectDer(cert: X509Certificate): Buffer {
  const raw = cert.raw;
  const tbs = expect(children(raw, tlv(raw, 0))[0], 0x30, 'certificate');
  const f = children(raw, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expect(f[i + 4], 0x30, 'certificate subject');
  return raw.subarray(subject.start, subject.end);
}

export interface Crl {
  /** The CA that signed it (one of the configured CA certificates). */
  readonly issuer: X509Certificate;
  readonly thisUpdate: number;
  /** Epoch ms, or null when the CRL has no nextUpdate. */
  readonly nextUpdate: number | null;
  /** Revoked serial numbers (normalizeSerial). */
  readonly revoked: ReadonlySet<string>;
}

/** Parse a PEM or DER CRL and find the CA (among `cas`) that signed it; throws with a message on any problem. */
export function parseCrl(input: string | Buffer, cas: readonly X509Certificate[]): Crl {
  let der: Buffer;
  if (typeof input === 'string') {
    const m = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(input);
    if (m === null) throw new Error('not a PEM X509 CRL');
    der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  } else der = input;
  const top = expect(tlv(der, 0), 0x30, 'CRL');
  if (top.end !== der.length) throw new Error('trailing data after the CRL');
  const [tbs, algo, sig] = children(der, top);
  expect(tbs, 0x30, 'CRL tbsCertList');
  const sigOid = oid(der, expect(children(der, expect(algo, 0x30, 'CRL signature algorithm'))[0], 0x06, 'CRL signature algorithm'));
  const bits = expect(sig, 0x03, 'CRL signature');
  if (der[bits.content] !== 0) throw new Error('malformed CRL signature');
  const signature = der.subarray(bits.content + 1, bits.end);
  if (!SIGNATURE_DIGESTS.has(sigOid)) throw new Error(`unsupported CRL signature algorithm ${sigOid} (ECDSA, RSA PKCS#1 v1.5 with SHA-2, Ed25519 and Ed448 are)`);
  const digest = SIGNATURE_DIGESTS.get(sigOid)!;

  const f = children(der, tbs!);
  let i = 0;
  if (f[i]?.tag === 0x02) i++; // version
  expect(f[i++], 0x30, 'CRL signature');
  const issuerTlv = expect(f[i++], 0x30, 'CRL issuer');
  const issuerDer = der.subarray(issuerTlv.start, issuerTlv.end);
  const thisTlv = f[i++];
  if (thisTlv === undefined) throw new Error('malformed CRL: no thisUpdate');
  const thisUpdate = time(der, thisTlv);
  let nextUpdate: number | null = null;
  if (f[i] !== undefined && (f[i]!.tag === 0x17 || f[i]!.tag === 0x18)) nextUpdate = time(der, f[i++]!);
  const revoked = new Set<string>();
  if (f[i] !== undefined && f[i]!.tag === 0x30) {
    for (const entry of children(der, f[i++]!)) {
      const serial = expect(children(der, expect(entry, 0x30, 'CRL entry'))[0], 0x02, 'CRL entry serial');
      revoked.add(normalizeSerial(der.toString('hex', serial.content, serial.end)));
    }
  }

  const tbsBytes = der.subarray(tbs!.start, tbs!.end);
  const issuer = cas.find((ca) => subjectDer(ca).equals(issuerDer) && verifySignature(digest, tbsBytes, ca.publicKey, signature));
  if (issuer === undefined) throw new Error('not signed by any of ca_certificates');
  return { issuer, thisUpdate, nextUpdate, revoked };
}
