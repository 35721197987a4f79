/**
 * Safe extraction of OCI image layers (talos-formats §4.1): tar, tar+gzip, tar+zstd (and tar+xz), detected by magic
 * bytes, applied in order with OCI whiteouts. SELinux labels from PAX `SCHILY.xattr.security.selinux` records are
 * collected (not applied), keyed by the path relative to `dest`.
 *
 * Safety rules:
 * - a path component `..` anywhere in an entry name or hard-link target is rejected; leading `/` are stripped
 *   (an absolute name is taken relative to `dest`), so nothing can be addressed outside `dest`;
 * - nothing is ever written, linked or deleted through a symbolic link: an entry whose parent chain contains a
 *   symlink is rejected, and an existing symlink at the entry's own path is replaced, not followed;
 * - relative symlink targets must stay inside the tree (resolved from the link's directory); absolute targets are
 *   taken as rooted at `dest` (that is how the node sees them) and are never followed here;
 * - hard links must point at an existing regular file inside `dest`;
 * - character/block devices, FIFOs (and any other special or unknown entry type) are rejected;
 * - per-entry size, total size and entry count limits.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { readTar, TarReadEntry as TarEntry, UnsafeArchiveError } from '@factory/archive';
import { openDecompressed } from './decompress';

export interface ExtractLimits {
  /** largest single file (default 4 GiB) */
  maxEntryBytes?: number;
  /** sum of all file sizes over all layers (default 16 GiB) */
  maxTotalBytes?: number;
  /** number of tar entries over all layers, including directories, links and whiteouts (default 1,000,000) */
  maxEntries?: number;
}

export const DEFAULT_EXTRACT_LIMITS: Required<ExtractLimits> = {
  maxEntryBytes: 4 * 1024 ** 3,
  maxTotalBytes: 16 * 1024 ** 3,
  maxEntries: 1_000_000,
};

export const SELINUX_PAX_KEY = 'SCHILY.xattr.security.selinux';

/** Trailing bytes after the end-of-archive marker that are still drained to verify the compressed stream. */
const MAX_TRAILER = 1 << 20;

/** Normalise an entry name: strip `/`, `.` and empty components; reject `..` and NUL. '' is the root itself. */
export function normalizeEntryPath(raw: string, what = 'entry'): string {
  if (raw.includes('\0')) throw new UnsafeArchiveError(`${what} name ${JSON.stringify(raw)} contains a NUL byte`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafeArchiveError(`${what} ${JSON.stringify(raw)} contains a ".." path component`);
  return parts.join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

interface State {
  lim: Required<ExtractLimits>;
  root: string;
  entries: number;
  total: number;
  selinux: Map<string, string>;
  dirModes: Map<string, number>;
}

class LayerExtractor {
  /** every path created or re-declared by this layer (whiteouts only hide lower layers) */
  private readonly created = new Set<string>();
  /** directories known to be real (not symlinks) on disk; cleared after any removal */
  private readonly knownDirs = new Set<string>(['']);

  constructor(private readonly st: State) {}

  private abs(rel: string): string {
    return rel ? path.join(this.st.root, rel) : this.st.root;
  }

  private forgetSubtree(rel: string): void {
    for (const k of [...this.st.selinux.keys()]) if (k === rel || k.startsWith(`${rel}/`)) this.st.selinux.delete(k);
    for (const k of [...this.st.dirModes.keys()]) if (k === rel || k.startsWith(`${rel}/`)) this.st.dirModes.delete(k);
    this.knownDirs.clear();
    this.knownDirs.add('');
  }

  private async remove(rel: string): Promise<void> {
    await fsp.rm(this.abs(rel), { recursive: true, force: true });
    this.forgetSubtree(rel);
  }

  /**
   * Check that every directory of `rel` (excluding rel itself) is a real directory.
   * create=true makes missing ones (0755) and replaces non-directories; create=false returns false when one is missing.
   */
  private async parents(rel: string, entryName: string, create: boolean): Promise<boolean> {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.knownDirs.has(d)) continue;
      const st = await lstatOrNull(this.abs(d));
      if (st?.isSymbolicLink()) throw new UnsafeArchiveError(`${JSON.stringify(entryName)} goes through the symbolic link ${JSON.stringify(d)}`);
      if (!st || !st.isDirectory()) {
        if (!create) return false;
        if (st) await this.remove(d);
        await fsp.mkdir(this.abs(d));
        await fsp.chmod(this.abs(d), 0o755);
        this.created.add(d);
      }
      this.knownDirs.add(d);
    }
    return true;
  }

  /** Make room for a new non-directory entry at rel (an existing directory/file/link there is replaced). */
  private async clear(rel: string): Promise<void> {
    const st = await lstatOrNull(this.abs(rel));
    if (st) await this.remove(rel);
  }

  async entry(e: TarEntry): Promise<void> {
    const st = this.st;
    if (++st.entries > st.lim.maxEntries) throw new UnsafeArchiveError(`archive has more than ${st.lim.maxEntries} entries`);
    const rel = normalizeEntryPath(e.path);
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (base.startsWith('.wh.')) return this.whiteout(rel, base.slice(4), e.path);
    if (rel === '') {
      if (e.type === '5') return; // the root directory itself
      throw new UnsafeArchiveError(`entry ${JSON.stringify(e.path)} has an empty name`);
    }
    const label = e.pax[SELINUX_PAX_KEY];
    switch (e.type) {
      case '0':
      case '7':
        await this.file(rel, e);
        break;
      case '5':
        await this.dir(rel, e);
        break;
      case '2':
        await this.symlink(rel, e);
        break;
      case '1':
        await this.hardlink(rel, e);
        break;
      case '3':
      case '4':
      case '6':
        throw new UnsafeArchiveError(`special file ${JSON.stringify(e.path)} (device or FIFO) is not allowed`);
      default:
        throw new UnsafeArchiveError(`unsupported tar entry type ${JSON.stringify(e.type)} for ${JSON.stringify(e.path)}`);
    }
    this.created.add(rel);
    if (label !== undefined) st.selinux.set(rel, label.replace(/\0+$/, ''));
    else st.selinux.delete(rel);
  }

  private async file(rel: string, e: TarEntry): Promise<void> {
    const st = this.st;
    if (e.size > st.lim.maxEntryBytes) throw new UnsafeArchiveError(`entry ${JSON.stringify(e.path)} is ${e.size} bytes, limit ${st.lim.maxEntryBytes}`);
    if (st.total + e.size > st.lim.maxTotalBytes) throw new UnsafeArchiveError(`archive content exceeds the total limit of ${st.lim.maxTotalBytes} bytes`);
    st.total += e.size;
    await this.parents(rel, e.path, true);
    await this.clear(rel);
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fh = await fsp.open(this.abs(rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      let n = 0;
      for await (const chunk of e.body()) {
        n += chunk.length;
        if (n > e.size) throw new UnsafeArchiveError(`entry ${JSON.stringify(e.path)} is longer than its header says`);
        await fh.write(chunk);
      }
      await fh.chmod(e.mode & 0o7777);
    } finally {
      await fh.close();
    }
  }

  private async dir(rel: string, e: TarEntry): Promise<void> {
    await this.parents(rel, e.path, true);
    const cur = await lstatOrNull(this.abs(rel));
    if (!cur || !cur.isDirectory()) {
      if (cur) await this.remove(rel);
      await fsp.mkdir(this.abs(rel));
      await fsp.chmod(this.abs(rel), 0o700);
    }
    this.knownDirs.add(rel);
    this.st.dirModes.set(rel, e.mode & 0o7777);
  }

  private async symlink(rel: string, e: TarEntry): Promise<void> {
    const target = e.linkname;
    if (!target) throw new UnsafeArchiveError(`symbolic link ${JSON.stringify(e.path)} has an empty target`);
    if (target.includes('\0')) throw new UnsafeArchiveError(`symbolic link ${JSON.stringify(e.path)} target contains a NUL byte`);
    if (!target.startsWith('/')) {
      const stack = parentOf(rel).split('/').filter(Boolean);
      for (const seg of target.split('/')) {
        if (seg === '' || seg === '.') continue;
        if (seg === '..') {
          if (!stack.length) throw new UnsafeArchiveError(`symbolic link ${JSON.stringify(e.path)} -> ${JSON.stringify(target)} escapes the destination`);
          stack.pop();
        } else stack.push(seg);
      }
    }
    await this.parents(rel, e.path, true);
    await this.clear(rel);
    await fsp.symlink(target, this.abs(rel));
  }

  private async hardlink(rel: string, e: TarEntry): Promise<void> {
    if (!e.linkname) throw new UnsafeArchiveError(`hard link ${JSON.stringify(e.path)} has an empty target`);
    let target: string;
    try {
      target = normalizeEntryPath(e.linkname, 'hard link target');
    } catch {
      throw new UnsafeArchiveError(`hard link ${JSON.stringify(e.path)} -> ${JSON.stringify(e.linkname)} escapes the destination`);
    }
    const bad = () => new UnsafeArchiveError(`hard link ${JSON.stringify(e.path)} -> ${JSON.stringify(e.linkname)} does not point at a regular file inside the destination`);
    if (!target) throw bad();
    if (!(await this.parents(target, e.linkname, false))) throw bad();
    const tst = await lstatOrNull(this.abs(target));
    if (!tst || !tst.isFile()) throw bad();
    if (target === rel) return;
    await this.parents(rel, e.path, true);
    await this.clear(rel);
    await fsp.link(this.abs(target), this.abs(rel));
  }

  private async whiteout(rel: string, name: string, raw: string): Promise<void> {
    const dirRel = parentOf(rel);
    if (name === '.wh..opq') {
      if (!(await this.parents(rel, raw, false))) return;
      const d = await lstatOrNull(this.abs(dirRel));
      if (d?.isSymbolicLink()) throw new UnsafeArchiveError(`whiteout ${JSON.stringify(raw)} goes through a symbolic link`);
      if (d?.isDirectory()) await this.prune(dirRel);
      return;
    }
    if (name === '' || name === '.' || name === '..') throw new UnsafeArchiveError(`invalid whiteout ${JSON.stringify(raw)}`);
    const target = dirRel ? `${dirRel}/${name}` : name;
    if (this.created.has(target)) return; // whiteouts hide lower layers only
    if (!(await this.parents(target, raw, false))) return;
    if (await lstatOrNull(this.abs(target))) await this.remove(target);
  }

  /** Opaque directory: drop everything below dirRel that this layer did not create. */
  private async prune(dirRel: string): Promise<void> {
    for (const name of await fsp.readdir(this.abs(dirRel))) {
      const child = dirRel ? `${dirRel}/${name}` : name;
      if (this.created.has(child)) {
        const s = await fsp.lstat(this.abs(child));
        if (s.isDirectory()) await this.prune(child);
      } else {
        await this.remove(child);
      }
    }
  }
}

/**
 * Extract image layers (bottom first) into dest. Returns the SELinux labels found in PAX records, keyed by the path
 * relative to dest (no leading `./` or `/`).
 */
export async function extractLayers(
  layers: Array<() => Promise<NodeJS.ReadableStream>>,
  dest: string,
  limits: ExtractLimits = {},
): Promise<{ selinux: Map<string, string> }> {
  await fsp.mkdir(dest, { recursive: true });
  const st: State = {
    lim: { ...DEFAULT_EXTRACT_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) },
    root: await fsp.realpath(dest),
    entries: 0,
    total: 0,
    selinux: new Map(),
    dirModes: new Map(),
  };
  for (const open of layers) {
    const dec = await openDecompressed(await open());
    let done = false;
    try {
      const x = new LayerExtractor(st);
      for await (const e of readTar(dec.reader)) await x.entry(e);
      // drain a bounded trailer (zero padding), so a decompressor can report a corrupt stream
      let trailer = 0;
      for await (const c of dec.reader.rest()) {
        trailer += c.length;
        if (trailer > MAX_TRAILER) break;
      }
      if (trailer <= MAX_TRAILER) {
        await dec.finish();
        done = true;
      }
    } catch (e) {
      // a decompressor that died shows up as a truncated archive: report the decompressor's own error instead
      if (e instanceof UnsafeArchiveError && e.message.startsWith('truncated') && dec.compression !== 'none') {
        let timer: NodeJS.Timeout | undefined;
        const toolError = await Promise.race([
          dec.finish().then(() => undefined, (x: unknown) => x),
          new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 2000))),
        ]);
        clearTimeout(timer);
        if (toolError instanceof Error) throw toolError;
      }
      throw e;
    } finally {
      if (!done) await dec.abandon();
    }
  }
  // directory modes last (a read-only directory must not stop later entries), deepest first
  const dirs = [...st.dirModes.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, mode] of dirs) {
    const p = path.join(st.root, rel);
    const s = await lstatOrNull(p);
    if (s?.isDirectory()) await fsp.chmod(p, mode);
  }
  return { selinux: st.selinux };
}
