/**
 * Disk images as `.tar.gz`: one GNU sparse member (written by @factory/archive), as
 * `tar -c --sparse --hole-detection=raw --format=gnu --sort=name --owner=0 --group=0 --numeric-owner
 *  --mode=0644 --mtime=@<epoch> <name>` writes it. The sparse map is found here, by content at 512-byte granularity
 * in a first pass over the file (cheap: holes are skipped a chunk at a time); then only the data regions are read.
 */
import fs from 'node:fs';
import { BLOCK, gnuSparseTar, SparseFile, SparseRegion } from '@factory/archive';
import { SOURCE_DATE_EPOCH } from '../reproducible';
import { isZero, readChunks } from './scan';

/** Fixed member mtime of every archive the factory writes. */
export const TAR_MTIME = SOURCE_DATE_EPOCH;

/**
 * GNU-tar-compatible sparse map of `file`: maximal runs of non-zero 512-byte blocks, in order; when the file ends
 * in a hole (or is empty) a final zero-length region at the file size marks the end.
 */
export async function sparseMap(file: string): Promise<SparseFile> {
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

/** The whole `.tar` (before compression) of `file` as member `name`. Memory: the sparse map plus one chunk. */
export async function* sparseTarStream(file: string, name = 'disk.raw'): AsyncGenerator<Buffer> {
  yield* gnuSparseTar(file, await sparseMap(file), { name, mode: 0o644, mtime: TAR_MTIME });
}
