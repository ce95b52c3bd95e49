/**
 * `palisade config sync FILE` — make the running gateway run FILE: it validates
 * FILE like a reload, compiles it, writes it to its own config file
 * (atomically) and swaps it in; on any error nothing changes. Prints what changed.
 * With --workers N, a worker that did not apply it makes the sync incomplete:
 * exit 1, naming the workers and what to do.
 */
import { callAdmin, unexpected, type AdminOptions } from './admin-client.ts';
import { readConfigText } from '../../config/load.ts';
import { diffLines, orConfigErrors, printConfigErrors, summary } from './print.ts';
import type { WorkerFailure } from '../../admin/config-api.ts';
import type { ConfigDiff } from '../../config/diff.ts';

type Synced = ConfigDiff & { version: string; file: string; notes: string[] };
type Incomplete = Synced & { workers: number; failed_workers: WorkerFailure[] };

function printChanges(d: Synced): void {
  for (const line of diffLines(d)) console.log(line);
  for (const note of d.notes) console.log(`note: ${note}`);
}

/** A sync the primary made, that some workers did not apply. */
function incomplete(file: string, d: Incomplete, json: boolean | undefined): void {
  process.exitCode = 1;
  if (json) return console.log(JSON.stringify(d, null, 2));
  printChanges(d);
  for (const f of d.failed_workers) console.error(`palisade: worker ${f.worker} (pid ${f.pid ?? '?'}) did not apply config version ${d.version}: ${f.error}`);
  const ran = d.workers - d.failed_workers.length;
  console.error(
    `palisade: config sync incomplete: ${file} was written to ${d.file} and runs on ${ran} of ${d.workers} workers; the others still run the previous config. ` +
      `Find the cause in the gateway log, then run 'palisade config sync ${file}' again (it retries only the workers that missed it) or restart the gateway (every worker then starts from ${d.file}).`,
  );
}

export async function syncCommand(file: string, opts: AdminOptions & { json?: boolean }): Promise<void> {
  const text = await orConfigErrors('nothing was changed', () => readConfigText(file));
  if (text === null) return;
  const r = await callAdmin(opts, 'PUT', 'config', text);
  if (r.status === 400 && Array.isArray(r.body?.errors)) {
    printConfigErrors(file, r.body.errors, 'the gateway refused it; nothing was changed');
    process.exitCode = 1;
    return;
  }
  if (r.status === 500 && Array.isArray(r.body?.failed_workers)) return incomplete(file, r.body as Incomplete, opts.json);
  if (r.status !== 200) throw unexpected(r, 'config sync');
  const d = r.body as Synced;
  if (opts.json) return console.log(JSON.stringify(d, null, 2));
  printChanges(d);
  const what = d.same ? 'no changes' : summary(d, ['added', 'changed', 'removed']);
  console.log(`synced ${file}: ${what}; config version ${d.version}, written to ${d.file}`);
}
