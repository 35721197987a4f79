/**
 * The factory's archive formats, in one place: a deterministic streaming tar writer (ustar + PAX, Go archive/tar
 * byte parity; GNU sparse members), a tar reader on tar-stream with a safety guard, and newc cpio writer and reader.
 */
export { UnsafeArchiveError, SourceChangedError } from './errors';
export { ByteReader, TruncatedStreamError } from './bytes';
export { fileChunks } from './file';
export type { FileSource } from './file';
export {
  BLOCK,
  RECORD,
  MAX_OCTAL_SIZE,
  ustarBlock,
  paxRecord,
  tarPadding,
  splitUstarName,
  portableName,
  putNumber,
  parseNumber,
  setChecksum,
} from './tar-header';
export type { UstarFields, TarTypeflag } from './tar-header';
export { tarStream, tarBuffer, tarEntryHeader } from './tar-write';
export type { TarEntry, TarWriteOptions } from './tar-write';
export { gnuSparseHeaders, gnuSparseTar } from './tar-sparse';
export type { SparseRegion, SparseFile } from './tar-sparse';
export { readTar } from './tar-read';
export type { TarReadEntry, TarReadOptions } from './tar-read';
export { newcArchive, readCpio, S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } from './cpio';
export type { CpioNode, CpioReadEntry } from './cpio';
