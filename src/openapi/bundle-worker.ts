/**
 * Worker for loadOpenApiSync(): fetching a URL and bundling external $refs are
 * asynchronous, plugin create() is not. synckit runs this in a worker thread
 * and blocks the caller (at config load only) until it answers.
 */
import { runAsWorker } from 'synckit';
import { OpenApiError, readSource, type LoadOptions, type OpenApiSource, type ParsedSource } from './source.ts';

export type WorkerAnswer =
  | { ok: true; parsed: ParsedSource }
  | { ok: false; file: string; pointer: string; problem: string; hint: string; line: number | null };

runAsWorker(async (source: OpenApiSource, opts: LoadOptions): Promise<WorkerAnswer> => {
  try {
    return { ok: true, parsed: await readSource(source, opts) };
  } catch (err) {
    if (err instanceof OpenApiError) return { ok: false, file: err.file, pointer: err.pointer, problem: err.problem, hint: err.hint, line: err.line };
    return { ok: false, file: 'url' in source ? source.url : '<openapi>', pointer: '', problem: (err as Error).message, hint: 'Check the document and its references.', line: null };
  }
});
