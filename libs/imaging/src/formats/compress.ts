/**
 * Output compression of disk images (talos-formats §8.1 / anchor-api §3.1 step 8a): raw, `.xz`, `.gz`, `.zst`,
 * `.tar.gz`. All paths stream with bounded memory, treat zero runs specially (see each writer) and are
 * deterministic: same input bytes -> same output bytes on any host.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipChunks, rechunk } from './gzip';
import { readChunks, sparseCopy, withOutputFile } from './scan';
import { sparseTarStream } from './tar';
import { xzFile } from './xz';
import { zstdFile } from './zstd';

export type OutFormat = 'raw' | '.xz' | '.gz' | '.zst' | '.tar.gz';

export interface CompressOptions {
  /** Input disk image (raw, qcow2, vhd or ova — any file). */
  file: string;
  outFormat: OutFormat;
  /** Member name for `.tar.gz` (default `disk.raw`, as GCP requires). */
  innerName?: string;
  out: string;
}

export async function compressOutput(o: CompressOptions): Promise<void> {
  const st = await fs.promises.stat(o.file);
  if (!st.isFile()) throw new Error(`compressOutput: ${o.file} is not a regular file`);
  if (path.resolve(o.file) === path.resolve(o.out)) {
    if (o.outFormat === 'raw') return;
    throw new Error('compressOutput: input and output are the same file');
  }
  await fs.promises.mkdir(path.dirname(o.out), { recursive: true });
  switch (o.outFormat) {
    case 'raw':
      return sparseCopy(o.file, o.out);
    case '.gz':
      return withOutputFile(o.out, (w) => gzipChunks(readChunks(o.file), w));
    case '.xz':
      return withOutputFile(o.out, (w) => xzFile(o.file, w));
    case '.zst':
      return withOutputFile(o.out, (w) => zstdFile(o.file, w));
    case '.tar.gz': {
      const name = o.innerName ?? 'disk.raw';
      if (!/^[A-Za-z0-9._-]{1,99}$/.test(name)) throw new Error(`compressOutput: bad tar member name "${name}"`);
      return withOutputFile(o.out, (w) => gzipChunks(rechunk(sparseTarStream(o.file, name)), w));
    }
    default:
      throw new Error(`compressOutput: unknown output format "${String(o.outFormat)}"`);
  }
}
