/**
 * Tar header encoding shared by every writer: ustar header blocks, PAX extended records, padding.
 *
 * Numeric fields are octal digits + NUL when they fit, else GNU base-256 (what GNU tar and Go's archive/tar both
 * read); the checksum is "%06o\0 " over the block with the checksum field as spaces. Owner is always 0:0 with empty
 * user/group names: the factory never records who built an artifact.
 */

export const BLOCK = 512;
/** GNU tar's default record: archives it writes are padded to a multiple of this. */
export const RECORD = 20 * BLOCK;
/** Largest size an 11-digit octal field holds (8 GiB - 1). */
export const MAX_OCTAL_SIZE = 0o77777777777;

/** Typeflags the writers emit. */
export type TarTypeflag = '0' | '1' | '2' | '5' | 'x' | 'S';

export interface UstarFields {
  /** ustar name field (<= 100 bytes); longer names are split into `prefix` by the caller or go into PAX */
  name: string;
  prefix?: string;
  mode: number;
  size: number;
  mtime: number;
  type: TarTypeflag;
  linkname?: string;
  /**
   * devmajor/devminor as octal zeros ("0000000\0"), as Go's archive/tar writes them; without it they stay NUL, as in
   * the OVA and GNU-tar-compatible archives (default false).
   */
  deviceNumbers?: boolean;
  /** magic + version: POSIX "ustar\0" "00" (default) or old GNU "ustar  \0" (GNU sparse members) */
  magic?: 'ustar' | 'gnu';
}

/** Numeric field: octal digits + NUL when it fits, else GNU base-256 (0x80 marker, big-endian). */
export function putNumber(h: Buffer, off: number, len: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`tar: numeric field value ${v} is not a non-negative integer`);
  const oct = v.toString(8);
  if (oct.length <= len - 1) {
    h.write(oct.padStart(len - 1, '0') + '\0', off, len, 'latin1');
    return;
  }
  let x = BigInt(v);
  for (let i = len - 1; i >= 1; i--) {
    h[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  h[off] = 0x80;
}

/** Value of a numeric field written by putNumber (or by any tar: octal with spaces/NULs, or positive base-256). */
export function parseNumber(field: Buffer): number {
  if (field[0] & 0x80) {
    if (field[0] === 0xff) return NaN; // negative base-256
    let v = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return Number.isSafeInteger(v) ? v : NaN;
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

function putString(h: Buffer, off: number, len: number, s: string, what: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new Error(`tar: ${what} ${JSON.stringify(s)} does not fit in ${len} bytes`);
  b.copy(h, off);
}

/** Store the header checksum of block `h` (in place) and return it. */
export function setChecksum(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** One ustar header block, exactly as given (no splitting, no PAX): the caller decides what fits. */
export function ustarBlock(f: UstarFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  putString(h, 0, 100, f.name, 'name');
  putNumber(h, 100, 8, f.mode);
  putNumber(h, 108, 8, 0); // uid
  putNumber(h, 116, 8, 0); // gid
  putNumber(h, 124, 12, f.size);
  putNumber(h, 136, 12, f.mtime);
  h.write(f.type, 156, 1, 'latin1');
  if (f.linkname) putString(h, 157, 100, f.linkname, 'link name');
  h.write(f.magic === 'gnu' ? 'ustar  \0' : 'ustar\0' + '00', 257, 8, 'latin1');
  if (f.deviceNumbers) {
    putNumber(h, 329, 8, 0);
    putNumber(h, 337, 8, 0);
  }
  if (f.prefix) putString(h, 345, 155, f.prefix, 'name prefix');
  return setChecksum(h);
}

/** Zero bytes that pad `size` bytes of member data to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** One PAX record `"<len> key=value\n"`, where <len> counts the whole record including its own digits. */
export function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  let len = body + 1;
  while (String(len).length + body !== len) len = String(len).length + body;
  return Buffer.from(`${len} ${key}=${value}\n`, 'utf8');
}

const isAscii = (s: string) => /^[\x01-\x7f]*$/.test(s);

/**
 * ustar (name, prefix) for `name` as Go's archive/tar splits it, or null when the name needs a PAX `path` record
 * (non-ASCII, or no '/' leaves a prefix <= 155 bytes and a non-empty name <= 100 bytes).
 */
export function splitUstarName(name: string): { name: string; prefix: string } | null {
  if (!isAscii(name)) return null;
  if (name.length <= 100) return { name, prefix: '' };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (rest.length > 100) break;
    if (prefix.length <= 155 && rest.length > 0) return { name: rest, prefix };
  }
  return null;
}

/** ASCII-only stand-in (<= 100 bytes) for a name or link target that lives in a PAX record. */
export function portableName(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
}
