/**
 * Sequential, bounded-memory readers over (mostly sparse) raw disk images.
 *
 * Zero detection is by *content*, so every output is independent of how the file system happened to allocate the
 * file (a hole and a written run of zeros are treated the same) — that is what keeps the outputs reproducible.
 * Holes are not even read: Node has no lseek(SEEK_DATA/SEEK_HOLE), so the allocation map comes from
 * `qemu-img map` (which uses exactly that, and is already required for the disk formats). Reading holes would
 * work too, but on a cold cache the kernel fills the page cache with zero pages (measured ~0.5 s/GiB here, far
 * worse under memory pressure: 22 s for 9 GiB) and evicts useful cache. Without qemu-img everything is read.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '@factory/process';

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
 * Byte ranges [start, end) of `file` that may hold non-zero data, from `qemu-img map` (ranges it reports as
 * reading as zero are left out). Falls back to the whole file when the map is unavailable.
 */
export async function readableExtents(file: string, size: number): Promise<Array<[number, number]>> {
  const all: Array<[number, number]> = size > 0 ? [[0, size]] : [];
  let entries: Array<{ start: number; length: number; zero?: boolean }>;
  try {
    const r = await run('qemu-img', ['map', '-f', 'raw', '--output=json', path.resolve(file)], { maxOutputBytes: 512 * MiB, onOverflow: 'fail' });
    entries = JSON.parse(r.stdout.toString('utf8')) as typeof entries;
  } catch {
    return all;
  }
  const out: Array<[number, number]> = [];
  let covered = 0;
  for (const e of entries) {
    if (e.start !== covered) return all; // not a contiguous description: do not trust it
    covered = e.start + e.length;
    if (e.zero === true || e.length === 0) continue;
    const start = Math.min(e.start, size);
    const end = Math.min(e.start + e.length, size);
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && last[1] === start) last[1] = end;
    else out.push([start, end]);
  }
  if (covered < size) return all;
  return out;
}

/**
 * The file as consecutive chunks of `chunkSize` bytes (the last one may be shorter), aligned to the file start.
 * A data chunk gets its own buffer (the consumer may keep it); zero chunks are reported with the shared zero
 * buffer. Chunks entirely inside holes are not read at all; the others are read and tested for zeros.
 */
export async function* readChunks(file: string, chunkSize = CHUNK): AsyncGenerator<Chunk> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const extents = await readableExtents(file, size);
    let ext = 0;
    let buf = Buffer.allocUnsafe(chunkSize);
    for (let offset = 0; offset < size; offset += chunkSize) {
      const want = Math.min(chunkSize, size - offset);
      while (ext < extents.length && extents[ext][1] <= offset) ext++;
      if (ext >= extents.length || extents[ext][0] >= offset + want) {
        yield { offset, data: zeros(want), zero: true };
        continue;
      }
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
