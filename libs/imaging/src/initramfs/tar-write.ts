/**
 * Streaming, deterministic tar writer for a directory tree (ustar + PAX for long names and SELinux xattrs).
 * Used to feed `mksquashfs -tar`, so the squashfs gets exactly the xattrs we list and nothing from the host.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SELINUX_PAX_KEY } from './extract';
import { fileChunks, walkTree } from './tree';

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function splitUstar(name: string): { name: string; prefix: string } | null {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length) return { name: rest, prefix };
  }
  return null;
}

function header(o: { name: string; mode: number; size: number; mtime: number; type: string; link?: string }): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const split = splitUstar(o.name) ?? { name: '', prefix: '' };
  h.write(split.name, 0, 100, 'utf8');
  h.write(octal(o.mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(o.size, 12), 124, 'latin1');
  h.write(octal(o.mtime, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(o.type, 156, 'latin1');
  if (o.link && Buffer.byteLength(o.link) <= 100) h.write(o.link, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  if (split.prefix) h.write(split.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

export function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`, 'utf8');
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK, 0);
}

export interface TarTreeOptions {
  mtime: number;
  /** SELinux labels keyed by path relative to the tree root */
  labels?: Map<string, string>;
  /** subtrees (relative paths) left out */
  exclude?: (rel: string) => boolean;
}

/** Tar stream of every entry below root (root itself not included), in byte order, owner 0:0. */
export async function* tarTree(root: string, o: TarTreeOptions): AsyncGenerator<Buffer> {
  const seen = new Map<string, string>(); // dev:ino -> first path, for hard links
  // xattrs belong to the inode: a label given for any name of a hard-linked file goes on its first (data) entry
  const inodeLabels = new Map<string, string>();
  for (const [rel, label] of o.labels ?? []) {
    const st = await fsp.lstat(path.join(root, rel)).catch(() => null);
    if (st?.isFile() && st.nlink > 1) inodeLabels.set(`${st.dev}:${st.ino}`, label);
  }
  for await (const { rel, abs, st } of walkTree(root, o.exclude)) {
    let type: string;
    let link: string | undefined;
    let size = 0;
    let name = rel;
    if (st.isDirectory()) {
      type = '5';
      name = `${rel}/`;
    } else if (st.isSymbolicLink()) {
      type = '2';
      link = await fsp.readlink(abs);
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(key) : undefined;
      if (first !== undefined) {
        type = '1';
        link = first;
      } else {
        if (st.nlink > 1) seen.set(key, rel);
        type = '0';
        size = st.size;
      }
    } else {
      throw new Error(`${abs}: special files cannot be put into an extension squashfs`);
    }
    const pax: Buffer[] = [];
    if (!splitUstar(name)) pax.push(paxRecord('path', name));
    if (link !== undefined && Buffer.byteLength(link) > 100) pax.push(paxRecord('linkpath', link));
    const label = type === '1' ? undefined : o.labels?.get(rel) ?? (type === '0' && st.nlink > 1 ? inodeLabels.get(`${st.dev}:${st.ino}`) : undefined);
    if (label !== undefined) pax.push(paxRecord(SELINUX_PAX_KEY, label));
    if (pax.length) {
      const body = Buffer.concat(pax);
      yield header({ name: 'PaxHeader', mode: 0o644, size: body.length, mtime: o.mtime, type: 'x' });
      yield body;
      yield padding(body.length);
    }
    yield header({ name, mode: st.mode & 0o7777, size, mtime: o.mtime, type, link });
    if (size) {
      yield* fileChunks(abs, size);
      yield padding(size);
    }
  }
  yield Buffer.alloc(BLOCK * 2, 0);
}
