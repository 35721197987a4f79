/**
 * Disk image output formats and compression (talos-formats §8.1, anchor-api §3.1–3.2):
 * `convertDisk` (raw / qcow2 / vhd / ova) and `compressOutput` (raw / .xz / .gz / .zst / .tar.gz).
 */
export { convertDisk, normalizeFormatOptions, patchVhd, patchVmdk } from './convert';
export type { ConvertOptions, DiskFormat } from './convert';
export { compressOutput } from './compress';
export type { CompressOptions, OutFormat } from './compress';
export { renderOvf, renderManifest } from './ova';
export type { OvfParams } from './ova';
export { sparseMap, sparseTarStream, TAR_MTIME } from './tar';

export { GZIP_LEVEL } from './gzip';
export { XZ_PRESET } from './xz';
export { ZSTD_LEVEL, ZSTD_ZERO_RUN, zstdZeroFrame } from './zstd';
export { sparseContentDigest, readableExtents, CHUNK } from './scan';
