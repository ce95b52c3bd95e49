/**
 * RFC 9421 HTTP Message Signatures on requests (a Palisade addition to
 * hmac-auth): Signature-Input / Signature dictionaries, the signature base,
 * the key's own algorithm (the alg parameter is only checked against it),
 * created / expires within clock_skew, required components, Content-Digest
 * (RFC 9530) checked against the body, nonces accepted once.
 */
import type { CounterStore, PdkContext } from '../../pdk/index.ts';
import { DUMMY_SECRET, safeEqual, sha, verifyRfc9421 } from './keys.ts';
import type { Entry } from './credentials.ts';
import { ComponentError, isComponentName, signatureBase, type MessageView } from './signature-base.ts';
import { parseDictionary, SfError, type InnerList } from './structured-fields.ts';

export const SIG_INVALID = 'HMAC signature cannot be verified';
export const SIG_MISMATCH = 'HMAC signature does not match';
const MAX_SIGNATURES = 8;
const MAX_NONCE = 256;

export interface Rfc9421Settings {
  readonly clockSkew: number;
  readonly required: readonly (readonly string[])[];
  readonly requireQuery: boolean;
  readonly requireDigest: boolean;
  readonly requireNonce: boolean;
  readonly tag: string | undefined;
  readonly label: string | undefined;
  readonly maxBody: number;
}

export interface Failure {
  readonly ok: false;
  readonly message: string;
  readonly detail: string;
}
export interface Success {
  readonly ok: true;
  readonly entry: Entry;
}

interface Candidate {
  readonly label: string;
  readonly params: InnerList;
  readonly signature: Buffer;
  readonly keyid: string | null;
}

export interface Parsed {
  readonly candidates: readonly Candidate[];
  /** keyid of the first signature: the identity for brute-force counting. */
  readonly identity: string | null;
}

const fail = (message: string, detail: string): Failure => ({ ok: false, message, detail });

/** Check the configured required component lists ("a|b" alternatives) once at create(). */
export function compileRequired(list: readonly string[]): string[][] {
  return list.map((entry) => {
    const alts = entry.split('|').map((s) => s.trim());
    for (const a of alts) if (!isComponentName(a)) throw new Error(`rfc9421.required_components: '${a}' is not a component name`);
    return alts;
  });
}

function authorityOf(ctx: PdkContext): string {
  const req = ctx.request;
  let authority: string;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(req.target);
  if (abs !== null) authority = abs[1]!.slice(abs[1]!.lastIndexOf('@') + 1);
  else authority = req.header('host') ?? req.host;
  authority = authority.toLowerCase();
  const defaultPort = req.scheme === 'https' ? ':443' : ':80';
  return authority.endsWith(defaultPort) ? authority.slice(0, -defaultPort.length) : authority;
}

/** The request as RFC 9421 sees it. */
export function requestView(ctx: PdkContext): MessageView {
  const req = ctx.request;
  return {
    method: req.method,
    target: req.target,
    scheme: req.scheme,
    authority: authorityOf(ctx),
    fieldLines(name: string): string[] {
      const raw = req.rawHeaders;
      const out: string[] = [];
      for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
      return out;
    },
  };
}

/** Parse Signature-Input and Signature: the signatures to try, or why there are none. */
export function parseSignatures(ctx: PdkContext, s: Rfc9421Settings): Parsed | Failure {
  const input = ctx.request.header('signature-input');
  const sig = ctx.request.header('signature');
  if (input === undefined || sig === undefined) return fail(SIG_INVALID, 'Signature-Input and Signature are both required');
  let inputs, sigs;
  try {
    inputs = parseDictionary(input);
    sigs = parseDictionary(sig);
  } catch (err) {
    if (err instanceof SfError) return fail(SIG_INVALID, 'Signature-Input or Signature is not a valid dictionary');
    throw err;
  }
  const labels = s.label !== undefined ? [s.label] : [...inputs.keys()].slice(0, MAX_SIGNATURES);
  const candidates: Candidate[] = [];
  for (const label of labels) {
    const params = inputs.get(label);
    const value = sigs.get(label);
    if (params === undefined || value === undefined) continue;
    if (params.kind !== 'inner' || value.kind !== 'item' || value.value.t !== 'bin') return fail(SIG_INVALID, `signature ${label} is malformed`);
    const keyid = params.params.get('keyid');
    candidates.push({ label, params, signature: value.value.v, keyid: keyid?.t === 'str' ? keyid.v : null });
  }
  if (candidates.length === 0) return fail(SIG_INVALID, s.label !== undefined ? `no signature labelled ${s.label}` : 'no signature matches a Signature-Input entry');
  return { candidates, identity: candidates[0]!.keyid };
}

/** Structural rules that do not depend on the key: a failure here says nothing about whether the keyid exists. */
function policy(ctx: PdkContext, c: Candidate, s: Rfc9421Settings, nowSec: number): Failure | null {
  const p = c.params.params;
  if (c.keyid === null) return fail(SIG_INVALID, 'keyid parameter is required');
  const created = p.get('created');
  if (created === undefined || created.t !== 'int') return fail(SIG_INVALID, 'created parameter is required');
  if (Math.abs(nowSec - created.v) > s.clockSkew) return fail(SIG_INVALID, 'created is outside the allowed clock skew');
  const expires = p.get('expires');
  if (expires !== undefined && (expires.t !== 'int' || nowSec > expires.v + s.clockSkew)) return fail(SIG_INVALID, 'signature has expired');
  const nonce = p.get('nonce');
  if (nonce !== undefined && (nonce.t !== 'str' || nonce.v.length === 0 || nonce.v.length > MAX_NONCE)) return fail(SIG_INVALID, 'nonce parameter is invalid');
  if (nonce === undefined && s.requireNonce) return fail(SIG_INVALID, 'nonce parameter is required');
  const alg = p.get('alg');
  if (alg !== undefined && alg.t !== 'str') return fail(SIG_INVALID, 'alg parameter is invalid');
  if (s.tag !== undefined) {
    const tag = p.get('tag');
    if (tag === undefined || tag.t !== 'str' || tag.v !== s.tag) return fail(SIG_INVALID, 'tag parameter does not match');
  }
  const covered = new Set(c.params.items.map((i) => (i.value.t === 'str' ? i.value.v : '')));
  for (const alts of s.required) {
    if (!alts.some((a) => covered.has(a))) return fail(SIG_INVALID, `signature must cover ${alts.join(' or ')}`);
  }
  if (s.requireQuery && ctx.request.target.includes('?') && !['@target-uri', '@request-target', '@query'].some((a) => covered.has(a))) {
    return fail(SIG_INVALID, 'signature must cover the query (@target-uri, @request-target or @query)');
  }
  if (s.requireDigest && ctx.request.hasBody && !covered.has('content-digest')) return fail(SIG_INVALID, 'signature must cover content-digest when there is a body');
  return null;
}

/** RFC 9530 Content-Digest against the body: every sha-256 / sha-512 member must match, at least one must be present. */
function contentDigestMatches(lines: readonly string[], body: Buffer): boolean {
  let dict;
  try {
    dict = parseDictionary(lines.join(', '));
  } catch (err) {
    if (err instanceof SfError) return false;
    throw err;
  }
  let checked = 0;
  for (const [alg, hash] of [['sha-256', 'sha256'], ['sha-512', 'sha512']] as const) {
    const m = dict.get(alg);
    if (m === undefined) continue;
    if (m.kind !== 'item' || m.value.t !== 'bin' || !safeEqual(sha(hash, body), m.value.v)) return false;
    checked++;
  }
  return checked > 0;
}

/** Verify one signature. `lookup` finds the credential of a keyid. */
export async function verifyOne(
  ctx: PdkContext,
  c: Candidate,
  s: Rfc9421Settings,
  lookup: (keyid: string) => Entry | undefined,
  counters: CounterStore,
  nowSec: number,
): Promise<Success | Failure> {
  const refused = policy(ctx, c, s, nowSec);
  if (refused !== null) return refused;
  const view = requestView(ctx);
  let base: Buffer;
  try {
    base = Buffer.from(signatureBase(view, c.params), 'latin1');
  } catch (err) {
    if (err instanceof ComponentError) return fail(SIG_INVALID, err.message);
    throw err;
  }
  const entry = lookup(c.keyid!);
  const alg = c.params.params.get('alg');
  let ok: boolean;
  if (entry === undefined || entry.key.rfcKey === null) {
    verifyRfc9421('hmac-sha256', DUMMY_SECRET, base, c.signature);
    ok = false;
  } else {
    ok = verifyRfc9421(entry.key.rfcAlg!, entry.key.rfcKey, base, c.signature);
    // The alg parameter never chooses the algorithm; it only has to agree with the key's.
    if (alg !== undefined && alg.t === 'str' && alg.v !== entry.key.rfcAlg) ok = false;
  }
  if (!ok) return fail(SIG_MISMATCH, 'signature does not verify');

  if (c.params.items.some((i) => i.value.t === 'str' && i.value.v === 'content-digest')) {
    const body = await ctx.request.readBody(s.maxBody);
    if (body === null) return fail(SIG_MISMATCH, 'request body too large to verify');
    if (!contentDigestMatches(view.fieldLines('content-digest'), body)) return fail(SIG_MISMATCH, 'content-digest does not match the body');
  }

  const nonce = c.params.params.get('nonce');
  if (nonce !== undefined && nonce.t === 'str') {
    const created = (c.params.params.get('created') as { v: number }).v;
    const expires = c.params.params.get('expires');
    let until = created + s.clockSkew;
    if (expires !== undefined && expires.t === 'int') until = Math.min(until, expires.v + s.clockSkew);
    const ttlMs = Math.max(1000, Math.ceil((until - nowSec) * 1000) + 1000);
    const uses = await counters.increment(`hmac-auth:nonce:${entry!.ref.id}:${nonce.v}`, 1, ttlMs);
    if (uses > 1) return fail(SIG_INVALID, 'nonce has already been used');
  }
  return { ok: true, entry: entry! };
}
