/** Reading the bytes of a file that goes into an archive, checking it still has the size recorded in the header. */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { SourceChangedError } from './errors';

const READ_CHUNK = 1 << 20;

export interface FileSource {
  path: string;
  /** bytes the archive records for this file */
  size: number;
  /** open with O_NOFOLLOW: a symlink swapped in after the tree was walked fails instead of being followed */
  noFollow?: boolean;
}

/**
 * Exactly `size` bytes of the file, read in chunks of at most 1 MiB. Fails with SourceChangedError when the file is
 * shorter or longer than `size` now. Every chunk is a fresh buffer: downstream stages (zlib) may still hold earlier ones.
 */
export async function* fileChunks(src: FileSource): AsyncGenerator<Buffer> {
  const flags = fs.constants.O_RDONLY | (src.noFollow ? fs.constants.O_NOFOLLOW : 0);
  const fh = await fsp.open(src.path, flags);
  try {
    let off = 0;
    while (off < src.size) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, src.size - off));
      const { bytesRead } = await fh.read(buf, 0, buf.length, off);
      if (bytesRead === 0) throw new SourceChangedError(src.path, `${src.path}: file shrank while being archived (${off} of ${src.size} bytes)`);
      off += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
    const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, src.size);
    if (bytesRead !== 0) throw new SourceChangedError(src.path, `${src.path}: file grew while being archived (expected ${src.size} bytes)`);
  } finally {
    await fh.close();
  }
}
