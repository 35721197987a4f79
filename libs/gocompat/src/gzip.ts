/**
 * gzip member framing (RFC 1952) as Go's `compress/gzip` writes it with default header fields, the one place that
 * decides the header and trailer bytes of every gzip the factory writes.
 *
 * What is Go-specific is the header: no FLG bits (no name, comment or extra field), MTIME 0 (a zero `ModTime`),
 * XFL 2 for level 9 (`BestCompression`), 4 for level 1 (`BestSpeed`) and 0 otherwise, and OS 255 ("unknown") where
 * zlib, gzip and pigz write 3 (Unix). The header therefore never depends on the host or the clock. The trailer
 * (CRC-32 and ISIZE, both little-endian) is plain RFC 1952.
 *
 * The deflate data between them is zlib's (the copy bundled with Node), not Go's `compress/flate`: a valid stream of
 * the same content, identical for identical input and level on a given Node build, but not byte-identical to what
 * Go would write. Nothing the factory compares with the anchor depends on deflate bytes.
 *
 * Callers: `goGzip` below (one-shot, META payloads on the kernel command line); the streaming, parallel (pigz-style)
 * writer for large outputs lives in `@factory/imaging` (`formats/gzip.ts`, used for installer layers with OS 255 and
 * disk images with OS 3) because it is built on that package's chunked file scanning; it takes its header and
 * trailer from here.
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** OS byte Go's `compress/gzip` writes (255, "unknown"). */
export const GO_GZIP_OS = 0xff;
/** OS byte zlib, gzip and pigz write on Unix hosts (3): what the anchor's `pigz`-compressed disk images carry. */
export const GZIP_OS_UNIX = 3;

/** XFL as Go derives it from the compression level (pigz agrees for levels 1–9). */
function extraFlags(level: number): number {
  if (level === 9) return 2;
  if (level === 1) return 4;
  return 0;
}

/** The 10-byte member header: magic, CM 8 (deflate), FLG 0, MTIME 0, XFL from `level`, then `os`. */
export function gzipHeader(level: number, os = GO_GZIP_OS): Buffer {
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, extraFlags(level), os]);
}

/** The 8-byte member trailer: CRC-32 of the uncompressed data, then its length modulo 2^32. */
export function gzipTrailer(crc: number, size: number): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 0x100000000, 4);
  return trailer;
}

/** One gzip member of `data` with Go's header (see above); the deflate body is zlib's at the same level. */
export function goGzip(data: Uint8Array, level = 9): Buffer {
  return Buffer.concat([gzipHeader(level), deflateRawSync(data, { level }), gzipTrailer(crc32(data), data.length)]);
}
