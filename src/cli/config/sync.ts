/**
 * `palisade config sync FILE` — make the running gateway run FILE: it validates
 * FILE like a reload, compiles it, writes it to its own config file
 * (atomically) and swaps it in; on any error nothing changes. Prints what changed.
 */
import { callAdmin, unexpected, type AdminOptions } from './admin-client.ts';
import { readConfigText } from './diff.ts';
import { diffLines, orConfigErrors, printConfigErrors, summary } from './print.ts';
import type { ConfigDiff } from '../../config/diff.ts';

export async function syncCommand(file: string, opts: AdminOptions & { json?: boolean }): Promise<void> {
  const text = await orConfigErrors('nothing was changed', () => readConfigText(file));
  if (text === null) return;
  const r = await callAdmin(opts, 'PUT', 'config', text);
  if (r.status === 400 && Array.isArray(r.body?.errors)) {
    printConfigErrors(file, r.body.errors, 'the gateway refused it; nothing was changed');
    process.exitCode = 1;
    return;
  }
  if (r.status !== 200) throw unexpected(r, 'config sync');
  const d = r.body as ConfigDiff & { version: string; file: string; notes: string[] };
  if (opts.json) return console.log(JSON.stringify(d, null, 2));
  for (const line of diffLines(d)) console.log(line);
  for (const note of d.notes) console.log(`note: ${note}`);
  const what = d.same ? 'no changes' : summary(d, ['added', 'changed', 'removed']);
  console.log(`synced ${file}: ${what}; config version ${d.version}, written to ${d.file}`);
}
