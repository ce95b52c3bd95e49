/**
 * Content-Encoding: a compressed request body is decoded before a plugin
 * validates or inspects it (oas-validation, injection-protection; the bytes on
 * the wire stay as they are), without blocking the event loop. gzip (x-gzip), deflate (zlib-wrapped,
 * or raw as some servers send it), br and zstd, in the order they were
 * applied ("gzip, br" = gzip first, so br is undone first); `identity` is no
 * encoding. The decoded size is capped: node:zlib stops at `max` bytes
 * (a small compressed body can expand a thousandfold).
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

type Inflate = (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

const gunzip = promisify(zlib.gunzip) as Inflate;
const inflate = promisify(zlib.inflate) as Inflate;
const inflateRaw = promisify(zlib.inflateRaw) as Inflate;
const brotli = promisify(zlib.brotliDecompress) as Inflate;
const zstd = typeof (zlib as { zstdDecompress?: unknown }).zstdDecompress === 'function' ? (promisify((zlib as unknown as { zstdDecompress: typeof zlib.gunzip }).zstdDecompress) as Inflate) : null;

const DECODERS = new Map<string, Inflate>([
  ['gzip', gunzip],
  ['x-gzip', gunzip],
  // RFC 9110 deflate is the zlib format; some servers send raw deflate data (browsers accept both).
  ['deflate', (buf, opts) => inflate(buf, opts).catch((err: NodeJS.ErrnoException) => (err.code === 'Z_DATA_ERROR' ? inflateRaw(buf, opts) : Promise.reject(err)))],
  ['br', brotli],
  ...(zstd ? [['zstd', zstd] as [string, Inflate]] : []),
]);

/** A Content-Encoding header as node or a plugin holds it: one value, repeated values, or none. */
export type EncodingHeader = string | readonly string[] | number | undefined;

/** The codings of a Content-Encoding header, in the order they were applied (identity left out, lower-case). */
function codings(header: EncodingHeader): string[] {
  if (header === undefined) return [];
  return (typeof header === 'object' ? header.join(',') : String(header))
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

/** Why a body could not be decoded. */
export type DecodeFailure =
  | { readonly reason: 'unsupported'; readonly coding: string }
  | { readonly reason: 'too-large'; readonly max: number }
  | { readonly reason: 'invalid'; readonly coding: string };

/** The codings Palisade can undo (for messages). */
export const SUPPORTED_CODINGS = [...DECODERS.keys()].filter((c) => c !== 'x-gzip');

/** The first coding of the value that cannot be undone, or null when all can. */
export function decodable(header: EncodingHeader): string | null {
  for (const c of codings(header)) if (!DECODERS.has(c)) return c;
  return null;
}

/** The decoded body (at most `max` bytes), or why not. A body without coding is returned as it is. */
export async function decodeBody(body: Buffer, header: EncodingHeader, max: number): Promise<Buffer | DecodeFailure> {
  const list = codings(header);
  let out = body;
  for (let i = list.length - 1; i >= 0; i--) {
    const coding = list[i]!;
    const decode = DECODERS.get(coding);
    if (!decode) return { reason: 'unsupported', coding };
    if (out.length === 0) return out;
    try {
      out = await decode(out, { maxOutputLength: max });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { reason: 'too-large', max };
      return { reason: 'invalid', coding };
    }
  }
  if (list.length === 0 && out.length > max) return { reason: 'too-large', max };
  return out;
}

/** A decode failure as the text of a violation. */
export function describeFailure(f: DecodeFailure): string {
  switch (f.reason) {
    case 'unsupported':
      return `Content-Encoding '${f.coding}' cannot be decoded for validation (supported: ${SUPPORTED_CODINGS.join(', ')})`;
    case 'too-large':
      return `is larger than ${f.max} bytes once decoded`;
    case 'invalid':
      return `is not valid ${f.coding} data`;
  }
}

export function isDecodeFailure(v: Buffer | DecodeFailure): v is DecodeFailure {
  return !Buffer.isBuffer(v);
}
