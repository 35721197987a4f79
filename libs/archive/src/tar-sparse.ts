/**
 * One member in GNU tar's old sparse format (type 'S'), as
 * `tar -c --sparse --format=gnu --owner=0 --group=0 --numeric-owner --mode=0644 --mtime=@<epoch> <name>` writes it:
 * same header bytes, same sparse map layout (4 entries in the header, 21 per extension block), archive padded to
 * 10240-byte records. Only the data regions are stored; finding them (hole detection) is the caller's business.
 */
import fsp from 'node:fs/promises';
import { SourceChangedError } from './errors';
import { BLOCK, putNumber, RECORD, setChecksum, tarPadding, ustarBlock } from './tar-header';

export interface SparseRegion {
  offset: number;
  size: number;
}

export interface SparseFile {
  /** logical size of the file */
  size: number;
  /**
   * data regions in order; when the file ends in a hole (or is empty) GNU tar closes the map with a zero-length
   * region at the file size
   */
  regions: SparseRegion[];
}

const READ_CHUNK = 1 << 20;

function putRegion(h: Buffer, off: number, r: SparseRegion): void {
  putNumber(h, off, 12, r.offset);
  putNumber(h, off + 12, 12, r.size);
}

/** Header block(s) of a GNU 'S' member. */
export function gnuSparseHeaders(name: string, map: SparseFile, mode = 0o644, mtime = 0): Buffer {
  const stored = map.regions.reduce((a, r) => a + r.size, 0);
  const h = ustarBlock({ name, mode, size: stored, mtime, type: 'S', magic: 'gnu' });
  map.regions.slice(0, 4).forEach((r, i) => putRegion(h, 386 + i * 24, r));
  const rest = map.regions.slice(4);
  h[482] = rest.length > 0 ? 1 : 0;
  putNumber(h, 483, 12, map.size);
  setChecksum(h);
  const blocks = [h];
  for (let i = 0; i < rest.length; i += 21) {
    const e = Buffer.alloc(BLOCK);
    rest.slice(i, i + 21).forEach((r, j) => putRegion(e, j * 24, r));
    e[504] = i + 21 < rest.length ? 1 : 0;
    blocks.push(e);
  }
  return Buffer.concat(blocks);
}

/**
 * The whole archive: one sparse member `name` holding the data regions of `file`, then the end-of-archive blocks,
 * padded to a whole record. Memory: one chunk of at most 1 MiB.
 */
export async function* gnuSparseTar(
  file: string,
  map: SparseFile,
  o: { name: string; mode?: number; mtime?: number },
): AsyncGenerator<Buffer> {
  const hdr = gnuSparseHeaders(o.name, map, o.mode, o.mtime);
  yield hdr;
  let total = hdr.length;
  const fh = await fsp.open(file, 'r');
  try {
    for (const r of map.regions) {
      for (let off = 0; off < r.size; ) {
        const b = Buffer.allocUnsafe(Math.min(READ_CHUNK, r.size - off));
        let got = 0;
        while (got < b.length) {
          const { bytesRead } = await fh.read(b, got, b.length - got, r.offset + off + got);
          if (bytesRead === 0) throw new SourceChangedError(file, `${file}: changed while archiving`);
          got += bytesRead;
        }
        off += b.length;
        total += b.length;
        yield b;
      }
    }
  } finally {
    await fh.close();
  }
  const pad = tarPadding(total);
  total += pad.length + 2 * BLOCK;
  yield Buffer.alloc(pad.length + 2 * BLOCK + ((RECORD - (total % RECORD)) % RECORD));
}
