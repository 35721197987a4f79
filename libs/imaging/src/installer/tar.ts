/**
 * Minimal streaming tar writer for regular files only (what image layers and docker-save archives need).
 *
 * Every member gets uid/gid 0, empty user/group names and mtime 0; the mode is whatever the caller passes. Names
 * up to 100 bytes go into the ustar name field, up to 255 via the ustar prefix split; longer or non-ASCII names and
 * sizes beyond the 11-digit octal field get a PAX extended header (`x`) first. The archive ends with two zero
 * blocks and no record padding (as Go's archive/tar writes it).
 */
import fsp from 'node:fs/promises';
import fs from 'node:fs';
import { InstallerImageError } from './errors';

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits
const READ_CHUNK = 1 << 20;

export interface TarFileEntry {
  /** member name, '/'-separated, relative */
  name: string;
  /** permission bits (and setuid/setgid/sticky) stored in the header */
  mode: number;
  /** exactly one of `file` (streamed from disk) or `data` (in memory, small) */
  file?: string;
  data?: Buffer;
  /** size of `file`, as found when the entry list was made; the stream fails if the file no longer matches */
  size: number;
}

function putOctal(h: Buffer, off: number, len: number, v: number): void {
  h.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

const isAscii = (s: string) => /^[\x01-\x7f]*$/.test(s);

/** ustar (name, prefix) for `name`, or null when it does not fit / needs PAX. */
function splitName(name: string): { name: string; prefix: string } | null {
  if (!isAscii(name)) return null;
  if (name.length <= 100) return { name, prefix: '' };
  // the prefix must end at a '/', be <= 155 bytes, and leave a non-empty name of <= 100 bytes
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (rest.length > 100) break;
    if (prefix.length <= 155 && rest.length > 0) return { name: rest, prefix };
  }
  return null;
}

function headerBlock(o: { name: string; prefix: string; mode: number; size: number; type: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(o.name, 0, 100, 'latin1');
  putOctal(h, 100, 8, o.mode);
  putOctal(h, 108, 8, 0); // uid
  putOctal(h, 116, 8, 0); // gid
  putOctal(h, 124, 12, o.size);
  putOctal(h, 136, 12, 0); // mtime
  h.fill(0x20, 148, 156); // checksum placeholder
  h.write(o.type, 156, 1, 'latin1');
  h.write('ustar\0' + '00', 257, 8, 'latin1');
  putOctal(h, 329, 8, 0); // devmajor
  putOctal(h, 337, 8, 0); // devminor
  if (o.prefix) h.write(o.prefix, 345, 155, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** One PAX record `"<len> key=value\n"` where <len> counts the whole record including itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.byteLength(` ${key}=${value}\n`);
  let len = body + 1;
  while (String(len).length + body !== len) len = String(len).length + body;
  return Buffer.from(`${len} ${key}=${value}\n`, 'utf8');
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/** ASCII-only, <= 100 bytes stand-in for a name that lives in a PAX record. */
function fallbackName(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
}

/** Header block(s) (PAX extended header first when needed) of a regular-file member. */
export function tarFileHeader(name: string, mode: number, size: number): Buffer {
  const split = splitName(name);
  const records: Buffer[] = [];
  if (!split) records.push(paxRecord('path', name));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const main = headerBlock({
    name: split ? split.name : fallbackName(name),
    prefix: split ? split.prefix : '',
    mode,
    size: size > MAX_OCTAL_SIZE ? 0 : size,
    type: '0',
  });
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const base = fallbackName(name.slice(name.lastIndexOf('/') + 1)).slice(-80);
  const pax = headerBlock({ name: `PaxHeaders.0/${base}`, prefix: '', mode: 0o644, size: body.length, type: 'x' });
  return Buffer.concat([pax, body, padding(body.length), main]);
}

/** Bytes of `file`, exactly `size` of them (fails if the file is shorter or longer now). */
async function* fileBytes(file: string, size: number): AsyncGenerator<Buffer> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY);
  try {
    let off = 0;
    while (off < size) {
      // fresh buffer per read: downstream stages (zlib) may still hold earlier chunks
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - off));
      const { bytesRead } = await fh.read(buf, 0, buf.length, off);
      if (bytesRead === 0) throw new InstallerImageError('FILE_CHANGED', `${file}: file shrank while being packaged`);
      off += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
    const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, size);
    if (bytesRead !== 0) throw new InstallerImageError('FILE_CHANGED', `${file}: file grew while being packaged`);
  } finally {
    await fh.close();
  }
}

/** The whole archive for `entries`, in the given order, as a stream of buffers. */
export async function* tarStream(entries: Iterable<TarFileEntry>): AsyncGenerator<Buffer> {
  for (const e of entries) {
    if (e.data !== undefined && e.data.length !== e.size) throw new Error(`tar: size mismatch for ${e.name}`);
    yield tarFileHeader(e.name, e.mode, e.size);
    if (e.data !== undefined) {
      if (e.size > 0) yield e.data;
    } else if (e.file !== undefined) {
      yield* fileBytes(e.file, e.size);
    } else if (e.size !== 0) {
      throw new Error(`tar: no content for ${e.name}`);
    }
    const pad = padding(e.size);
    if (pad.length) yield pad;
  }
  yield Buffer.alloc(2 * BLOCK);
}
