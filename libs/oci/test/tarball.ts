/** Test helpers: build tar layers in memory (@factory/archive), and a tiny zstd encoder that emits raw (stored) blocks. */
import { TarEntry as ArchiveEntry, tarBuffer } from '@factory/archive';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: string | Buffer;
  linkname?: string;
}

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  return tarBuffer(
    entries.map((e): ArchiveEntry => {
      const type = e.type ?? 'file';
      if (type === 'directory') return { type: 'dir', name: e.name, mode: 0o755 };
      if (type === 'symlink') return { type: 'symlink', name: e.name, mode: 0o644, target: e.linkname ?? '' };
      if (type === 'link') return { type: 'hardlink', name: e.name, mode: 0o644, target: e.linkname ?? '' };
      const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0);
      return { type: 'file', name: e.name, mode: 0o644, size: data.length, data };
    }),
  );
}

/** A valid zstd frame made of raw blocks (no compression): enough to exercise the zstd decoding path. */
export function zstdStored(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  // magic, frame header descriptor (no FCS, no checksum, not single segment), window descriptor (2^17 = 128 KiB)
  parts.push(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]));
  const max = 128 * 1024;
  let off = 0;
  do {
    const n = Math.min(max, data.length - off);
    const last = off + n >= data.length ? 1 : 0;
    const h = (n << 3) | (0 << 1) | last; // block type 0 = raw
    parts.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]));
    parts.push(data.subarray(off, off + n));
    off += n;
  } while (off < data.length);
  return Buffer.concat(parts);
}
