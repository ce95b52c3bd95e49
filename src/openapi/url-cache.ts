/**
 * Synchronous loading for config load (plugin create()): a URL, or a
 * document with external $refs, is fetched and bundled by a worker thread
 * while this thread waits — at most the load's timeout (`timeoutMs` covers the
 * document and every document it references).
 *
 * Fetched URL documents are cached by URL: within `ttlMs` a later load
 * (a reload for an unrelated change) reuses the copy without any request —
 * nothing blocks; after it the server is asked whether the document changed
 * (If-None-Match / If-Modified-Since; a 304 keeps the copy). When that fails,
 * the copy is kept and the load reports a warning. Each entry carries the
 * hash of its content, so validators compiled from it can be reused too.
 */
import { createHash } from 'node:crypto';
import { createSyncFn } from 'synckit';
import type { WorkerAnswer } from './bundle-worker.ts';
import { OpenApiError, OpenApiUnreadableError, redactUrl, type Conditional, type LoadOptions, type OpenApiSource, type ParsedSource } from './source.ts';

/** The worker waits itself for at most the load's timeout; this only guards against a worker that never answers. */
const WORKER_GUARD_MS = 10 * 60_000;

let worker: ((source: OpenApiSource, opts: LoadOptions, conditional: Conditional | null, deadline: number) => WorkerAnswer) | null = null;

/** Read (fetch, bundle) a source in the worker, waiting at most opts.timeoutMs (plus the worker's start, the first time). */
export function loadInWorker(source: OpenApiSource, opts: LoadOptions, conditional: Conditional | null = null): ParsedSource | null {
  worker ??= createSyncFn(new URL('./bundle-worker.ts', import.meta.url).pathname, { timeout: WORKER_GUARD_MS });
  const timeout = opts.timeoutMs ?? 10_000;
  let answer: WorkerAnswer;
  try {
    answer = worker(source, opts, conditional, Date.now() + timeout);
  } catch (err) {
    const where = 'url' in source ? source.url : 'file' in source ? source.file : '<openapi>';
    throw new OpenApiError(where, '', `the document loader failed (${(err as Error).message})`, 'Try again; report it when it persists.');
  }
  if (!answer.ok) throw answer.unreadable ? new OpenApiUnreadableError(answer.file, answer.problem, answer.hint) : new OpenApiError(answer.file, answer.pointer, answer.problem, answer.hint, answer.line);
  return 'notModified' in answer ? null : answer.parsed;
}

export interface UrlLoad {
  readonly parsed: ParsedSource;
  /** Hash of the document's content (its text, or the bundled document when it references others). */
  readonly hash: string;
  /** Not fatal: the server could not be asked, the copy fetched earlier is used. */
  readonly warnings: readonly string[];
}

interface Entry {
  parsed: ParsedSource;
  hash: string;
  checkedAt: number;
  fetchedAt: number;
}

const cache = new Map<string, Entry>();
const CACHE_MAX = 16;

function contentHash(parsed: ParsedSource): string {
  const content = parsed.bundled || parsed.text === null ? JSON.stringify(parsed.raw) : parsed.text;
  return createHash('sha256').update(content).digest('base64url');
}

/**
 * A URL document, from the cache while it is fresh (`ttlMs`), else fetched
 * (conditionally when a copy is there). Throws an OpenApiError when there is
 * no copy and the fetch fails.
 */
export function loadUrlSync(url: string, headers: Readonly<Record<string, string>> | undefined, opts: LoadOptions & { readonly ttlMs?: number }): UrlLoad {
  const key = `${url}\0${JSON.stringify(headers ?? {})}`;
  const entry = cache.get(key);
  const now = Date.now();
  if (entry) {
    cache.delete(key); // most recently used last
    cache.set(key, entry);
    if (now - entry.checkedAt < (opts.ttlMs ?? 0)) return { parsed: entry.parsed, hash: entry.hash, warnings: [] };
  }
  // A bundled copy depends on other documents too: fetched again whole.
  const conditional = entry && !entry.parsed.bundled ? { etag: entry.parsed.etag ?? null, lastModified: entry.parsed.lastModified ?? null } : null;
  let parsed: ParsedSource | null;
  try {
    parsed = loadInWorker({ url, ...(headers ? { headers } : {}) }, opts, conditional?.etag || conditional?.lastModified ? conditional : null);
  } catch (err) {
    if (!entry || !(err instanceof OpenApiError)) throw err;
    entry.checkedAt = now;
    const warning = `cannot revalidate ${redactUrl(url)} (${err.problem}); using the copy fetched at ${new Date(entry.fetchedAt).toISOString()}`;
    return { parsed: entry.parsed, hash: entry.hash, warnings: [warning] };
  }
  if (parsed === null) {
    entry!.checkedAt = now;
    return { parsed: entry!.parsed, hash: entry!.hash, warnings: [] };
  }
  const hash = entry && entry.parsed.text === parsed.text && !parsed.bundled && !entry.parsed.bundled ? entry.hash : contentHash(parsed);
  cache.set(key, { parsed, hash, checkedAt: now, fetchedAt: now });
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return { parsed, hash, warnings: [] };
}
