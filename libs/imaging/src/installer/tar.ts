/**
 * Image layers and docker-save archives hold regular files only, written by @factory/archive's Go-compatible tar
 * writer with Go's defaults (mtime 0, device fields as octal zeros), so the layer digests match what
 * go-containerregistry produces for the same files.
 */
import { SourceChangedError, tarStream as archiveTarStream } from '@factory/archive';
import { InstallerImageError } from './errors';

export interface TarFileEntry {
  /** member name, '/'-separated, relative */
  name: string;
  /** permission bits (and setuid/setgid/sticky) stored in the header */
  mode: number;
  /** exactly one of `file` (streamed from disk) or `data` (in memory, small) */
  file?: string;
  data?: Buffer;
  /** size of `file`, as found when the entry list was made; the stream fails if the file no longer matches */
  size: number;
}

/** The whole archive for `entries`, in the given order, as a stream of buffers. */
export async function* tarStream(entries: Iterable<TarFileEntry>): AsyncGenerator<Buffer> {
  try {
    yield* archiveTarStream([...entries].map((e) => ({ type: 'file' as const, ...e })));
  } catch (err) {
    if (err instanceof SourceChangedError) throw new InstallerImageError('FILE_CHANGED', err.message);
    throw err;
  }
}
