/**
 * Log entries copied as bytes into shared chunks that are recycled, for the
 * log queues of busy exporters (http-log, OTLP spans). An entry is a range of
 * a chunk; a batch goes out as the chunks' ranges, without copying; a chunk
 * returns to the arena once every entry in it was delivered or dropped.
 *
 * Why: entries kept as JavaScript strings live until their batch is sent
 * (up to max_coalescing_delay), so at thousands of requests a second every
 * young-generation collection copied and promoted megabytes of them, and
 * every batch was encoded to bytes once more to be sent. Buffers allocated
 * per entry were worse (their external memory brought more full
 * collections); here chunks are reused (at most 2 MiB of free ones are kept
 * per arena; an entry larger than a chunk gets one of its own).
 */
/** Bytes of a chunk: many entries each. */
const CHUNK = 65536;
/** Free chunks kept for reuse, at most (per arena: 2 MiB). */
const MAX_FREE = 32;

class Chunk {
  readonly buf: Buffer;
  /** Entries in this chunk not yet released. */
  live = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }
}

/** Entries are elements of a JSON array (a batch): each is written with the comma that follows it. */
const COMMA = 0x2c;

/** One entry: bytes [start, end) of its chunk, its comma included. */
export interface ByteEntry {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
}

export class LogArena {
  readonly #free: Chunk[] = [];
  /** The chunk being written: none until the first entry (an instance that never logs holds no memory). */
  #chunk: Chunk | null = null;
  /** Where the next entry goes in #chunk. */
  #pos = 0;

  /** Add an entry: ASCII text (jsonText()'s lines), copied with the comma that follows it. */
  add(text: string): ByteEntry {
    const n = text.length + 1;
    let chunk = this.#chunk;
    if (chunk === null || this.#pos + n > chunk.buf.length) {
      // A new chunk; the one left is reused once its entries are released.
      if (chunk !== null && chunk.live === 0) this.#give(chunk);
      this.#chunk = chunk = this.#take(n <= CHUNK ? CHUNK : n);
      this.#pos = 0;
    }
    const start = this.#pos;
    const end = start + chunk.buf.write(text, start, n - 1, 'latin1');
    chunk.buf[end] = COMMA;
    this.#pos = end + 1;
    chunk.live++;
    return { chunk, start, end: end + 1 };
  }

  /** A chunk of at least `size` bytes: a free one when the size is the usual. */
  #take(size: number): Chunk {
    return size === CHUNK && this.#free.length > 0 ? this.#free.pop()! : new Chunk(size);
  }

  /** A chunk nobody uses any more. */
  #give(chunk: Chunk): void {
    if (chunk.buf.length === CHUNK && this.#free.length < MAX_FREE) this.#free.push(chunk);
  }

  /** Entries delivered or dropped: their chunks are reused once empty (the one being written stays). */
  release(entries: readonly ByteEntry[]): void {
    for (let i = 0; i < entries.length; i++) {
      const chunk = entries[i]!.chunk;
      if (--chunk.live === 0 && chunk !== this.#chunk) this.#give(chunk);
    }
  }

  /**
   * The bytes of a batch, without copying: `head`, the entries one after the
   * other with the last one's comma left out, `tail`. Entries that follow
   * each other in a chunk are one range.
   */
  static parts(batch: readonly ByteEntry[], head: Buffer | null, tail: Buffer | null): Buffer[] {
    const parts: Buffer[] = [];
    if (head !== null) parts.push(head);
    let i = 0;
    while (i < batch.length) {
      const first = batch[i]!;
      let end = first.end;
      while (++i < batch.length && batch[i]!.chunk === first.chunk && batch[i]!.start === end) end = batch[i]!.end;
      if (i === batch.length) end--; // the last comma
      parts.push(first.chunk.buf.subarray(first.start, end));
    }
    if (tail !== null) parts.push(tail);
    return parts;
  }
}
