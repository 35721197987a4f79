/**
 * gzip writer (RFC 1952, one member) built on node's zlib, pigz-style: the input is cut into CHUNK-sized pieces that
 * are deflated independently and in parallel (libuv thread pool), each primed with the previous 32 KiB of input as
 * preset dictionary and ended with a sync flush, so that their concatenation is one valid deflate stream.
 *
 * Zero chunks that follow zeros deflate to the same bytes every time, so that segment is computed once and repeated;
 * its CRC contribution is applied with a precomputed GF(2) operator. Holes therefore cost neither deflate nor CRC
 * time. The output depends only on the input bytes, the level and the OS byte, never on thread timing.
 *
 * The member header and trailer (Go's compress/gzip framing: MTIME 0, no name, XFL from the level) come from
 * @factory/gocompat; the OS byte is the caller's (Unix for disk images, as pigz writes; 255 for installer layers, as
 * Go writes).
 */
import zlib from 'node:zlib';
import { GZIP_OS_UNIX, gzipHeader, gzipTrailer } from '@factory/gocompat';
import { CHUNK, OutputFile, isZero, zeros } from './scan';

const WINDOW = 32 * 1024;
/** Final, fixed-Huffman, empty deflate block: ends the stream of sync-flushed pieces (and leaves it byte-aligned). */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);
const IN_FLIGHT = 8;
/** Default level, as the factory's `pigz -6` / `gzip -6`. */
export const GZIP_LEVEL = 6;

export interface DataChunk {
  data: Buffer;
  zero: boolean;
}

function deflateRawAsync(data: Buffer, level: number, dictionary?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: zlib.ZlibOptions = { level, finishFlush: zlib.constants.Z_SYNC_FLUSH };
    if (dictionary && dictionary.length > 0) opts.dictionary = dictionary;
    zlib.deflateRaw(data, opts, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** CRC-32 "append n zero bytes" as an affine map over GF(2), built from 33 probe evaluations of zlib.crc32. */
class ZeroCrc {
  private readonly base: number;
  private readonly cols: Uint32Array;
  constructor(n: number) {
    const z = zeros(n);
    this.base = zlib.crc32(z, 0) >>> 0;
    this.cols = new Uint32Array(32);
    for (let i = 0; i < 32; i++) this.cols[i] = (zlib.crc32(z, (1 << i) >>> 0) ^ this.base) >>> 0;
  }
  apply(crc: number): number {
    let r = this.base;
    for (let i = 0; crc !== 0; i++, crc >>>= 1) if (crc & 1) r ^= this.cols[i];
    return r >>> 0;
  }
}

let zeroCrc: ZeroCrc | undefined;
const zeroSegments = new Map<number, Promise<Buffer>>();

/** Deflated CHUNK of zeros primed with a zero dictionary (identical for every such chunk). */
function zeroSegment(level: number): Promise<Buffer> {
  let p = zeroSegments.get(level);
  if (!p) {
    p = deflateRawAsync(zeros(CHUNK), level, zeros(WINDOW));
    zeroSegments.set(level, p);
  }
  return p;
}

/** Re-cut an arbitrary byte stream into CHUNK-sized pieces (the last may be shorter) tagged with a zero flag. */
export async function* rechunk(src: AsyncIterable<Buffer>): AsyncGenerator<DataChunk> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const b of src) {
    let off = 0;
    while (off < b.length) {
      const take = Math.min(CHUNK - have, b.length - off);
      parts.push(b.subarray(off, off + take));
      have += take;
      off += take;
      if (have === CHUNK) {
        const data = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
        parts = [];
        have = 0;
        yield { data, zero: isZero(data) };
      }
    }
  }
  if (have > 0) {
    const data = Buffer.concat(parts, have);
    yield { data, zero: isZero(data) };
  }
}

/**
 * One gzip member of the chunk stream, as a stream of buffers (header, deflate pieces in order, trailer). Chunks must
 * be CHUNK bytes except the last. `os` is the header's OS byte (MTIME 0, no name, XFL from the level).
 */
export async function* gzipStream(src: AsyncIterable<DataChunk>, level = GZIP_LEVEL, os = GZIP_OS_UNIX): AsyncGenerator<Buffer> {
  yield gzipHeader(level, os);
  const queue: Promise<Buffer>[] = [];
  const enqueue = (p: Promise<Buffer>) => {
    p.catch(() => undefined); // awaited in order below; avoid unhandled-rejection noise meanwhile
    queue.push(p);
  };
  let crc = 0;
  let total = 0;
  let history: Buffer = Buffer.alloc(0); // last <= 32 KiB of input (dictionary for the next chunk)
  let historyZero = false; // history is a full window of zeros
  for await (const c of src) {
    const n = c.data.length;
    if (c.zero && historyZero && n === CHUNK) {
      enqueue(zeroSegment(level));
      zeroCrc ??= new ZeroCrc(CHUNK);
      crc = zeroCrc.apply(crc);
    } else {
      // copy: the dictionary must not alias a buffer the producer may reuse
      enqueue(deflateRawAsync(c.data, level, history.length ? Buffer.from(history) : undefined));
      crc = zlib.crc32(c.data, crc) >>> 0;
    }
    total += n;
    if (n >= WINDOW) {
      history = c.zero ? zeros(WINDOW) : Buffer.from(c.data.subarray(n - WINDOW));
      historyZero = c.zero;
    } else {
      const h = Buffer.concat([history, c.data]);
      history = h.subarray(Math.max(0, h.length - WINDOW));
      historyZero = history.length === WINDOW && isZero(history);
    }
    while (queue.length >= IN_FLIGHT) yield await queue.shift()!;
  }
  while (queue.length) yield await queue.shift()!;
  yield Buffer.concat([FINAL_EMPTY_BLOCK, gzipTrailer(crc, total)]);
}

/** gzip the chunk stream into `out`. Chunks must be CHUNK bytes except the last. */
export async function gzipChunks(src: AsyncIterable<DataChunk>, out: OutputFile, level = GZIP_LEVEL): Promise<void> {
  for await (const b of gzipStream(src, level)) await out.write(b);
}
