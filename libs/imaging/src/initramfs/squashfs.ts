/**
 * Per-extension squashfs (talos-formats §4.2 step 3) with squashfs-tools.
 *
 * Upstream runs `mksquashfs <rootfs> <out> -all-root -noappend -no-progress -xattrs-exclude .* -p "<path> x
 * security.selinux=<label>" ...`, which needs squashfs-tools >= 4.6 for both `-xattrs-exclude` and the `x` pseudo
 * definition. squashfs-tools 4.5.1 has neither, but its `-tar` input mode stores `SCHILY.xattr.*` PAX records as
 * xattrs. So by default the tree is streamed as a tar we generate ourselves (sorted, owner 0:0, fixed mtime, PAX
 * SELinux labels only): the image gets exactly the remembered labels and no host xattrs, the same result as the
 * upstream flags. If a mksquashfs without `-tar` is found, the directory is given to mksquashfs directly with
 * `-no-xattrs` (labels are then lost; with >= 4.6 `-xattrs-exclude` + pseudo definitions are used instead).
 * Times: `-mkfs-time` and `-all-time` = SOURCE_DATE_EPOCH, so output depends only on the content. (The runner's clean
 * environment keeps a SOURCE_DATE_EPOCH variable of the caller away: mksquashfs refuses it next to those options.)
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TarEntry, tarStream } from '@factory/archive';
import { feed, run, start } from '@factory/process';
import { SELINUX_PAX_KEY } from './extract';
import { walkTree } from './tree';

export interface MksquashfsFeatures {
  version: string;
  tar: boolean;
  xattrsExclude: boolean;
}

let features: Promise<MksquashfsFeatures> | undefined;

export function mksquashfsFeatures(): Promise<MksquashfsFeatures> {
  features ??= (async () => {
    // -help exits non-zero on some versions
    const probe = async (args: string[]) => (await run('mksquashfs', args, { allowFailure: true }).catch(() => undefined))?.stdout.toString('utf8') ?? '';
    const help = await probe(['-help']);
    const ver = (await probe(['-version'])).match(/mksquashfs version (\S+)/)?.[1] ?? 'unknown';
    return { version: ver, tar: /^-tar\b/m.test(help), xattrsExclude: /-xattrs-exclude\b/.test(help) };
  })();
  return features;
}

export interface SquashOptions {
  /** zstd level 18 (Talos >= 1.8), else xz with a 100% dictionary */
  zstd: boolean;
  mtime: number;
  /** SELinux labels keyed by path relative to the tree root */
  labels?: Map<string, string>;
  /** paths (relative to the tree root) left out, with everything below them */
  exclude?: string[];
  /** force an input mode (tests); default: tar when supported */
  mode?: 'tar' | 'dir';
}

export interface SquashResult {
  mode: 'tar' | 'dir';
  /** how SELinux labels were handled: stored, or dropped because this mksquashfs cannot store them */
  labels: 'none' | 'stored' | 'dropped';
}

function compression(zstd: boolean): string[] {
  return zstd ? ['-comp', 'zstd', '-Xcompression-level', '18'] : ['-comp', 'xz', '-Xdict-size', '100%'];
}

function pseudoQuote(p: string): string {
  return /[\s"\\]/.test(p) ? `"${p.replace(/["\\]/g, (c) => `\\${c}`)}"` : p;
}

/**
 * Tar entries for every entry below root (root itself not included), in byte order: directories, symlinks, regular
 * files (a second name of a hard-linked file becomes a hard link), each with its SELinux label as a PAX record.
 */
async function* treeTarEntries(root: string, labels: Map<string, string>, exclude: (rel: string) => boolean): AsyncGenerator<TarEntry> {
  const seen = new Map<string, string>(); // dev:ino -> first path, for hard links
  // xattrs belong to the inode: a label given for any name of a hard-linked file goes on its first (data) entry
  const inodeLabels = new Map<string, string>();
  for (const [rel, label] of labels) {
    const st = await fsp.lstat(path.join(root, rel)).catch(() => null);
    if (st?.isFile() && st.nlink > 1) inodeLabels.set(`${st.dev}:${st.ino}`, label);
  }
  for await (const { rel, abs, st } of walkTree(root, exclude)) {
    const mode = st.mode & 0o7777;
    const labelOf = (label: string | undefined) => (label === undefined ? {} : { pax: { [SELINUX_PAX_KEY]: label } });
    if (st.isDirectory()) {
      yield { type: 'dir', name: rel, mode, ...labelOf(labels.get(rel)) };
    } else if (st.isSymbolicLink()) {
      yield { type: 'symlink', name: rel, mode, target: await fsp.readlink(abs), ...labelOf(labels.get(rel)) };
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(key) : undefined;
      if (first !== undefined) {
        yield { type: 'hardlink', name: rel, mode, target: first };
        continue;
      }
      if (st.nlink > 1) seen.set(key, rel);
      const label = labels.get(rel) ?? (st.nlink > 1 ? inodeLabels.get(key) : undefined);
      yield { type: 'file', name: rel, mode, size: st.size, file: abs, noFollow: true, ...labelOf(label) };
    } else {
      throw new Error(`${abs}: special files cannot be put into an extension squashfs`);
    }
  }
}

export async function mksquashfsTree(root: string, out: string, o: SquashOptions): Promise<SquashResult> {
  const f = await mksquashfsFeatures();
  const mode = o.mode ?? (f.tar ? 'tar' : 'dir');
  const labels = o.labels ?? new Map<string, string>();
  const exclude = new Set((o.exclude ?? []).map((p) => p.replace(/^\/+|\/+$/g, '')));
  const rootMode = ((await fsp.stat(root)).mode & 0o7777).toString(8);
  const common = ['-noappend', '-no-progress', '-quiet', '-all-root', '-mkfs-time', String(o.mtime), '-all-time', String(o.mtime)];
  await fsp.rm(out, { force: true });
  if (mode === 'tar') {
    if (!f.tar) throw new Error(`mksquashfs ${f.version} has no -tar input mode`);
    // -tar defaults to -no-exports and a 0777 root; match the directory-mode defaults upstream gets
    const tool = start('mksquashfs', ['-', out, '-tar', ...common, '-exports', '-root-mode', rootMode, ...compression(o.zstd)], { stdin: 'pipe' });
    const entries = treeTarEntries(root, labels, (rel) => exclude.has(rel));
    await feed(tool, tarStream(entries, { mtime: o.mtime, deviceNumbers: false }));
    return { mode, labels: labels.size ? 'stored' : 'none' };
  }
  const args = [root, out, ...common, ...compression(o.zstd)];
  let result: SquashResult['labels'] = labels.size ? 'dropped' : 'none';
  if (labels.size && f.xattrsExclude) {
    const pf = `${out}.pseudo`;
    const lines = [...labels].map(([rel, label]) => `${pseudoQuote(rel)} x security.selinux=${label}`);
    await fsp.writeFile(pf, `${lines.join('\n')}\n`);
    args.push('-xattrs-exclude', '.*', '-pf', pf);
    result = 'stored';
  } else {
    args.push('-no-xattrs');
  }
  if (exclude.size) args.push('-e', ...[...exclude].map((p) => path.join(root, p)));
  await run('mksquashfs', args);
  await fsp.rm(`${out}.pseudo`, { force: true });
  return { mode, labels: result };
}
