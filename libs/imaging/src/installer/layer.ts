/**
 * Streaming gzip layer writer: the uncompressed tar stream is hashed (diff_id) and CRC'd on its way into a raw
 * deflate stream; the gzip member (fixed header, deflate data, trailer) is hashed (digest) and counted on its way to
 * disk. Memory stays at a few MiB whatever the layer size.
 *
 * Deflate runs pigz-style so that big (incompressible) UKIs do not take one core's worth of time: the input is cut
 * into 1 MiB pieces, each deflated on the libuv thread pool with the previous 32 KiB of input as preset dictionary
 * and ended with a sync flush; their concatenation plus a final empty block is one valid deflate stream. Each piece
 * depends only on its bytes and the bytes before it, so the output does not depend on scheduling.
 *
 * gzip header: `1f 8b 08 00 | 00 00 00 00 | XFL | ff` - no flags, no name, MTIME 0, XFL 2 for level 9, 4 for
 * level 1 and 0 otherwise, and OS 255 ("unknown"), the bytes Go's compress/gzip writes (what go-containerregistry /
 * the upstream factory produce), so the header never depends on the host. The deflate bytes come from the zlib
 * bundled with Node: identical for identical input and level on a given Node build (a Node upgrade that changes
 * zlib may change layer digests, never their content).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

/** go-containerregistry's default for layers it compresses (gzip.BestSpeed); boot assets are mostly incompressible. */
export const INSTALLER_GZIP_LEVEL = 1;
/** OS byte of the gzip header (255 = unknown, as Go's compress/gzip). */
export const GZIP_OS_UNKNOWN = 0xff;

export interface WrittenLayer {
  /** sha256:<hex> of the compressed blob */
  digest: string;
  /** compressed size */
  size: number;
  /** sha256:<hex> of the uncompressed tar */
  diffId: string;
  file: string;
}

const PIECE = 1 << 20;
const WINDOW = 32 * 1024;
const IN_FLIGHT = 8;

function deflatePiece(data: Buffer, level: number, dictionary: Buffer | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: zlib.ZlibOptions = { level, finishFlush: zlib.constants.Z_SYNC_FLUSH };
    if (dictionary) opts.dictionary = dictionary;
    zlib.deflateRaw(data, opts, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** Re-cut a byte stream into PIECE-sized buffers (the last one may be shorter). */
async function* pieces(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const b of src) {
    let off = 0;
    while (off < b.length) {
      const take = Math.min(PIECE - have, b.length - off);
      parts.push(b.subarray(off, off + take));
      have += take;
      off += take;
      if (have === PIECE) {
        yield parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}

/** Raw deflate of `src`, pieces compressed in parallel, emitted in order. */
async function* parallelDeflate(src: AsyncIterable<Buffer>, level: number): AsyncGenerator<Buffer> {
  const queue: Promise<Buffer>[] = [];
  let history: Buffer | undefined; // last <= 32 KiB of input: dictionary of the next piece
  for await (const piece of pieces(src)) {
    const p = deflatePiece(piece, level, history);
    p.catch(() => undefined); // awaited in order below
    queue.push(p);
    const h = history && piece.length < WINDOW ? Buffer.concat([history, piece]) : piece;
    history = Buffer.from(h.subarray(Math.max(0, h.length - WINDOW))); // a copy: never alias producer buffers
    while (queue.length >= IN_FLIGHT) yield await queue.shift()!;
  }
  while (queue.length) yield await queue.shift()!;
  yield Buffer.from([0x03, 0x00]); // final block: empty, fixed Huffman
}

export function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNKNOWN]);
}

/**
 * gzip `tar` into a new file in `workDir`, named `<hex>.tar.gz` after its digest (written under a temporary name
 * first and renamed, so concurrent builds of the same content are harmless).
 */
export async function writeGzipLayer(tar: AsyncIterable<Buffer>, workDir: string, level = INSTALLER_GZIP_LEVEL): Promise<WrittenLayer> {
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level must be 0..9, got ${level}`);
  await fsp.mkdir(workDir, { recursive: true });
  const tmp = path.join(workDir, `.layer-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let crc = 0;
  let isize = 0;
  let size = 0;
  try {
    await pipeline(
      tar,
      async function* uncompressed(src: AsyncIterable<Buffer>) {
        for await (const b of src) {
          diffHash.update(b);
          crc = zlib.crc32(b, crc);
          isize += b.length;
          yield b;
        }
      },
      async function* gzipMember(src: AsyncIterable<Buffer>) {
        yield gzipHeader(level);
        yield* parallelDeflate(src, level);
        // parallelDeflate only ends after all input went through the first stage, so crc/isize are final
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(isize % 0x100000000, 4);
        yield trailer;
      },
      async function* compressed(src: AsyncIterable<Buffer>) {
        for await (const b of src) {
          blobHash.update(b);
          size += b.length;
          yield b;
        }
      },
      fs.createWriteStream(tmp, { flags: 'wx' }),
    );
    const hex = blobHash.digest('hex');
    const file = path.join(workDir, `${hex}.tar.gz`);
    await fsp.rename(tmp, file);
    return { digest: `sha256:${hex}`, size, diffId: `sha256:${diffHash.digest('hex')}`, file };
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
