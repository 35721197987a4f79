/**
 * Deterministic tar writers:
 *   - `ustarHeader` / `writeUstar`: plain regular-file members (OVA);
 *   - `sparseTarStream`: one member in GNU tar's old sparse format (type 'S'), as
 *     `tar -c --sparse --hole-detection=raw --format=gnu --sort=name --owner=0 --group=0 --numeric-owner
 *      --mode=0644 --mtime=@<epoch> <name>` writes it (same header bytes, same sparse map, padded to 10240-byte
 *     records). The map is found by content at 512-byte granularity in a first pass over the file (cheap: holes are
 *     skipped a chunk at a time), then only the data regions are read.
 */
import fs from 'node:fs';
import { SOURCE_DATE_EPOCH } from '../reproducible';
import { CHUNK, isZero, readChunks, readFull } from './scan';

export const BLOCK = 512;
const RECORD = 20 * BLOCK;
/** Fixed member mtime of every archive the factory writes. */
export const TAR_MTIME = SOURCE_DATE_EPOCH;

/** Numeric field: octal digits + NUL when it fits, else GNU base-256 (0x80 marker, big-endian). */
function putNumber(h: Buffer, off: number, len: number, v: number): void {
  const oct = v.toString(8);
  if (oct.length <= len - 1) {
    h.write(oct.padStart(len - 1, '0') + '\0', off, len, 'latin1');
    return;
  }
  let x = BigInt(v);
  for (let i = len - 1; i >= 1; i--) {
    h[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  h[off] = 0x80;
}

function putString(h: Buffer, off: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new Error(`tar: "${s}" does not fit in ${len} bytes`);
  b.copy(h, off);
}

function setChecksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

export interface TarMember {
  name: string;
  size: number;
  mode?: number;
  mtime?: number;
}

/** POSIX ustar header of a regular file: uid/gid 0, empty user/group names, fixed mtime. */
export function ustarHeader(m: TarMember): Buffer {
  const h = Buffer.alloc(BLOCK);
  putString(h, 0, 100, m.name);
  putNumber(h, 100, 8, m.mode ?? 0o644);
  putNumber(h, 108, 8, 0);
  putNumber(h, 116, 8, 0);
  putNumber(h, 124, 12, m.size);
  putNumber(h, 136, 12, m.mtime ?? TAR_MTIME);
  h[156] = 0x30; // '0'
  h.write('ustar\0' + '00', 257, 8, 'latin1');
  setChecksum(h);
  return h;
}

export const tarPadding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

export interface SparseRegion {
  offset: number;
  size: number;
}

/**
 * GNU-tar-compatible sparse map of `file`: maximal runs of non-zero 512-byte blocks, in order; when the file ends
 * in a hole (or is empty) a final zero-length region at the file size marks the end.
 */
export async function sparseMap(file: string): Promise<{ size: number; regions: SparseRegion[] }> {
  const size = (await fs.promises.stat(file)).size;
  const regions: SparseRegion[] = [];
  let cur: SparseRegion | undefined;
  for await (const c of readChunks(file)) {
    if (c.zero) {
      cur = undefined;
      continue;
    }
    for (let o = 0; o < c.data.length; o += BLOCK) {
      const blk = c.data.subarray(o, Math.min(o + BLOCK, c.data.length));
      if (isZero(blk)) {
        cur = undefined;
      } else if (cur) {
        cur.size += blk.length;
      } else {
        cur = { offset: c.offset + o, size: blk.length };
        regions.push(cur);
      }
    }
  }
  if (!cur) regions.push({ offset: size, size: 0 });
  return { size, regions };
}

function putSparse(h: Buffer, off: number, r: SparseRegion): void {
  putNumber(h, off, 12, r.offset);
  putNumber(h, off + 12, 12, r.size);
}

/** Header block(s) of a GNU 'S' member: 4 map entries in the header, 21 per extension block. */
export function gnuSparseHeaders(name: string, size: number, regions: SparseRegion[], mode = 0o644, mtime = TAR_MTIME): Buffer {
  const stored = regions.reduce((a, r) => a + r.size, 0);
  const h = Buffer.alloc(BLOCK);
  putString(h, 0, 100, name);
  putNumber(h, 100, 8, mode);
  putNumber(h, 108, 8, 0);
  putNumber(h, 116, 8, 0);
  putNumber(h, 124, 12, stored);
  putNumber(h, 136, 12, mtime);
  h[156] = 0x53; // 'S'
  h.write('ustar  \0', 257, 8, 'latin1'); // old GNU magic + version
  const inHeader = regions.slice(0, 4);
  inHeader.forEach((r, i) => putSparse(h, 386 + i * 24, r));
  const rest = regions.slice(4);
  h[482] = rest.length > 0 ? 1 : 0;
  putNumber(h, 483, 12, size);
  setChecksum(h);
  const blocks = [h];
  for (let i = 0; i < rest.length; i += 21) {
    const e = Buffer.alloc(BLOCK);
    rest.slice(i, i + 21).forEach((r, j) => putSparse(e, j * 24, r));
    e[504] = i + 21 < rest.length ? 1 : 0;
    blocks.push(e);
  }
  return Buffer.concat(blocks);
}

/**
 * The whole archive (one sparse member named `name`, then end-of-archive blocks, padded to a 10240-byte record)
 * as a stream of buffers. Memory: the sparse map plus one chunk.
 */
export async function* sparseTarStream(file: string, name = 'disk.raw'): AsyncGenerator<Buffer> {
  const { size, regions } = await sparseMap(file);
  const hdr = gnuSparseHeaders(name, size, regions);
  yield hdr;
  let total = hdr.length;
  const fh = await fs.promises.open(file, 'r');
  try {
    for (const r of regions) {
      for (let off = 0; off < r.size; off += CHUNK) {
        const n = Math.min(CHUNK, r.size - off);
        const b = Buffer.allocUnsafe(n);
        if ((await readFull(fh, b, r.offset + off)) !== n) throw new Error(`${file}: changed while archiving`);
        total += n;
        yield b;
      }
    }
  } finally {
    await fh.close();
  }
  const pad = tarPadding(total);
  total += pad.length + 2 * BLOCK;
  const end = Buffer.alloc(pad.length + 2 * BLOCK + ((RECORD - (total % RECORD)) % RECORD));
  yield end;
}
