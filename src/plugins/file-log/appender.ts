/**
 * Appends text to a file with O_APPEND (whole batches of lines: several
 * workers appending to one file never interleave inside a line). The file is
 * kept open; at most once a second it checks that the path still names the
 * open file, and opens the path again when log rotation renamed or removed it.
 * With `reopen`, every batch opens, appends and closes.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';

const CHECK_EVERY = 1000;

export class FileAppender {
  readonly #path: string;
  readonly #reopen: boolean;
  #fh: FileHandle | null = null;
  #ino = -1;
  #checkedAt = 0;
  #closed = false;

  constructor(path: string, reopen: boolean) {
    this.#path = path;
    this.#reopen = reopen;
  }

  async append(text: string): Promise<void> {
    if (this.#reopen) {
      const fh = await open(this.#path, 'a', 0o640);
      try {
        await fh.appendFile(text);
      } finally {
        await fh.close();
      }
      return;
    }
    if (this.#fh === null || (Date.now() - this.#checkedAt >= CHECK_EVERY && (await this.#rotated()))) await this.#open();
    await this.#fh!.appendFile(text);
  }

  /** The path no longer names the open file (renamed or removed). */
  async #rotated(): Promise<boolean> {
    this.#checkedAt = Date.now();
    try {
      return (await stat(this.#path)).ino !== this.#ino;
    } catch {
      return true;
    }
  }

  async #open(): Promise<void> {
    const old = this.#fh;
    this.#fh = null;
    await old?.close().catch(() => {});
    const fh = await open(this.#path, 'a', 0o640);
    if (this.#closed) {
      await fh.close();
      throw new Error('closed');
    }
    this.#ino = (await fh.stat()).ino;
    this.#checkedAt = Date.now();
    this.#fh = fh;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const fh = this.#fh;
    this.#fh = null;
    await fh?.close().catch(() => {});
  }
}
