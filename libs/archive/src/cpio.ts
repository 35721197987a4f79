/**
 * newc ("070701") cpio: a streaming writer producing the bytes of
 * `cpio -H newc --create --reproducible --quiet -R +0:+0` for the same listing (inode numbers from 0 in listing
 * order, device numbers zero, owner 0:0, fixed mtime, trailer, archive padded to a multiple of 512 bytes), and a
 * streaming reader of one or more concatenated archives (as in a Linux initramfs).
 */
import { ByteReader, TruncatedStreamError } from './bytes';
import { UnsafeArchiveError } from './errors';
import { fileChunks } from './file';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

const MAGIC = '070701';
const HEADER = 110;
const TRAILER = 'TRAILER!!!';

export type CpioNode =
  /** `nlink`: 2 + number of subdirectories, as cpio records a directory read from disk */
  | { type: 'dir'; path: string; mode: number; nlink: number }
  | { type: 'symlink'; path: string; mode?: number; target: string }
  /** data from `data`, or the concatenation of `sources` (files on disk, opened with O_NOFOLLOW) totalling `size` bytes */
  | { type: 'file'; path: string; mode: number; size: number; data?: Buffer; sources?: Array<{ path: string; size: number }> };

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio field value ${n} out of range`);
  return n.toString(16).toUpperCase().padStart(8, '0');
}

const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);

function header(ino: number, mode: number, nlink: number, mtime: number, size: number, name: string): Buffer {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const h = Buffer.from(
    `${MAGIC}${hex8(ino)}${hex8(mode)}${hex8(0)}${hex8(0)}${hex8(nlink)}${hex8(mtime)}${hex8(size)}` +
      `${hex8(0)}${hex8(0)}${hex8(0)}${hex8(0)}${hex8(nameBuf.length)}${hex8(0)}`,
    'latin1',
  );
  return Buffer.concat([h, nameBuf, pad4(h.length + nameBuf.length)]);
}

/** The archive as a stream of chunks, in the order given; file contents are read from disk as they are needed. */
export async function* newcArchive(nodes: Iterable<CpioNode>, mtime: number): AsyncGenerator<Buffer> {
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
          for await (const c of fileChunks({ path: s.path, size: s.size, noFollow: true })) {
            written += c.length;
            yield out(c);
          }
        }
      }
      if (written !== n.size) throw new Error(`cpio entry ${n.path}: expected ${n.size} bytes, got ${written}`);
      yield out(pad4(n.size));
    }
  }
  yield out(header(0, 0, 1, 0, 0, TRAILER));
  const rest = (512 - (total % 512)) % 512;
  if (rest) yield Buffer.alloc(rest);
}

export interface CpioReadEntry {
  /** name as recorded (a leading "./" is kept) */
  path: string;
  /** file type and permission bits (S_IFMT & mode gives the type) */
  mode: number;
  ino: number;
  nlink: number;
  mtime: number;
  size: number;
  /** the entry's data; read it before asking for the next entry (otherwise it is skipped) */
  body(): AsyncGenerator<Buffer>;
}

/**
 * Entries of one or more concatenated newc / newc-with-checksum ("070702") archives, trailers left out. NUL bytes
 * between archives are skipped; the stream must end at an archive boundary.
 */
export async function* readCpio(input: ByteReader | AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<CpioReadEntry> {
  const r = input instanceof ByteReader ? input : ByteReader.from(input);
  const truncated = (at: number) => new UnsafeArchiveError(`truncated cpio archive at offset ${at}`);
  for (;;) {
    // archives may be separated by zero padding
    for (let p = await r.peek(4096); p.length; p = await r.peek(4096)) {
      const nonZero = p.findIndex((b) => b !== 0);
      await r.skip(nonZero < 0 ? p.length : nonZero);
      if (nonZero >= 0) break;
    }
    const at = r.offset;
    let h: Buffer | null;
    let nameBuf: Buffer | null;
    try {
      h = await r.read(HEADER);
      if (!h) return;
      const magic = h.toString('latin1', 0, 6);
      if (magic !== MAGIC && magic !== '070702') throw new UnsafeArchiveError(`bad cpio magic ${JSON.stringify(magic)} at offset ${at}`);
      const field = (i: number) => {
        const s = h!.toString('latin1', 6 + i * 8, 14 + i * 8);
        if (!/^[0-9a-fA-F]{8}$/.test(s)) throw new UnsafeArchiveError(`malformed cpio header field at offset ${at}`);
        return parseInt(s, 16);
      };
      const namesize = field(11);
      nameBuf = await r.read(namesize);
      if (!nameBuf) throw truncated(at);
      await r.skip((4 - ((HEADER + namesize) % 4)) % 4);
      const name = nameBuf.toString('utf8', 0, Math.max(0, namesize - 1));
      const size = field(6);
      if (name === TRAILER) continue;
      let consumed = 0;
      yield {
        path: name,
        ino: field(0),
        mode: field(1),
        nlink: field(4),
        mtime: field(5),
        size,
        body: async function* () {
          try {
            for await (const c of r.chunks(size - consumed)) {
              consumed += c.length;
              yield c;
            }
          } catch (e) {
            throw e instanceof TruncatedStreamError ? truncated(at) : e;
          }
        },
      };
      if (consumed < size) await r.skip(size - consumed);
      await r.skip((4 - (size % 4)) % 4);
    } catch (e) {
      throw e instanceof TruncatedStreamError ? truncated(at) : e;
    }
  }
}
