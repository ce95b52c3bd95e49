/**
 * Worker for the synchronous loaders (url-cache.ts): fetching a URL and
 * bundling external $refs are asynchronous, plugin create() is not. synckit
 * runs this in a worker thread and blocks the caller (at config load only)
 * until it answers — at the latest at `deadline` (ms since the epoch): the
 * whole load, the document and every document it references, must be done
 * by then.
 */
import { runAsWorker } from 'synckit';
import { NOT_MODIFIED, OpenApiError, OpenApiUnreadableError, readSource, type Conditional, type LoadOptions, type OpenApiSource, type ParsedSource } from './source.ts';

export type WorkerAnswer =
  | { ok: true; parsed: ParsedSource }
  | { ok: true; notModified: true }
  | { ok: false; file: string; pointer: string; problem: string; hint: string; line: number | null; unreadable: boolean };

function failure(err: unknown, source: OpenApiSource): WorkerAnswer {
  if (err instanceof OpenApiError) return { ok: false, file: err.file, pointer: err.pointer, problem: err.problem, hint: err.hint, line: err.line, unreadable: err instanceof OpenApiUnreadableError };
  return { ok: false, file: 'url' in source ? source.url : '<openapi>', pointer: '', problem: (err as Error).message, hint: 'Check the document and its references.', line: null, unreadable: false };
}

runAsWorker(async (source: OpenApiSource, opts: LoadOptions, conditional: Conditional | null, deadline: number): Promise<WorkerAnswer> => {
  const remaining = Math.max(1, Math.floor(deadline - Date.now()));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(() => {
      const where = 'url' in source ? source.url : 'file' in source ? source.file : '<openapi>';
      fail(new OpenApiError(where, '', `loading the document and its references took longer than ${opts.timeoutMs ?? 10_000} ms`, 'Serve it faster, raise the timeout, or use a local file.'));
    }, remaining);
  });
  try {
    const r = await Promise.race([readSource(source, { ...opts, timeoutMs: remaining }, conditional), late]);
    return r === NOT_MODIFIED ? { ok: true, notModified: true } : { ok: true, parsed: r };
  } catch (err) {
    return failure(err, source);
  } finally {
    clearTimeout(timer);
  }
});
