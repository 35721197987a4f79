/** Pull-style reader over an async byte stream: exact reads for headers, chunked pass-through for bodies. */

/** The stream ended inside a read that needed more bytes. */
export class TruncatedStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TruncatedStreamError';
  }
}

export class ByteReader {
  private bufs: Buffer[] = [];
  private len = 0;
  private eof = false;
  /** bytes handed out so far (for error messages) */
  offset = 0;

  constructor(private readonly it: AsyncIterator<Buffer | string | Uint8Array>) {}

  static from(src: AsyncIterable<Buffer | string | Uint8Array>): ByteReader {
    return new ByteReader(src[Symbol.asyncIterator]());
  }

  private async pull(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    if (b.length) {
      this.bufs.push(b);
      this.len += b.length;
    }
    return true;
  }

  /** Bytes available without waiting, then at least `n` (fewer only at end of stream). */
  private async fill(n: number): Promise<void> {
    while (this.len < n && (await this.pull()));
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.bufs[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.bufs.shift();
      else this.bufs[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let o = 0;
      while (o < n) {
        const b = this.bufs[0];
        const k = Math.min(b.length, n - o);
        b.copy(out, o, 0, k);
        o += k;
        if (k === b.length) this.bufs.shift();
        else this.bufs[0] = b.subarray(k);
      }
    }
    this.len -= n;
    this.offset += n;
    return out;
  }

  /** Exactly n bytes; null at a clean end of stream; throws when the stream ends inside the n bytes. */
  async read(n: number): Promise<Buffer | null> {
    await this.fill(n);
    if (this.len === 0 && n > 0) return null;
    if (this.len < n) throw new TruncatedStreamError(`unexpected end of stream at offset ${this.offset + this.len} (wanted ${n} bytes)`);
    return this.take(n);
  }

  /** Up to n bytes, possibly fewer at end of stream. */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    if (this.len === 0) return Buffer.alloc(0);
    const k = Math.min(n, this.len);
    const b = this.take(k);
    this.bufs.unshift(b);
    this.len += k;
    this.offset -= k;
    return b;
  }

  /** Pass exactly n bytes through as they arrive. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.len === 0 && !(await this.pull())) throw new TruncatedStreamError(`unexpected end of stream at offset ${this.offset} (${left} bytes missing)`);
      if (this.len === 0) continue;
      const k = Math.min(left, this.bufs[0].length);
      left -= k;
      yield this.take(k);
    }
  }

  /** Everything that is left, chunk by chunk. */
  async *rest(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.len === 0 && !(await this.pull())) return;
      if (this.len === 0) continue;
      yield this.take(this.bufs[0].length);
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n));
  }

  /** Release the underlying iterator (stops a producer early). */
  async close(): Promise<void> {
    this.bufs = [];
    this.len = 0;
    this.eof = true;
    try {
      await this.it.return?.();
    } catch {
      // the producer may already have failed; nothing to release
    }
  }
}
