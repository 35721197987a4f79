/**
 * Streaming gzip layer writer: the uncompressed tar stream is hashed (diff_id) and CRC'd on its way into a raw
 * deflate stream; the gzip member (fixed header, deflate data, trailer) is hashed (digest) and counted on its way to
 * disk. Memory stays at a few MiB whatever the layer size.
 *
 * Deflate is the pigz-style parallel writer of formats/gzip (1 MiB pieces deflated on the libuv thread pool, each
 * primed with the previous 32 KiB), so big (incompressible) UKIs do not take one core's worth of time, and the
 * output does not depend on scheduling.
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
import { GO_GZIP_OS } from '@factory/gocompat';
import { gzipStream, rechunk } from '../formats/gzip';

/** go-containerregistry's default for layers it compresses (gzip.BestSpeed); boot assets are mostly incompressible. */
export const INSTALLER_GZIP_LEVEL = 1;

export interface WrittenLayer {
  /** sha256:<hex> of the compressed blob */
  digest: string;
  /** compressed size */
  size: number;
  /** sha256:<hex> of the uncompressed tar */
  diffId: string;
  file: string;
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
  let size = 0;
  try {
    await pipeline(
      tar,
      async function* uncompressed(src: AsyncIterable<Buffer>) {
        for await (const b of src) {
          diffHash.update(b);
          yield b;
        }
      },
      async function* gzipMember(src: AsyncIterable<Buffer>) {
        yield* gzipStream(rechunk(src), level, GO_GZIP_OS);
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
