/** Kernel version detection for the UKI `.uname` section. */
import fs from 'node:fs/promises';

/** offset of the "HdrS" magic in an x86 bzImage (boot protocol >= 2.00) */
const HDRS_OFFSET = 0x202;
/** offset of the 16-bit kernel_version pointer; the string sits at pointer + 0x200 */
const KERNEL_VERSION_PTR_OFFSET = 0x20e;
const KERNEL_VERSION_BASE = 0x200;
/** the pointer is 16-bit, so the string always starts below 0x10200; allow 256 bytes of text */
export const BZIMAGE_HEADER_PROBE_BYTES = 0x10200 + 256;

/**
 * Kernel release (the first word of the version string, e.g. `6.1.0-56-amd64`) of an x86 bzImage, or undefined when
 * the buffer is not a bzImage with a version string (arm64 `Image`s have none). `buf` may be a prefix of the file of
 * at least BZIMAGE_HEADER_PROBE_BYTES (or the whole file when smaller).
 */
export function kernelVersionFromBzImage(buf: Buffer): string | undefined {
  if (buf.length < KERNEL_VERSION_PTR_OFFSET + 2) return undefined;
  if (buf.toString('latin1', HDRS_OFFSET, HDRS_OFFSET + 4) !== 'HdrS') return undefined;
  const ptr = buf.readUInt16LE(KERNEL_VERSION_PTR_OFFSET);
  if (ptr === 0) return undefined;
  const start = ptr + KERNEL_VERSION_BASE;
  if (start >= buf.length) return undefined;
  let end = buf.indexOf(0, start);
  if (end < 0) end = Math.min(buf.length, start + 256);
  const text = buf.toString('latin1', start, end);
  const release = text.trim().split(/\s+/)[0] ?? '';
  // a release is printable ASCII without spaces; anything else means the pointer was not a version string
  if (!release || !/^[\x21-\x7e]+$/.test(release)) return undefined;
  return release;
}

/** Read only the header part of a kernel file and detect its release (bounded memory for large kernels). */
export async function kernelVersionFromFile(path: string): Promise<string | undefined> {
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.alloc(BZIMAGE_HEADER_PROBE_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return kernelVersionFromBzImage(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
