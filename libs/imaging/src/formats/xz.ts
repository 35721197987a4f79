/**
 * `.xz` output equal, byte for byte, to `xz -0 --threads=N` (N >= 2, any N) of the whole file, without pushing the
 * holes through LZMA2.
 *
 * In multi-threaded mode xz cuts its input into independent 1 MiB blocks (the -0 default block size, also passed
 * explicitly) and stores each block's sizes in its header. A block depends only on its own 1 MiB of input, so:
 *   - the non-zero 1 MiB chunks of the image (aligned to the file start) are fed, in order, to ONE `xz` process,
 *     whose output is parsed back into blocks (1:1 with those chunks);
 *   - every all-zero chunk gets the block xz produces for 1 MiB of zeros (computed once);
 *   - the blocks are interleaved in file order and a fresh index and stream footer are written.
 * The child's own index is checked against the parsed blocks. Multi-threaded mode is forced (N >= 2) because only
 * it stores block sizes in block headers (and its output does not depend on the thread count, unlike -T0 on a
 * single-core host, which silently switches to the single-threaded format).
 */
import os from 'node:os';
import zlib from 'node:zlib';
import { start } from '@factory/process';
import { endWritable, writeTo } from './writable';
import { CHUNK, OutputFile, readChunks, zeros } from './scan';

export const XZ_PRESET = '-0';
const CHECK_SIZE = 8; // CRC64, xz's default check
const STREAM_FLAGS = Buffer.from([0x00, 0x04]);
const MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

function xzArgs(): string[] {
  const threads = Math.max(2, Math.min(os.availableParallelism?.() ?? os.cpus().length, 8));
  return [XZ_PRESET, `--threads=${threads}`, `--block-size=${CHUNK}`, '--check=crc64', '-q', '-c'];
}

interface XzBlock {
  bytes: Buffer;
  unpadded: number;
  uncompressed: number;
}

/** Incremental reader over an async byte stream. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  consumed = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  async fill(n: number): Promise<boolean> {
    if (this.buf.length >= n) return true;
    const parts: Buffer[] = [this.buf];
    let have = this.buf.length;
    while (have < n && !this.eof) {
      const r = await this.it.next();
      if (r.done) this.eof = true;
      else {
        parts.push(r.value);
        have += r.value.length;
      }
    }
    this.buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
    return have >= n;
  }

  async peek(n: number): Promise<Buffer> {
    if (!(await this.fill(n))) throw new Error('xz: truncated output');
    return this.buf.subarray(0, n);
  }

  async take(n: number): Promise<Buffer> {
    const b = Buffer.from(await this.peek(n));
    this.buf = this.buf.subarray(n);
    this.consumed += n;
    return b;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

function readVli(b: Buffer, off: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9; i++) {
    const x = b[off + i];
    if (x === undefined) throw new Error('xz: truncated integer');
    v += (x & 0x7f) * mul;
    mul *= 128;
    if ((x & 0x80) === 0) return [v, off + i + 1];
  }
  throw new Error('xz: integer too long');
}

function vli(v: number): Buffer {
  const out: number[] = [];
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return Buffer.from(out);
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function streamHeader(): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(zlib.crc32(STREAM_FLAGS) >>> 0);
  return Buffer.concat([MAGIC, STREAM_FLAGS, crc]);
}

/** Parse an xz stream produced in multi-threaded mode; yields its blocks, then checks its index against them. */
async function* parseXz(src: AsyncIterable<Buffer>): AsyncGenerator<XzBlock> {
  const r = new ByteReader(src[Symbol.asyncIterator]());
  const hdr = await r.take(12);
  if (!hdr.subarray(0, 6).equals(MAGIC) || !hdr.subarray(6, 8).equals(STREAM_FLAGS)) throw new Error('xz: unexpected stream header');
  const seen: Array<[number, number]> = [];
  for (;;) {
    const first = (await r.peek(1))[0];
    if (first === 0x00) break; // index indicator
    const hsize = (first + 1) * 4;
    const h = await r.peek(hsize);
    const flags = h[1];
    if ((flags & 0xc0) !== 0xc0) throw new Error('xz: block header without sizes (not multi-threaded output)');
    const [csize, o1] = readVli(h, 2);
    const [usize] = readVli(h, o1);
    const total = hsize + csize + pad4(csize) + CHECK_SIZE;
    const bytes = await r.take(total);
    const blk = { bytes, unpadded: hsize + csize + CHECK_SIZE, uncompressed: usize };
    seen.push([blk.unpadded, blk.uncompressed]);
    yield blk;
  }
  // index: indicator, count, records, padding, CRC32; then the 12-byte footer
  let idxLen = (await r.take(1)).length;
  const nextVli = async (): Promise<number> => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 9; i++) {
      const x = (await r.take(1))[0];
      idxLen++;
      v += (x & 0x7f) * mul;
      mul *= 128;
      if ((x & 0x80) === 0) return v;
    }
    throw new Error('xz: integer too long');
  };
  const count = await nextVli();
  if (count !== seen.length) throw new Error(`xz: index has ${count} records, parsed ${seen.length} blocks`);
  for (let i = 0; i < count; i++) {
    const u = await nextVli();
    const s = await nextVli();
    if (u !== seen[i][0] || s !== seen[i][1]) throw new Error(`xz: index record ${i} does not match its block`);
  }
  await r.take(pad4(idxLen) + 4);
  await r.take(12);
  if (!(await r.atEnd())) throw new Error('xz: trailing data after the stream');
}

const zeroBlocks = new Map<number, Promise<XzBlock>>();

/** The block xz emits for `n` zero bytes (n <= CHUNK), cached per size. */
function zeroBlock(n: number): Promise<XzBlock> {
  let p = zeroBlocks.get(n);
  if (!p) {
    p = (async () => {
      const t = start('xz', xzArgs(), { stdin: 'pipe', stdout: 'pipe' });
      const blocks: XzBlock[] = [];
      const parsing = (async () => {
        for await (const b of parseXz(t.stdout!)) blocks.push(b);
      })();
      await writeTo(t.stdin!, zeros(n));
      await endWritable(t.stdin!);
      await Promise.all([parsing, t.done]);
      if (blocks.length !== 1 || blocks[0].uncompressed !== n) throw new Error('xz: unexpected zero block');
      return blocks[0];
    })();
    p.catch(() => zeroBlocks.delete(n));
    zeroBlocks.set(n, p);
  }
  return p;
}

/** Compress `file` to `out` (see module comment). */
export async function xzFile(file: string, out: OutputFile): Promise<void> {
  const t = start('xz', xzArgs(), { stdin: 'pipe', stdout: 'pipe' });
  const blocks = parseXz(t.stdout!)[Symbol.asyncIterator]();
  // kinds[i]: 0 = data chunk (next block from the child), otherwise the size of a zero chunk
  const kinds: number[] = [];
  let readerDone = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const reader = (async () => {
    try {
      for await (const c of readChunks(file)) {
        kinds.push(c.zero ? c.data.length : 0);
        notify();
        if (!c.zero) await writeTo(t.stdin!, c.data);
      }
    } finally {
      readerDone = true;
      notify();
      await endWritable(t.stdin!);
    }
  })();
  reader.catch(() => undefined);
  const index: Array<[number, number]> = [];
  try {
    await out.write(streamHeader());
    for (let i = 0; ; i++) {
      while (i >= kinds.length && !readerDone) await new Promise<void>((res) => (wake = res));
      if (i >= kinds.length) break;
      const k = kinds[i];
      let blk: XzBlock;
      if (k === 0) {
        const r = await blocks.next();
        if (r.done) throw new Error('xz: fewer blocks than data chunks');
        blk = r.value;
      } else {
        blk = await zeroBlock(k);
      }
      await out.write(blk.bytes);
      index.push([blk.unpadded, blk.uncompressed]);
    }
    if (!(await blocks.next()).done) throw new Error('xz: more blocks than data chunks');
    await reader;
    await t.done;
  } catch (e) {
    t.abandon();
    await t.done.catch(() => undefined);
    await reader.catch(() => undefined);
    throw e;
  }
  // index + footer
  const parts: Buffer[] = [Buffer.from([0x00]), vli(index.length)];
  for (const [u, s] of index) parts.push(vli(u), vli(s));
  let idx = Buffer.concat(parts);
  idx = Buffer.concat([idx, Buffer.alloc(pad4(idx.length))]);
  const idxCrc = Buffer.alloc(4);
  idxCrc.writeUInt32LE(zlib.crc32(idx) >>> 0);
  idx = Buffer.concat([idx, idxCrc]);
  const footer = Buffer.alloc(12);
  footer.writeUInt32LE(idx.length / 4 - 1, 4);
  STREAM_FLAGS.copy(footer, 8);
  footer.write('YZ', 10, 'latin1');
  footer.writeUInt32LE(zlib.crc32(footer.subarray(4, 10)) >>> 0, 0);
  await out.write(idx);
  await out.write(footer);
}
