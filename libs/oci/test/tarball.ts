/** Test helpers: build tar layers in memory (tar-stream), and a tiny zstd encoder that emits raw (stored) blocks. */
import * as tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: string | Buffer;
  linkname?: string;
}

export function makeTar(entries: TarEntry[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
    for (const e of entries) {
      const type = e.type ?? 'file';
      const header: tar.Headers = { name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0) };
      if (e.linkname !== undefined) header.linkname = e.linkname;
      if (type === 'file') pack.entry(header, typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0));
      else pack.entry(header);
    }
    pack.finalize();
  });
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
