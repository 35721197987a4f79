/**
 * Sequential, bounded-memory readers over (mostly sparse) raw disk images.
 *
 * Node has no lseek(SEEK_DATA/SEEK_HOLE), so holes are found by *content*: reading a hole costs the kernel a
 * zero-page copy (~6 GB/s here) and the zero test is a memcmp, so scanning a 4 GiB image takes well under a second.
 * Content-based detection also makes every output independent of how the file system happened to allocate the
 * file (a hole and a written run of zeros are treated the same), which is what keeps the outputs reproducible.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export const MiB = 1024 * 1024;
/** Unit of zero detection and of the compressors' independent blocks (equals xz -0's multi-threaded block size). */
export const CHUNK = MiB;

const ZERO = Buffer.alloc(CHUNK);

/** True when `b` only holds zero bytes. */
export function isZero(b: Buffer): boolean {
  for (let off = 0; off < b.length; off += ZERO.length) {
    const n = Math.min(ZERO.length, b.length - off);
    if (!b.subarray(off, off + n).equals(ZERO.subarray(0, n))) return false;
  }
  return true;
}

/** A zero-filled buffer of `n` bytes (shared for n <= CHUNK: never write into it). */
export function zeros(n: number): Buffer {
  return n <= ZERO.length ? ZERO.subarray(0, n) : Buffer.alloc(n);
}

export interface Chunk {
  /** Offset of the chunk in the file. */
  offset: number;
  /** Chunk bytes; for zero chunks a shared zero buffer (read only). */
  data: Buffer;
  zero: boolean;
}

/** Fill `buf` from `pos` (loops over short reads); returns the number of bytes read (< buf.length only at EOF). */
export async function readFull(fh: fs.promises.FileHandle, buf: Buffer, pos: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * The file as consecutive chunks of `chunkSize` bytes (the last one may be shorter), aligned to the file start.
 * A data chunk gets its own buffer (the consumer may keep it); zero chunks reuse one scratch buffer and are reported
 * with the shared zero buffer, so scanning holes allocates nothing.
 */
export async function* readChunks(file: string, chunkSize = CHUNK): AsyncGenerator<Chunk> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    let buf = Buffer.allocUnsafe(chunkSize);
    for (let offset = 0; offset < size; offset += chunkSize) {
      const want = Math.min(chunkSize, size - offset);
      const view = buf.subarray(0, want);
      const n = await readFull(fh, view, offset);
      if (n !== want) throw new Error(`${file}: short read at ${offset} (file shrank?)`);
      if (isZero(view)) {
        yield { offset, data: zeros(want), zero: true };
      } else {
        yield { offset, data: view, zero: false };
        buf = Buffer.allocUnsafe(chunkSize);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * SHA-256 over (size, then index and bytes of every non-zero chunk): a cheap content identity of a sparse image
 * (zero chunks are never hashed), used to derive the identifiers qemu-img would otherwise randomise.
 */
export async function sparseContentDigest(file: string): Promise<Buffer> {
  const h = createHash('sha256');
  const size = (await fs.promises.stat(file)).size;
  const hdr = Buffer.alloc(8);
  hdr.writeBigUInt64BE(BigInt(size));
  h.update(hdr);
  for await (const c of readChunks(file)) {
    if (c.zero) continue;
    const idx = Buffer.alloc(8);
    idx.writeBigUInt64BE(BigInt(c.offset));
    h.update(idx);
    h.update(c.data);
  }
  return h.digest();
}

/** Copy `src` to `dst` writing only non-zero chunks (the copy is sparse, with the same size and bytes). */
export async function sparseCopy(src: string, dst: string): Promise<void> {
  const size = (await fs.promises.stat(src)).size;
  const tmp = `${dst}.partial`;
  const out = await fs.promises.open(tmp, 'w');
  try {
    for await (const c of readChunks(src)) {
      if (!c.zero) await writeFull(out, c.data, c.offset);
    }
    await out.truncate(size);
    await out.sync();
  } finally {
    await out.close();
  }
  await fs.promises.rename(tmp, dst);
}

export async function writeFull(fh: fs.promises.FileHandle, buf: Buffer, pos: number | null): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, pos === null ? null : pos + done);
    done += bytesWritten;
  }
}

/** Sequential output file that coalesces small writes (many tiny compressed zero blocks) into large ones. */
export class OutputFile {
  private parts: Buffer[] = [];
  private pending = 0;
  bytes = 0;
  private constructor(private readonly fh: fs.promises.FileHandle, readonly path: string) {}

  static async create(path: string): Promise<OutputFile> {
    return new OutputFile(await fs.promises.open(path, 'w'), path);
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.parts.push(b);
    this.pending += b.length;
    this.bytes += b.length;
    if (this.pending >= CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending === 0) return;
    const b = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.pending);
    this.parts = [];
    this.pending = 0;
    await writeFull(this.fh, b, null);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
  }

  /** Close without flushing (error path). */
  async abort(): Promise<void> {
    this.parts = [];
    await this.fh.close().catch(() => undefined);
  }
}

/**
 * Write to `out` atomically: `fn` writes into `<out>.partial`, which is renamed over `out` on success and removed
 * on failure.
 */
export async function withOutputFile(out: string, fn: (o: OutputFile) => Promise<void>): Promise<void> {
  const tmp = `${out}.partial`;
  const o = await OutputFile.create(tmp);
  try {
    await fn(o);
    await o.close();
  } catch (e) {
    await o.abort();
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fs.promises.rename(tmp, out);
}
