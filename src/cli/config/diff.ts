/**
 * `palisade config diff FILE` — what `config sync FILE` would change on the
 * running gateway (the gateway validates FILE like a reload and computes the
 * diff; secrets never leave it unmasked); `palisade config diff A B` — what
 * changes from file A to file B, locally. Exit 0: same, 2: different, 1: error.
 */
import { parseKeepingMasked } from '../../admin/keep-masked.ts';
import { diffConfigs, type ConfigDiff } from '../../config/diff.ts';
import { loadConfigFile, readConfigText } from '../../config/load.ts';
import { callAdmin, unexpected, type AdminOptions } from './admin-client.ts';
import { diffLines, orConfigErrors, printConfigErrors, summary } from './print.ts';

async function localDiff(a: string, b: string): Promise<ConfigDiff> {
  const before = await loadConfigFile(a);
  return diffConfigs(before, parseKeepingMasked(await readConfigText(b), before, b).config);
}

async function remoteDiff(file: string, o: AdminOptions): Promise<ConfigDiff | null> {
  const text = await readConfigText(file);
  const r = await callAdmin(o, 'POST', 'config/diff', text);
  if (r.status === 400 && Array.isArray(r.body?.errors)) {
    printConfigErrors(file, r.body.errors, 'the gateway refused it (nothing was compared)');
    process.exitCode = 1;
    return null;
  }
  if (r.status !== 200) throw unexpected(r, 'config diff');
  return r.body as ConfigDiff;
}

export async function diffCommand(files: string[], opts: AdminOptions & { json?: boolean }): Promise<void> {
  const d = await orConfigErrors('nothing was compared', () => (files.length === 2 ? localDiff(files[0]!, files[1]!) : remoteDiff(files[0]!, opts)));
  if (d === null) return;
  if (opts.json) console.log(JSON.stringify(d, null, 2));
  else {
    for (const line of diffLines(d)) console.log(line);
    console.log(d.same ? 'no changes' : `${d.changes.length} change${d.changes.length === 1 ? '' : 's'}: ${summary(d, ['to add', 'to change', 'to remove'])}`);
  }
  process.exitCode = d.same ? 0 : 2;
}
