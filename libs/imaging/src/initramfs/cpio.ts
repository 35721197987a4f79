/**
 * Streaming newc ("070701") cpio writer producing the bytes of
 * `cpio -H newc --create --reproducible --quiet -R +0:+0` for the same listing: inode numbers renumbered from 0 in
 * listing order, device numbers zero, owner 0:0, directory link count 2 + subdirectories, fixed mtime, trailer,
 * archive padded to a multiple of 512 bytes.
 */
import { fileChunks } from './tree';

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

export type CpioNode =
  | { type: 'dir'; path: string; mode: number; nlink: number }
  | { type: 'symlink'; path: string; mode?: number; target: string }
  /** data from `data`, or the concatenation of `sources` (files on disk) totalling `size` bytes */
  | { type: 'file'; path: string; mode: number; size: number; data?: Buffer; sources?: Array<{ path: string; size: number }> };

function hex8(n: number): string {
  if (n < 0 || n > 0xffffffff) throw new Error(`cpio field value ${n} out of range`);
  return n.toString(16).toUpperCase().padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4, 0);
}

function header(ino: number, mode: number, nlink: number, mtime: number, size: number, name: string): Buffer {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const h = Buffer.from(
    `070701${hex8(ino)}${hex8(mode)}${hex8(0)}${hex8(0)}${hex8(nlink)}${hex8(mtime)}${hex8(size)}` +
      `${hex8(0)}${hex8(0)}${hex8(0)}${hex8(0)}${hex8(nameBuf.length)}${hex8(0)}`,
    'latin1',
  );
  return Buffer.concat([h, nameBuf, pad4(h.length + nameBuf.length)]);
}

/** The archive as a stream of chunks; file contents are read from disk as they are needed. */
export async function* newcArchive(nodes: CpioNode[], mtime: number): AsyncGenerator<Buffer> {
  let total = 0;
  const out = (b: Buffer) => {
    total += b.length;
    return b;
  };
  let ino = 0;
  for (const n of nodes) {
    if (n.type === 'dir') {
      yield out(header(ino++, S_IFDIR | (n.mode & 0o7777), n.nlink, mtime, 0, n.path));
    } else if (n.type === 'symlink') {
      const t = Buffer.from(n.target, 'utf8');
      yield out(header(ino++, S_IFLNK | ((n.mode ?? 0o777) & 0o7777), 1, mtime, t.length, n.path));
      yield out(t);
      yield out(pad4(t.length));
    } else {
      yield out(header(ino++, S_IFREG | (n.mode & 0o7777), 1, mtime, n.size, n.path));
      let written = 0;
      if (n.data) {
        written = n.data.length;
        yield out(n.data);
      } else {
        for (const s of n.sources ?? []) {
          for await (const c of fileChunks(s.path, s.size)) {
            written += c.length;
            yield out(c);
          }
        }
      }
      if (written !== n.size) throw new Error(`cpio entry ${n.path}: expected ${n.size} bytes, got ${written}`);
      yield out(pad4(n.size));
    }
  }
  yield out(header(0, 0, 1, 0, 0, 'TRAILER!!!'));
  const rest = (512 - (total % 512)) % 512;
  if (rest) yield Buffer.alloc(rest, 0);
}
