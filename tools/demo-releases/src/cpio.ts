/**
 * Deterministic newc ("070701") cpio writer and reader.
 * Deliberately independent of the factory's archive module (@factory/archive): it writes the upstream initramfs the
 * factory extends, and the factory's tests read the factory's cpio output back with it, so a bug in one
 * implementation is caught by the other (see README, "Independent archive code").
 * Output matches what `cpio -H newc -o --reproducible -R 0:0` gives for the same file list: inodes numbered
 * sequentially, device numbers zero, owner 0:0, fixed mtime, archive padded to a 512-byte multiple.
 */
import { byteCompare, SOURCE_DATE_EPOCH } from './util';

export type CpioEntry =
  | { type: 'file'; path: string; data: Buffer | string; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string; mode?: number };

export interface CpioOptions {
  mtime?: number;
  /** Keep the given order; default sorts by path bytewise (like `find | LC_ALL=C sort`). */
  keepOrder?: boolean;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0').toUpperCase();
}

function record(ino: number, mode: number, nlink: number, mtime: number, name: string, data: Buffer): Buffer {
  const nameBuf = Buffer.from(name + '\0', 'utf8');
  const hdr =
    '070701' +
    hex8(ino) + hex8(mode) + hex8(0) + hex8(0) + hex8(nlink) + hex8(mtime) + hex8(data.length) +
    hex8(0) + hex8(0) + hex8(0) + hex8(0) + hex8(nameBuf.length) + hex8(0);
  const head = Buffer.concat([Buffer.from(hdr, 'ascii'), nameBuf]);
  const padHead = Buffer.alloc((4 - (head.length % 4)) % 4, 0);
  const padData = Buffer.alloc((4 - (data.length % 4)) % 4, 0);
  return Buffer.concat([head, padHead, data, padData]);
}

/** Add directory entries for all missing parents. */
export function withCpioParents(entries: CpioEntry[]): CpioEntry[] {
  const have = new Set(entries.filter((e) => e.type === 'dir').map((e) => e.path));
  const out = [...entries];
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!have.has(d)) {
        have.add(d);
        out.push({ type: 'dir', path: d, mode: 0o755 });
      }
    }
  }
  return out;
}

export function createCpio(entries: CpioEntry[], opts: CpioOptions = {}): Buffer {
  const mtime = opts.mtime ?? SOURCE_DATE_EPOCH;
  const list = opts.keepOrder ? entries : [...entries].sort((a, b) => byteCompare(a.path, b.path));
  const chunks: Buffer[] = [];
  let ino = 1;
  for (const e of list) {
    const name = e.path.replace(/^\.?\/+/, '');
    if (e.type === 'dir') {
      chunks.push(record(ino++, S_IFDIR | (e.mode ?? 0o755), 2, mtime, name, Buffer.alloc(0)));
    } else if (e.type === 'symlink') {
      chunks.push(record(ino++, S_IFLNK | (e.mode ?? 0o777), 1, mtime, name, Buffer.from(e.target)));
    } else {
      const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
      chunks.push(record(ino++, S_IFREG | (e.mode ?? 0o644), 1, mtime, name, data));
    }
  }
  chunks.push(record(0, 0, 1, 0, 'TRAILER!!!', Buffer.alloc(0)));
  const body = Buffer.concat(chunks);
  const tail = Buffer.alloc((512 - (body.length % 512)) % 512, 0);
  return Buffer.concat([body, tail]);
}

export interface CpioReadEntry {
  path: string;
  mode: number;
  data: Buffer;
}

/** Read one or more concatenated uncompressed newc archives (stops at the end of the buffer). */
export function readCpio(buf: Buffer): CpioReadEntry[] {
  const out: CpioReadEntry[] = [];
  let off = 0;
  while (off + 110 <= buf.length) {
    // skip zero padding between archives
    if (buf[off] === 0) { off++; continue; }
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== '070701' && magic !== '070702') break;
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const namesize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    let p = off + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = buf.subarray(p, p + size);
    p += size;
    p += (4 - (p % 4)) % 4;
    off = p;
    if (name === 'TRAILER!!!') continue;
    out.push({ path: name, mode, data: Buffer.from(data) });
  }
  return out;
}
