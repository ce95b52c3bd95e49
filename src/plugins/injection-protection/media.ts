/**
 * What a Content-Type says about how a body (or a multipart part) is read:
 * JSON, a form, multipart, XML, text, binary — or unknown (no Content-Type,
 * or a type this list does not know), which is inspected as text when it
 * reads as text. Binary types are never inspected: their bytes are not text
 * an interpreter would take a query or markup from.
 */

export type MediaKind = 'json' | 'form' | 'multipart' | 'xml' | 'text' | 'binary' | 'unknown';

/** Whole top-level types of binary content. */
const BINARY_TOP = new Set(['image', 'audio', 'video', 'font', 'model']);

/** application/… subtypes of binary content (archives, documents, serialisation formats, executables). */
const BINARY_SUB = new Set([
  'octet-stream', 'pdf', 'zip', 'gzip', 'x-gzip', 'x-tar', 'x-bzip', 'x-bzip2', 'x-xz', 'x-7z-compressed', 'x-rar-compressed',
  'vnd.rar', 'zstd', 'x-zstd', 'x-compress', 'java-archive', 'x-java-archive', 'wasm', 'x-protobuf', 'protobuf', 'x-google-protobuf',
  'vnd.google.protobuf', 'grpc', 'grpc-web', 'msgpack', 'x-msgpack', 'vnd.msgpack', 'cbor', 'bson', 'avro', 'vnd.apache.avro',
  'vnd.apache.thrift.binary', 'vnd.apache.parquet', 'x-parquet', 'msword', 'x-shockwave-flash',
  'vnd.android.package-archive', 'x-apple-diskimage', 'x-iso9660-image', 'x-msdownload', 'x-executable', 'x-mach-binary',
  'x-sharedlib', 'x-sqlite3', 'vnd.sqlite3', 'x-x509-ca-cert', 'pkix-cert', 'pkcs7-mime', 'pkcs8', 'pkcs12', 'x-pkcs12', 'dicom',
]);

/** Prefixes and suffixes of binary application/… subtypes. */
const BINARY_SUB_PREFIX = /^(?:vnd\.ms-|vnd\.openxmlformats-|vnd\.oasis\.opendocument\.|grpc\+|x-font-|font-)/;
const BINARY_SUB_SUFFIX = /\+(?:zip|gzip|cbor|protobuf|proto|msgpack|avro|bson|der|octet-stream)$/;

/** application/… subtypes that are text (code, queries, data in text formats). */
const TEXT_SUB = new Set([
  'javascript', 'x-javascript', 'ecmascript', 'yaml', 'x-yaml', 'graphql', 'sql', 'csv', 'x-sh', 'x-httpd-php', 'x-php',
  'x-ndjson', 'ndjson', 'jsonl', 'x-jsonlines', 'jsonlines', 'toml', 'x-toml', 'x-latex', 'x-tex',
]);

/** The media type of a Content-Type value, lower case, without parameters ('' when there is none). */
export function mimeOf(contentType: string | undefined): string {
  return contentType === undefined ? '' : contentType.split(';', 1)[0]!.trim().toLowerCase();
}

export function mediaKind(contentType: string | undefined): MediaKind {
  const mime = mimeOf(contentType);
  const slash = mime.indexOf('/');
  if (slash <= 0) return 'unknown';
  const top = mime.slice(0, slash);
  const sub = mime.slice(slash + 1);
  if (sub === 'json' || sub.endsWith('+json')) return 'json';
  if (mime === 'application/x-www-form-urlencoded') return 'form';
  if (top === 'multipart') return 'multipart';
  // Before the binary families: image/svg+xml is markup that can carry script.
  if (sub === 'xml' || sub.endsWith('+xml')) return 'xml';
  if (top === 'text') return 'text';
  if (BINARY_TOP.has(top)) return 'binary';
  if (top === 'application') {
    if (TEXT_SUB.has(sub)) return 'text';
    if (BINARY_SUB.has(sub) || BINARY_SUB_PREFIX.test(sub) || BINARY_SUB_SUFFIX.test(sub)) return 'binary';
  }
  return 'unknown';
}
