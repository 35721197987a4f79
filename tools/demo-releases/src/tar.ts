/**
 * Deterministic tar writer (ustar, with PAX extended headers only where needed) and a minimal in-memory reader.
 * Every entry is owned by 0:0 with empty user/group names and a fixed mtime, so the same entries give the same bytes.
 *
 * Deliberately independent of the factory's archive module (@factory/archive): the demo releases stand in for
 * upstream images the factory did not write, and the factory's tests read the factory's output back with this
 * reader. Sharing one implementation would let a bug on both sides cancel out. Keep it separate (see README,
 * "Independent archive code").
 */
import { byteCompare, SOURCE_DATE_EPOCH } from './util';

export type TarEntry =
  | { type: 'file'; path: string; data: Buffer | string; mode?: number; pax?: Record<string, string> }
  | { type: 'dir'; path: string; mode?: number; pax?: Record<string, string> }
  | { type: 'symlink'; path: string; target: string; mode?: number; pax?: Record<string, string> }
  | { type: 'hardlink'; path: string; target: string; mode?: number; pax?: Record<string, string> };

export interface TarOptions {
  /** mtime for every entry (default SOURCE_DATE_EPOCH). */
  mtime?: number;
  /** Keep the given order instead of sorting entries by path. */
  keepOrder?: boolean;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function splitName(name: string): { name: string; prefix: string } | null {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return { name, prefix: '' };
  // find a '/' such that prefix <= 155 bytes and rest <= 100 bytes
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { name: rest, prefix };
  }
  return null;
}

function header(fields: {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: string;
}): Buffer {
  const buf = Buffer.alloc(BLOCK, 0);
  const split = splitName(fields.name) ?? { name: fields.name.slice(0, 100), prefix: '' };
  buf.write(split.name, 0, 100, 'utf8');
  buf.write(octal(fields.mode & 0o7777, 8), 100, 'ascii');
  buf.write(octal(0, 8), 108, 'ascii');
  buf.write(octal(0, 8), 116, 'ascii');
  buf.write(octal(fields.size, 12), 124, 'ascii');
  buf.write(octal(fields.mtime, 12), 136, 'ascii');
  buf.write('        ', 148, 'ascii');
  buf.write(fields.typeflag, 156, 'ascii');
  if (fields.linkname) buf.write(fields.linkname, 157, 100, 'utf8');
  buf.write('ustar\0', 257, 'ascii');
  buf.write('00', 263, 'ascii');
  buf.write(octal(0, 8), 329, 'ascii');
  buf.write(octal(0, 8), 337, 'ascii');
  if (split.prefix) buf.write(split.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return buf;
}

function pad(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rem, 0);
}

function paxRecord(key: string, value: string): string {
  // "<len> <key>=<value>\n" where len counts the whole record including its own digits
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Add directory entries for every missing parent of the given entries (mode 0755). */
export function withParentDirs(entries: TarEntry[], mode = 0o755): TarEntry[] {
  const have = new Set(entries.filter((e) => e.type === 'dir').map((e) => e.path.replace(/\/+$/, '')));
  const out = [...entries];
  for (const e of entries) {
    const parts = e.path.replace(/\/+$/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!have.has(dir)) {
        have.add(dir);
        out.push({ type: 'dir', path: dir, mode });
      }
    }
  }
  return out;
}

/** Build a tar archive in memory. */
export function createTar(entries: TarEntry[], opts: TarOptions = {}): Buffer {
  const mtime = opts.mtime ?? SOURCE_DATE_EPOCH;
  // Sorted by path, except that a hard link must follow the file it links to (readers resolve it on the spot).
  const list = opts.keepOrder
    ? entries
    : [...entries].sort((a, b) => {
        const rank = (e: TarEntry) => (e.type === 'hardlink' ? 1 : 0);
        return rank(a) - rank(b) || byteCompare(a.path.replace(/\/+$/, ''), b.path.replace(/\/+$/, ''));
      });
  const chunks: Buffer[] = [];
  for (const e of list) {
    let name = e.path.replace(/^\.?\/+/, '').replace(/\/+$/, '');
    if (e.type === 'dir') name += '/';
    const linkname = e.type === 'symlink' || e.type === 'hardlink' ? e.target : undefined;
    const pax: Record<string, string> = { ...(e.pax ?? {}) };
    if (!splitName(name)) pax.path = name;
    if (linkname && Buffer.byteLength(linkname) > 100) pax.linkpath = linkname;
    const keys = Object.keys(pax).sort(byteCompare);
    if (keys.length) {
      const body = Buffer.from(keys.map((k) => paxRecord(k, pax[k])).join(''), 'utf8');
      const paxName = `PaxHeaders/${name.replace(/\/$/, '').split('/').pop()}`.slice(0, 100);
      chunks.push(header({ name: paxName, mode: 0o644, size: body.length, mtime, typeflag: 'x' }), body, pad(body.length));
    }
    const data = e.type === 'file' ? (typeof e.data === 'string' ? Buffer.from(e.data) : e.data) : Buffer.alloc(0);
    const defaultMode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
    const typeflag = e.type === 'file' ? '0' : e.type === 'hardlink' ? '1' : e.type === 'symlink' ? '2' : '5';
    chunks.push(header({ name, mode: e.mode ?? defaultMode, size: data.length, mtime, typeflag, linkname }));
    if (data.length) chunks.push(data, pad(data.length));
  }
  chunks.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(chunks);
}

export interface TarReadEntry {
  path: string;
  type: string;
  mode: number;
  size: number;
  linkname: string;
  data: Buffer;
  pax: Record<string, string>;
}

/** Minimal tar reader (ustar + PAX path/linkpath), enough for tests and self-checks. */
export function readTar(buf: Buffer): TarReadEntry[] {
  const out: TarReadEntry[] = [];
  let off = 0;
  let pending: Record<string, string> = {};
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const str = (s: number, l: number) => h.subarray(s, s + l).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const typeflag = str(156, 1) || '0';
    const prefix = str(345, 155);
    let name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'x') {
      const text = data.toString('utf8');
      let i = 0;
      while (i < text.length) {
        const sp = text.indexOf(' ', i);
        const len = parseInt(text.slice(i, sp), 10);
        const rec = text.slice(sp + 1, i + len - 1);
        const eq = rec.indexOf('=');
        pending[rec.slice(0, eq)] = rec.slice(eq + 1);
        i += len;
      }
      continue;
    }
    if (pending.path) name = pending.path;
    const linkname = pending.linkpath ?? str(157, 100);
    out.push({ path: name, type: typeflag, mode: parseInt(str(100, 8).trim() || '0', 8), size, linkname, data: Buffer.from(data), pax: pending });
    pending = {};
  }
  return out;
}
