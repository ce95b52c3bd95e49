/**
 * Log entries written as bytes into shared chunks that are recycled, for the
 * log queues of busy exporters (http-log, OTLP spans). An entry is a range of
 * a chunk; a batch goes out as the chunks' ranges, without copying; a chunk
 * returns to the arena once every entry in it was delivered or dropped.
 *
 * Why: entries kept as JavaScript strings live until their batch is sent
 * (up to max_coalescing_delay), so at thousands of requests a second every
 * young-generation collection copied and promoted megabytes of them, and
 * every batch was encoded to bytes once more to be sent. Buffers allocated
 * per entry were worse (their external memory brought more full
 * collections); chunks reused here are allocated once.
 */
import { JsonLine } from './json-line.ts';

/** Bytes of a chunk: many entries each. */
const CHUNK = 65536;
/** Free chunks kept for reuse, at most (per arena). */
const MAX_FREE = 128;

class Chunk {
  readonly buf: Buffer;
  /** Entries in this chunk not yet released. */
  live = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }
}

/** One entry: bytes [start, end) of its chunk, its separator included. */
export interface ByteEntry {
  readonly chunk: Chunk;
  readonly start: number;
  readonly end: number;
}

/** Where entries are written: a JsonLine over the arena's current chunk. */
export class EntryWriter extends JsonLine {
  readonly #arena: LogArena;
  #chunk: Chunk;
  #start = 0;

  constructor(arena: LogArena) {
    const chunk = arena.take(CHUNK);
    super(chunk.buf);
    this.#arena = arena;
    this.#chunk = chunk;
  }

  /** Start an entry. */
  begin(): this {
    this.#start = this.pos;
    return this;
  }

  /** End the entry begun last (the separator is written after it) and return it. */
  end(separator: number): ByteEntry {
    this.need(1);
    this.buf[this.pos++] = separator;
    const chunk = this.#chunk;
    chunk.live++;
    return { chunk, start: this.#start, end: this.pos };
  }

  /** The entry does not fit: carry on in a new chunk, with what is written of it. */
  protected override grow(n: number): void {
    const written = this.pos - this.#start;
    const old = this.#chunk;
    const chunk = this.#arena.take(Math.max(CHUNK, 2 * (written + n)));
    old.buf.copy(chunk.buf, 0, this.#start, this.pos);
    this.#chunk = chunk;
    this.buf = chunk.buf;
    this.pos = written;
    this.#start = 0;
    if (old.live === 0) this.#arena.give(old);
  }

  /** Whether `chunk` is the one being written. */
  writing(chunk: Chunk): boolean {
    return chunk === this.#chunk;
  }
}

export class LogArena {
  readonly #free: Chunk[] = [];
  readonly writer: EntryWriter;

  constructor() {
    this.writer = new EntryWriter(this);
  }

  /** A chunk of at least `size` bytes: a free one when the size is the usual. */
  take(size: number): Chunk {
    return size === CHUNK && this.#free.length > 0 ? this.#free.pop()! : new Chunk(size);
  }

  /** A chunk nobody uses any more. */
  give(chunk: Chunk): void {
    if (chunk.buf.length === CHUNK && this.#free.length < MAX_FREE) this.#free.push(chunk);
  }

  /** Entries delivered or dropped: their chunks are reused once empty (the one being written stays). */
  release(entries: readonly ByteEntry[]): void {
    for (let i = 0; i < entries.length; i++) {
      const chunk = entries[i]!.chunk;
      if (--chunk.live === 0 && !this.writer.writing(chunk)) this.give(chunk);
    }
  }

  /**
   * The bytes of a batch, without copying: `head`, the entries one after the
   * other with the last one's separator left out, `tail`. Entries that follow
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
      if (i === batch.length) end--; // the last separator
      parts.push(first.chunk.buf.subarray(first.start, end));
    }
    if (tail !== null) parts.push(tail);
    return parts;
  }
}
