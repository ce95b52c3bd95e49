/**
 * Where an OpenAPI document comes from, and turning it into one plain object
 * whose `$ref`s are all internal ("#/…"): read the file or fetch the URL,
 * parse YAML or JSON, and bundle relative-file and URL references with
 * @apidevtools/json-schema-ref-parser.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import $RefParser from '@apidevtools/json-schema-ref-parser';
import { LineCounter, parseDocument } from 'yaml';
import { isObject, parsePointer } from './pointer.ts';

/** An OpenAPI document: a file path, a URL, text (YAML or JSON) or an already parsed object. */
export type OpenApiSource =
  | { readonly file: string }
  | { readonly url: string; readonly headers?: Readonly<Record<string, string>> }
  | { readonly text: string; readonly name?: string }
  | { readonly object: unknown; readonly name?: string };

export interface LoadOptions {
  /** Directory that relative file paths (and relative `$ref`s of inline documents) are resolved against; default the working directory. */
  readonly baseDir?: string;
  /** Timeout of a URL fetch in milliseconds (default 10000); for the synchronous loader, of the whole load (the document and every document it references). */
  readonly timeoutMs?: number;
  /** Synchronous loader: how long a fetched URL document is reused without asking the server again (default 0: revalidated on every load). */
  readonly urlTtlMs?: number;
  /** Largest document (and referenced file) fetched from a URL, in bytes (default 50 MiB). */
  readonly maxBytes?: number;
  /** Skip the check against the official OpenAPI JSON Schema (default false). */
  readonly skipStructureCheck?: boolean;
}

/** A URL fit for a message or a log: userinfo and query values (tokens, signatures) replaced by REDACTED. */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.username !== '' || url.password !== '') {
    url.username = 'REDACTED';
    url.password = '';
  }
  if (url.search !== '') {
    const names = [...new URLSearchParams(url.search).keys()];
    url.search = names.map((n) => `${encodeURIComponent(n)}=REDACTED`).join('&');
  }
  return url.href;
}

/** Every http(s) URL of a text redacted (see redactUrl). */
export function redactUrls(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(/\bhttps?:\/\/[^\s'"<>`]+/gi, (match) => {
    const tail = /[).,;:]+$/.exec(match)?.[0] ?? ''; // sentence punctuation after the URL
    return redactUrl(match.slice(0, match.length - tail.length)) + tail;
  });
}

/** A problem with a document: which file, where in it (JSON pointer, line when known), what and what to do. URLs in it are redacted. */
export class OpenApiError extends Error {
  readonly file: string;
  readonly pointer: string;
  readonly line: number | null;
  readonly problem: string;
  readonly hint: string;
  /** Every problem found (structure checks report several at once). */
  readonly problems: readonly { pointer: string; message: string; line: number | null }[];

  constructor(file: string, pointer: string, problem: string, hint: string, line: number | null = null, more: readonly { pointer: string; message: string; line: number | null }[] = []) {
    file = redactUrls(file);
    problem = redactUrls(problem);
    hint = redactUrls(hint);
    const where = `${file}${line !== null ? `:${line}` : ''}`;
    const extra = more.length > 1 ? `\n${more.slice(1, 10).map((p) => `  ${p.pointer || '/'}${p.line !== null ? ` (line ${p.line})` : ''}: ${p.message}`).join('\n')}${more.length > 10 ? `\n  … and ${more.length - 10} more` : ''}` : '';
    super(`OpenAPI document ${where}: at ${pointer || '/'}: ${problem}. ${hint}${extra}`);
    this.name = 'OpenApiError';
    this.file = file;
    this.pointer = pointer;
    this.line = line;
    this.problem = problem;
    this.hint = hint;
    this.problems = more.length ? more : [{ pointer, message: problem, line }];
  }
}

/** The document's file could not be read, or its URL fetched (no answer, or not 2xx): the CLI's usage-error exit code 2. */
export class OpenApiUnreadableError extends OpenApiError {
  constructor(file: string, problem: string, hint: string) {
    super(file, '', problem, hint);
    this.name = 'OpenApiUnreadableError';
  }
}

/** A parsed document before bundling. */
export interface ParsedSource {
  /** Human-readable origin: the file path, the URL or "<inline>". */
  readonly label: string;
  /** Base for relative $refs (a file path or URL). */
  readonly base: string;
  readonly raw: Record<string, unknown>;
  /** The text it was parsed from (for line numbers in errors), or null. */
  readonly text: string | null;
  /** True when external $refs (other files, URLs) were bundled in: the text alone does not determine the document. */
  readonly bundled?: boolean;
  /** Of a fetched document: the server's validators, for a conditional fetch later. */
  readonly etag?: string | null;
  readonly lastModified?: string | null;
}

/** Validators of a copy already fetched: the server answers 304 when the document did not change. */
export interface Conditional {
  readonly etag: string | null;
  readonly lastModified: string | null;
}

/** The document did not change since the copy whose validators were sent. */
export const NOT_MODIFIED = 'not-modified';

const FIX_SYNTAX = 'Fix the syntax (YAML 1.2 or JSON) of the document.';

/** Parse YAML or JSON text into an object; errors name the line. */
export function parseText(text: string, label: string): Record<string, unknown> {
  let value: unknown;
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      value = JSON.parse(text);
    } catch {
      // fall through: YAML parses JSON too and names the line
    }
  }
  if (value === undefined) {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      throw new OpenApiError(label, '', e.message.split('\n')[0]!, FIX_SYNTAX, lines.linePos(e.pos[0]).line);
    }
    value = doc.toJS({ maxAliasCount: 1000 });
  }
  if (!isObject(value)) throw new OpenApiError(label, '', 'the document is not an object', 'An OpenAPI document is a YAML mapping or JSON object with an `openapi` field.');
  return value;
}

/** Line (1-based) of the value at a pointer in YAML/JSON text, or null. Used on error paths only. */
export function lineOf(text: string | null, pointer: string): number | null {
  if (text === null) return null;
  try {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, keepSourceTokens: false });
    let tokens = parsePointer(pointer);
    while (tokens.length) {
      const node = doc.getIn(tokens.map((t) => (/^\d+$/.test(t) ? Number(t) : t)), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
      tokens = tokens.slice(0, -1);
    }
  } catch {
    // no line then
  }
  return null;
}

/** True when some $ref of the document points outside it (a relative file or a URL). */
export function hasExternalRefs(node: unknown): boolean {
  const stack: unknown[] = [node];
  while (stack.length) {
    const n = stack.pop();
    if (Array.isArray(n)) {
      for (const v of n) if (typeof v === 'object' && v !== null) stack.push(v);
    } else if (typeof n === 'object' && n !== null) {
      for (const [k, v] of Object.entries(n)) {
        if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) return true;
        if (typeof v === 'object' && v !== null) stack.push(v);
      }
    }
  }
  return false;
}

/** Read and parse a file, text or object source (synchronous); URLs need fetchSource(). */
export function readLocal(source: OpenApiSource, opts: LoadOptions = {}): ParsedSource {
  const baseDir = opts.baseDir ?? process.cwd();
  if ('file' in source) {
    const path = resolve(baseDir, source.file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new OpenApiUnreadableError(path, `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'Check the path (relative paths are resolved against the working directory) and the file permissions.');
    }
    return { label: path, base: path, raw: parseText(text, path), text };
  }
  const label = ('name' in source && source.name) || '<inline>';
  const base = resolve(baseDir, 'inline-openapi');
  if ('text' in source) return { label, base, raw: parseText(source.text, label), text: source.text };
  if ('object' in source) {
    if (!isObject(source.object)) throw new OpenApiError(label, '', 'the document is not an object', 'Pass the parsed OpenAPI document.');
    return { label, base, raw: structuredClone(source.object), text: null };
  }
  throw new Error('readLocal: a URL source must be fetched');
}

/** Fetch and parse a URL source (NOT_MODIFIED when `conditional` validators still match). The body is read up to maxBytes, never further. */
export async function fetchSource(url: string, headers: Readonly<Record<string, string>> = {}, opts: LoadOptions = {}, conditional: Conditional | null = null): Promise<ParsedSource | typeof NOT_MODIFIED> {
  const label = redactUrl(url);
  const fix = 'Check that the URL is reachable from the gateway and serves the OpenAPI document (YAML or JSON).';
  const max = opts.maxBytes ?? 50 * 1024 * 1024;
  const tooLarge = () => new OpenApiError(label, '', `the document is larger than ${max} bytes`, 'Serve a smaller document or raise the limit.');
  const cond: Record<string, string> = {};
  if (conditional?.etag) cond['if-none-match'] = conditional.etag;
  if (conditional?.lastModified) cond['if-modified-since'] = conditional.lastModified;
  // fetch() refuses URLs with credentials: user:password@ becomes Basic authentication.
  const target = new URL(url);
  const auth: Record<string, string> = {};
  if (target.username !== '' || target.password !== '') {
    auth.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  let res: Response;
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    res = await fetch(target, { headers: { accept: 'application/yaml, application/json;q=0.9, */*;q=0.5', ...auth, ...headers, ...cond }, signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000), redirect: 'follow' });
    if (res.status === 304 && conditional) {
      await res.body?.cancel();
      return NOT_MODIFIED;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new OpenApiUnreadableError(label, `fetching the document answered HTTP ${res.status}`, fix);
    }
    if (Number(res.headers.get('content-length') ?? -1) > max) {
      await res.body?.cancel();
      throw tooLarge();
    }
    const reader = res.body?.getReader();
    for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
      total += r.value.length;
      if (total > max) {
        await reader!.cancel();
        throw tooLarge();
      }
      chunks.push(r.value);
    }
  } catch (err) {
    if (err instanceof OpenApiError) throw err;
    const cause = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new OpenApiUnreadableError(label, `cannot fetch the document (${cause})`, fix);
  }
  const text = Buffer.concat(chunks, total).toString('utf8');
  return { label, base: url, raw: parseText(text, label), text, etag: res.headers.get('etag'), lastModified: res.headers.get('last-modified') };
}

/** Inline every external $ref (relative files, URLs) of a parsed document: the result has internal refs only. */
export async function bundleExternal(parsed: ParsedSource, opts: LoadOptions = {}): Promise<ParsedSource> {
  if (!hasExternalRefs(parsed.raw)) return parsed;
  const base = /^https?:\/\//.test(parsed.base) ? parsed.base : pathToFileURL(parsed.base).href;
  try {
    const raw = await $RefParser.bundle(base, parsed.raw, {
      // The document is configuration the operator chose: its references may name internal hosts
      // (the library refuses loopback and private addresses by default).
      resolve: { external: true, http: { timeout: opts.timeoutMs ?? 10_000, redirects: 5, safeUrlResolver: false } },
    } as never);
    return { ...parsed, raw: raw as unknown as Record<string, unknown>, bundled: true };
  } catch (err) {
    const e = err as Error & { source?: string; path?: string; message: string };
    const where = e.source ? e.source.replace(/^file:\/\//, '') : parsed.label;
    throw new OpenApiError(where, '', `cannot resolve an external $ref: ${e.message.split('\n')[0]}`, `Check the referenced file exists relative to ${dirname(parsed.base)} (or the URL answers) and the pointer after '#' names an existing value.`);
  }
}

/** Read (or fetch) and bundle a source: the asynchronous loader (NOT_MODIFIED only when `conditional` is given for a URL). */
export async function readSource(source: OpenApiSource, opts?: LoadOptions): Promise<ParsedSource>;
export async function readSource(source: OpenApiSource, opts: LoadOptions, conditional: Conditional | null): Promise<ParsedSource | typeof NOT_MODIFIED>;
export async function readSource(source: OpenApiSource, opts: LoadOptions = {}, conditional: Conditional | null = null): Promise<ParsedSource | typeof NOT_MODIFIED> {
  const parsed = 'url' in source ? await fetchSource(source.url, source.headers, opts, conditional) : readLocal(source, opts);
  return parsed === NOT_MODIFIED ? parsed : bundleExternal(parsed, opts);
}
