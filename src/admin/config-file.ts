/**
 * Config text in and out: a config serialised for `config dump`, and the
 * atomic write `config sync` persists with (a temporary file beside the target,
 * flushed, renamed over it: a reader — the file watcher, a restart — sees the
 * old file or the new one, never half of one).
 */
import { randomBytes } from 'node:crypto';
import { open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';

export type DumpFormat = 'yaml' | 'json';

export function serializeConfig(cfg: unknown, format: DumpFormat): string {
  return format === 'json' ? JSON.stringify(cfg, null, 2) + '\n' : stringify(cfg, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A sync writes a .json config file as JSON, anything else as the text it was given. */
export function textFor(file: string, text: string): string {
  if (!file.toLowerCase().endsWith('.json')) return text;
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(parse(text), null, 2) + '\n';
  }
}

/** Raised when the file cannot be written; nothing was changed. */
export class PersistError extends Error {
  override name = 'PersistError';
}

/**
 * Replace `file` atomically with `text`, keeping its permissions (new files:
 * 0600, the config holds secrets). A symlinked file (a mounted config) is
 * written where the link points.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  let target = file;
  let mode = 0o600;
  try {
    target = await realpath(file);
    mode = (await stat(target)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PersistError(`cannot write ${file}: ${(err as Error).message}`);
  }
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // exactly the old file's mode, whatever the umask
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EROFS' || code === 'EACCES' || code === 'EPERM' ? ' (sync needs a writable config file and directory)' : '';
    throw new PersistError(`cannot write ${file}: ${(err as Error).message}${hint}`);
  }
}
