/** How the `palisade config` commands print diffs and config errors. */
import type { ConfigDiff, EntityChange, FieldChange } from '../../config/diff.ts';
import { ConfigInvalidError, formatError, type ConfigError } from '../../config/load.ts';

const SIGN: Record<EntityChange['action'], string> = { add: '+', change: '~', remove: '-', reorder: '~' };

function value(v: unknown): string {
  if (v === undefined) return '(unset)';
  const text = JSON.stringify(v);
  return text.length > 120 ? `${text.slice(0, 100)}… (${text.length} characters)` : text;
}

function field(f: FieldChange): string {
  const [before, after] = [value(f.before), value(f.after)];
  return before === after ? `    ${f.path}: changed (secret, masked)` : `    ${f.path}: ${before} → ${after}`;
}

/** One line per entity change (+ add, ~ change, - remove), changed fields indented below. */
export function diffLines(d: ConfigDiff): string[] {
  const lines: string[] = [];
  for (const c of d.changes) {
    if (c.action === 'reorder') {
      lines.push(`~ ${c.name} reordered`, `    now: ${(c.fields![0]!.after as string[]).join('; ')}`);
      continue;
    }
    lines.push(`${SIGN[c.action]} ${c.name}`);
    for (const f of c.fields ?? []) lines.push(field(f));
  }
  return lines;
}

export function summary(d: ConfigDiff, verbs: [string, string, string]): string {
  const s = d.summary;
  return `${s.add} ${verbs[0]}, ${s.change} ${verbs[1]}, ${s.remove} ${verbs[2]}`;
}

/** Config errors as FILE:LINE:COLUMN: PATH: MESSAGE, then one line saying what happened. */
export function printConfigErrors(file: string, errors: ConfigError[], outcome: string): void {
  if (errors.length === 1 && errors[0]!.line === 0) {
    console.error(`palisade: cannot read the config file ${file}: ${errors[0]!.message}`);
    return;
  }
  for (const e of errors) console.error(formatError(file, e));
  console.error(`${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}; ${outcome}`);
}

/** Runs `fn`; a ConfigInvalidError is printed (exit 1) instead of thrown. */
export async function orConfigErrors<T>(outcome: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    printConfigErrors(err.file, err.errors, outcome);
    process.exitCode = 1;
    return null;
  }
}
